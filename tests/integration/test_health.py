"""/healthz and /metrics against the real stores, including a Redis outage and recovery."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support.server import ServerProcess, free_port


def test_healthz_reports_both_store_versions(http: httpx.Client) -> None:
    r = http.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["postgis"][0].isdigit() and body["postgis"].count(".") >= 1
    assert body["redis"][0].isdigit() and body["redis"].count(".") >= 1


def test_healthz_on_a_cluster_asks_every_primary(app_env: dict[str, str], cluster_url: str) -> None:
    server = ServerProcess(env={**app_env, "REDIS_URL": cluster_url}).start()
    try:
        body = httpx.get(f"{server.url}/healthz", timeout=10).json()
    finally:
        server.stop()
    assert body["status"] == "ok"
    assert body["redis"].endswith(" (cluster, 3 primaries)") and body["redis"][0].isdigit(), body


def _count(text: str, series: str) -> float:
    lines = [line for line in text.splitlines() if line.startswith(series + " ")]
    return float(lines[0].split()[-1]) if lines else 0.0


def test_metrics_count_requests_by_route(http: httpx.Client, admin_headers: dict[str, str]) -> None:
    """Route templates, not raw paths (ids would explode the series), with each answer's status."""
    ok = 'http_requests_total{method="GET",route="/healthz",status="200"}'
    bad = 'http_requests_total{method="POST",route="/v1/locations",status="422"}'
    lost = 'http_requests_total{method="GET",route="unmatched",status="404"}'
    missing = 'http_requests_total{method="GET",route="/v1/responders/{responder_id}",status="404"}'
    before = http.get("/metrics").text
    http.get("/healthz")
    http.post("/v1/locations", json={"updates": [{"lat": 91}]}, headers=admin_headers)
    http.get("/no/such/page")
    http.get("/v1/responders/00000000-0000-0000-0000-000000000000", headers=admin_headers)
    after = http.get("/metrics").text
    for series in (ok, bad, lost, missing):
        assert _count(after, series) == _count(before, series) + 1, series
    assert "http_request_duration_seconds_bucket" in after


def test_openapi_docs_served(http: httpx.Client) -> None:
    assert http.get("/docs").status_code == 200
    assert "/healthz" in http.get("/openapi.json").json()["paths"]


@pytest.fixture
def own_redis(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A Redis server belonging to this test alone, so stopping it disturbs nobody else."""
    port = free_port()

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--dir",
                str(tmp_path),
            ],
            stdout=subprocess.DEVNULL,
        )
        for _ in range(100):
            if subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).returncode == 0:
                break
            time.sleep(0.05)
        return proc

    state = {"proc": start()}
    yield port, state, start
    if state["proc"].poll() is None:
        state["proc"].terminate()
        state["proc"].wait(5)


def test_healthz_503_names_redis_when_down_and_recovers(app_env: dict[str, str], own_redis) -> None:  # type: ignore[no-untyped-def]
    port, state, start = own_redis
    server = ServerProcess(env={**app_env, "REDIS_URL": f"redis://127.0.0.1:{port}/0"}).start()
    try:
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        state["proc"].terminate()
        state["proc"].wait(5)
        r = httpx.get(f"{server.url}/healthz", timeout=10)
        assert r.status_code == 503
        assert r.json()["down"] == ["redis"]
        assert "redis" in r.json()["detail"]
        state["proc"] = start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            r = httpx.get(f"{server.url}/healthz", timeout=10)
            if r.status_code == 200:
                break
            time.sleep(0.2)
        assert r.status_code == 200, r.text
    finally:
        server.stop()
