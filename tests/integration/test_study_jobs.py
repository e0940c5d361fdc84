"""Heavy planner studies run as jobs, outside the worker that serves incidents (issue #16, item 1).

One valid placement (res 10, 900 s over a whole city) once grew the API worker past 6 GB and took
dispatch down with it. Two servers of their own, with small limits: one whose study processes
get too little memory for the study (it fails alone, the worker keeps serving), one with a short
time limit, no synchronous wait and one study at a time (202 + poll, the kill, the queue, the
size refusal).
"""

from __future__ import annotations

import asyncio
import math
import random
import secrets
import time
import uuid
from collections.abc import Iterator

import httpx
import psutil
import pytest
from shapely.geometry import box, mapping

from tests.support.db import fetch
from tests.support.server import ServerProcess

pytestmark = pytest.mark.integration
MEMORY_LIMIT_MB = 450  # a study process starts at ~380 MB of address space (the libraries)
MAX_CELLS = 40_000
# A whole-city study: ~26,600 res-10 cells, and ~3,400 cells within an e-bike's 900 s of each.
HEAVY = {"kind": "recruit", "category": "city_inspector", "k": 5, "resolution": 10, "reach_s": 900,
         "source": "shift", "workforce": 1}  # fmt: skip
SMALL = {"resolution": 7, "reach_s": 300, "source": "shift", "workforce": 50}


def _square_city(side_km: float) -> dict:
    rng = random.Random(secrets.randbits(32))
    lat, lng = rng.uniform(-40, 40), rng.uniform(-170, 170)  # a place no other test uses
    half_lat = side_km / 2 / 111.2
    half_lng = half_lat / math.cos(math.radians(lat))
    square = box(lng - half_lng, lat - half_lat, lng + half_lng, lat + half_lat)
    feature = {"type": "Feature", "properties": {"name": "Square", "population": 400_000},
               "geometry": mapping(square)}  # fmt: skip
    return {"type": "FeatureCollection", "features": [feature]}


def _server(app_env: dict[str, str], **settings: str) -> Iterator[ServerProcess]:
    server = ServerProcess(env={**app_env, **{f"DISPATCH_{k.upper()}": v for k, v in settings.items()}})
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def starved(app_env: dict[str, str]) -> Iterator[ServerProcess]:
    """Study processes with too little memory for a whole-city res-10 study; no synchronous wait."""
    yield from _server(app_env, study_memory_limit_mb=str(MEMORY_LIMIT_MB), study_sync_wait_s="0")


@pytest.fixture(scope="module")
def hurried(app_env: dict[str, str]) -> Iterator[ServerProcess]:
    """A 5 s time limit, no synchronous wait, one study at a time, grids of at most 40,000 cells."""
    yield from _server(
        app_env, study_time_limit_s="5", study_sync_wait_s="0", study_workers="1",
        study_max_cells=str(MAX_CELLS),
    )  # fmt: skip


def _client(server: ServerProcess) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=60.0)


def _token(http: httpx.Client, admin: dict[str, str], role: str) -> dict[str, str]:
    r = http.post("/v1/tokens", json={"role": role, "label": "jobs"}, headers=admin)
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def _poll_until(http: httpx.Client, job: str, headers: dict[str, str], want: set[str], within_s: float):
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        r = http.get(job, headers=headers)
        assert r.status_code == 200, r.text
        if r.headers["content-type"] == "image/png" or r.json()["status"] in want:
            return r
        time.sleep(0.2)
    raise AssertionError(f"{job} not {want} within {within_s} s: {r.text[:300]}")


def _accepted(r: httpx.Response) -> str:
    assert r.status_code == 202, r.text[:300]
    job = r.json()
    assert job["status"] in ("queued", "running") and job["poll"] == f"/v1/jobs/{job['job_id']}"
    assert r.headers["location"] == job["poll"]
    return job["poll"]


def test_a_study_past_its_memory_limit_fails_alone_while_dispatch_goes_on(
    starved: ServerProcess, admin_headers: dict[str, str]
) -> None:
    with _client(starved) as http:
        assert http.put("/v1/city", json=_square_city(20), headers=admin_headers).status_code == 200
        planner = _token(http, admin_headers, "planner")
        desk = _token(http, admin_headers, "dispatcher")
        worker = psutil.Process(starved.proc.pid)  # type: ignore[union-attr]
        before = worker.memory_info().rss
        poll = _accepted(http.post("/v1/coverage/placement", json=HEAVY, headers=planner))
        while (job := http.get(poll, headers=planner).json())["status"] in ("queued", "running"):
            # the worker answers all along: health, and a new incident with its verdict
            assert http.get("/healthz").status_code == 200
            r = http.post("/v1/incidents", json={"lat": 10.0, "lng": 10.0, "category": "cardiac_arrest"},
                          headers=desk)  # fmt: skip
            assert r.status_code == 201, r.text
            time.sleep(0.2)
        assert job["status"] == "failed", job
        assert f"{MEMORY_LIMIT_MB} MB" in job["error"] and "DISPATCH_STUDY_MEMORY_LIMIT_MB" in job["error"]
        assert worker.is_running() and http.get("/healthz").status_code == 200
        # the study's blocks alone are ~200 MB; the worker grew by far less than that
        assert worker.memory_info().rss - before < 100 * 2**20


