"""A long responder CSV import must not stall the service: /healthz (and with it alerts and
sockets, which share the event loop) keeps answering while tens of thousands of rows go in."""

from __future__ import annotations

import asyncio
import secrets
import time

import httpx
import pytest

from tests.support.db import fetch

pytestmark = pytest.mark.integration

ROWS = 20_000  # several seconds of import here; it held /healthz for seconds before the fix
BAD_EVERY = 1_000  # every 1,000th row names an unknown category: reported by line, the rest kept
PROBE_LIMIT_S = 1.0
HEADER = (
    "external_id,name,phone,category,team,mode,"
    "cert_kind,cert_number,cert_issuer,cert_valid_from,cert_valid_until"
)
PERIOD = "Red Cross,2025-01-01,2027-12-31"
COUNTS = (
    "SELECT count(DISTINCT r.id), count(c.id) FROM responders r "
    "LEFT JOIN certificates c ON c.responder_id = r.id WHERE r.external_id LIKE $1"
)


def _big_csv(run: str) -> tuple[str, list[int]]:
    """One responder per row, a second certificate row for every 10th; returns the bad lines too."""
    lines = [HEADER]
    bad: list[int] = []
    for i in range(ROWS):
        category = "astronaut" if i % BAD_EVERY == BAD_EVERY - 1 else "sanitation_worker"
        if category == "astronaut":
            bad.append(len(lines) + 1)
        lines.append(f"{run}-{i},Person {i},+86 {i},{category},futian/t{i % 20},walk,cpr,N{i},{PERIOD}")
        if i % 10 == 0:
            lines.append(f"{run}-{i},,,,,,aed,A{i},{PERIOD}")
    return "\n".join(lines) + "\n", bad


async def _import_while_probing(
    client: httpx.AsyncClient, body: str, headers: dict[str, str]
) -> tuple[httpx.Response, list[float]]:
    """Posts the import while a probe loop times /healthz; returns the response and the latencies."""
    latencies: list[float] = []
    done = asyncio.Event()

    async def probe() -> None:
        async with httpx.AsyncClient(base_url=client.base_url, timeout=120) as prober:
            while not done.is_set():
                started = time.perf_counter()
                r = await prober.get("/healthz")
                latencies.append(time.perf_counter() - started)
                assert r.status_code == 200, r.text
                await asyncio.sleep(0.05)

    prober = asyncio.create_task(probe())
    try:
        response = await client.post("/v1/responders/import", content=body, headers=headers)
    finally:
        done.set()
        await prober
    return response, latencies


def _assert_responsive(latencies: list[float], during: str) -> None:
    assert len(latencies) >= 5, f"{during} ended before the probe loop got going"
    print(f"{during}: worst /healthz {max(latencies):.3f} s over {len(latencies)} probes")
    assert max(latencies) < PROBE_LIMIT_S, f"/healthz took {max(latencies):.2f} s during {during}"


async def test_a_large_import_keeps_healthz_answering_and_imports_everything(
    live_server, admin_headers, store_env
) -> None:
    run = "BIG" + secrets.token_hex(4)
    body, bad_lines = _big_csv(run)
    headers = {**admin_headers, "content-type": "text/csv"}
    good = ROWS - len(bad_lines)
    try:
        async with httpx.AsyncClient(base_url=live_server.url, timeout=300) as client:
            r, latencies = await _import_while_probing(client, body, headers)
            assert r.status_code == 200, r.text
            report = r.json()
            assert (report["rows"], report["created"], report["updated"], report["unchanged"]) == (
                ROWS + ROWS // 10,
                good,
                0,
                0,
            )
            assert [(e["line"], e["field"]) for e in report["errors"]] == [(n, "category") for n in bad_lines]
            _assert_responsive(latencies, "the import")

            stored = tuple((await fetch(store_env["DATABASE_URL"], COUNTS, f"{run}-%"))[0])
            good_with_aed = sum(1 for i in range(0, ROWS, 10) if i % BAD_EVERY != BAD_EVERY - 1)
            assert stored == (good, good + good_with_aed)

            again, latencies = await _import_while_probing(client, body, headers)
            assert (again.json()["created"], again.json()["updated"], again.json()["unchanged"]) == (
                0,
                0,
                good,
            )
            _assert_responsive(latencies, "the re-import")
            assert tuple((await fetch(store_env["DATABASE_URL"], COUNTS, f"{run}-%"))[0]) == stored
    finally:  # tens of thousands of off-duty responders would only slow the other tests' queries
        await fetch(store_env["DATABASE_URL"], "DELETE FROM responders WHERE external_id LIKE $1", f"{run}-%")