def test_long_studies_answer_202_and_a_job_that_polls_to_its_result(
    hurried: ServerProcess, admin_headers: dict[str, str]
) -> None:
    with _client(hurried) as http:
        assert http.put("/v1/city", json=_square_city(20), headers=admin_headers).status_code == 200
        planner = _token(http, admin_headers, "planner")
        poll = _accepted(http.post("/v1/coverage", json=SMALL, headers=planner))
        done = _poll_until(http, poll, planner, {"done", "failed"}, 60).json()
        assert done["status"] == "done" and done["progress"] == 1.0, done
        result = done["result"]
        assert result["summary"]["resolution"] == 7 and result["cells"]["features"]
        assert result["inputs"]["source"] == "shift"
        png_poll = _accepted(http.post("/v1/coverage", params={"format": "png"}, json=SMALL, headers=planner))
        png = _poll_until(http, png_poll, planner, {"failed"}, 60)
        assert png.headers["content-type"] == "image/png" and png.content[:8] == b"\x89PNG\r\n\x1a\n"
        assert http.get(poll, headers=_token(http, admin_headers, "dispatcher")).status_code == 403
        assert http.get(f"/v1/jobs/{secrets.token_hex(16)}", headers=planner).status_code == 404


def test_the_time_limit_kills_a_study_and_studies_beyond_the_concurrency_wait_queued(
    hurried: ServerProcess, admin_headers: dict[str, str]
) -> None:
    with _client(hurried) as http:
        assert http.put("/v1/city", json=_square_city(20), headers=admin_headers).status_code == 200
        planner = _token(http, admin_headers, "planner")
        heavy = _accepted(http.post("/v1/coverage/placement", json=HEAVY, headers=planner))
        small = _accepted(http.post("/v1/coverage", json=SMALL, headers=planner))
        # one study at a time: the small one waits while the heavy one runs
        _poll_until(http, heavy, planner, {"running"}, 30)
        assert http.get(small, headers=planner).json()["status"] == "queued"
        failed = _poll_until(http, heavy, planner, {"done", "failed"}, 60).json()
        assert failed["status"] == "failed", failed
        assert "5 s" in failed["error"] and "DISPATCH_STUDY_TIME_LIMIT_S" in failed["error"]
        assert _poll_until(http, small, planner, {"done", "failed"}, 60).json()["status"] == "done"
        # the killed study's process is gone: only the fork server (and its helpers) remain
        worker = psutil.Process(hurried.proc.pid)  # type: ignore[union-attr]
        deadline = time.monotonic() + 10
        while any(p.children() for p in worker.children()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(p.children() for p in worker.children())


def test_a_study_too_big_to_fit_is_refused_naming_the_limit(
    hurried: ServerProcess, admin_headers: dict[str, str]
) -> None:
    with _client(hurried) as http:
        assert http.put("/v1/city", json=_square_city(40), headers=admin_headers).status_code == 200
        planner = _token(http, admin_headers, "planner")
        for path, body in (("/v1/coverage", {"resolution": 10}), ("/v1/coverage/placement", HEAVY)):
            r = http.post(path, json=body, headers=planner)
            assert r.status_code == 422, r.text[:300]
            detail = r.json()["detail"]
            assert detail.startswith("resolution:") and f"{MAX_CELLS:,}" in detail, detail
            assert "DISPATCH_STUDY_MAX_CELLS" in detail
        assert _accepted(http.post("/v1/coverage", json={**SMALL, "resolution": 8}, headers=planner))


def test_a_job_whose_worker_died_is_reported_failed_not_running_for_ever(
    hurried: ServerProcess, admin_headers: dict[str, str], store_env: dict[str, str]
) -> None:
    # Two jobs as a worker killed mid-study leaves them, and one whose worker still touches it.
    lost_running, lost_queued, alive = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    sql = (
        "INSERT INTO study_jobs (id, what, status, progress, created_at, updated_at) "
        "VALUES ($1, 'placement', $2, 0.4, now() - interval '5 minutes', now() - $3 * interval '1 second')"
    )
    for job, status, silent_s in (
        (lost_running, "running", 60),
        (lost_queued, "queued", 60),
        (alive, "running", 1),
    ):
        asyncio.run(fetch(store_env["DATABASE_URL"], sql, job, status, silent_s))
    with _client(hurried) as http:
        planner = _token(http, admin_headers, "planner")
        for job in (lost_running, lost_queued):
            got = http.get(f"/v1/jobs/{job}", headers=planner).json()
            assert got["status"] == "failed" and "stopped" in got["error"], got
        got = http.get(f"/v1/jobs/{alive}", headers=planner).json()
        assert got["status"] == "running" and got["progress"] == 0.4, got
