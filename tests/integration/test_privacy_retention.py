"""Retention of on-duty positions: past `position_retention_days` the positions kept in incident
timelines are erased, and nothing else; just inside the window, nothing at all.

Two incidents through the real app, each with an accepted alert whose timeline keeps the
responder's position (where they accepted, and the arrival events' fixes, written in SQL as the
arrival piece writes them), closed, then moved back in time in SQL: one an hour past the cutoff,
one an hour short of it. On stores of their own: the servers' retention settings differ from the
session server's.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from core.config import Settings
from core.db import Database
from core.lease import Lease
from core.redis import Keys, connect_redis
from privacy.positions import ALERT_POSITION_COLUMNS, EVENT_POSITION_KEYS, POSITION_EVENT_KINDS
from privacy.retention import lease_key, retention_round
from tests.support.db import fetch, stores_of_its_own
from tests.support.privacy import (
    Spot,
    accepted_alert,
    backdate_incident,
    dispatcher,
    record_timeline_positions,
)
from tests.support.server import ServerProcess

pytestmark = pytest.mark.integration
RETENTION_DAYS = 30


RETENTION = {"DISPATCH_POSITION_RETENTION_DAYS": str(RETENTION_DAYS)}


def server_with(
    app_env: dict[str, str], store_env: dict[str, str], label: str, every_s: float
) -> Iterator[ServerProcess]:
    with (
        stores_of_its_own(store_env["DATABASE_URL"], label) as own,
        ServerProcess(
            env={**app_env, **own, **RETENTION, "DISPATCH_POSITION_RETENTION_EVERY_S": str(every_s)}
        ).start() as server,
    ):
        yield server


@pytest.fixture(scope="module")
def busy_server(app_env: dict[str, str], store_env: dict[str, str]) -> Iterator[ServerProcess]:
    """Its retention job runs every second."""
    yield from server_with(app_env, store_env, "retain", 1.0)


@pytest.fixture(scope="module")
def quiet_server(app_env: dict[str, str], store_env: dict[str, str]) -> Iterator[ServerProcess]:
    """Its retention job ran once, at start-up, and waits an hour: rounds are run by hand here."""
    yield from server_with(app_env, store_env, "retaincli", 3600.0)


async def timeline(url: str, incident_id: str) -> dict[str, Any]:
    """Everything the record holds of an incident: its row, its alerts', its events' (by id)."""
    rows = {
        "incident": await fetch(url, "SELECT * FROM incidents WHERE id = $1::uuid", incident_id),
        "alerts": await fetch(
            url, "SELECT * FROM alerts WHERE incident_id = $1::uuid ORDER BY id", incident_id
        ),
        "events": await fetch(
            url, "SELECT * FROM incident_events WHERE incident_id = $1::uuid ORDER BY id", incident_id
        ),
    }
    out: dict[str, Any] = {k: [dict(r) for r in v] for k, v in rows.items()}
    for event in out["events"]:
        event["data"] = json.loads(event["data"])
    return out


def erased(before: dict[str, Any]) -> dict[str, Any]:
    """What the record of `before` must be once its positions are erased: the same, less them."""
    alerts = [{**a, **dict.fromkeys(ALERT_POSITION_COLUMNS)} for a in before["alerts"]]
    events = [
        {**e, "data": {k: v for k, v in e["data"].items() if k not in EVENT_POSITION_KEYS}}
        if e["kind"] in POSITION_EVENT_KINDS
        else e
        for e in before["events"]
    ]
    return {**before, "alerts": alerts, "events": events}


async def kept_timeline(
    server: ServerProcess, http: httpx.Client, admin: dict[str, str], at: datetime
) -> dict[str, Any]:
    """An incident whose accepted responder's positions are in its timeline, closed and moved to `at`."""
    desk = dispatcher(http, admin)
    _, incident, alert_id = accepted_alert(http, admin, desk)
    await record_timeline_positions(server.database_url, alert_id, Spot.fresh())
    assert http.post(f"/v1/incidents/{incident['id']}/close", json={}, headers=desk).status_code == 200
    await backdate_incident(server.database_url, incident["id"], at)
    record = await timeline(server.database_url, incident["id"])
    assert record["alerts"][0]["accepted_lat"] is not None
    assert sum("lat" in e["data"] for e in record["events"] if e["kind"] in POSITION_EVENT_KINDS) == 3
    opened = [e for e in record["events"] if e["kind"] == "opened"]
    assert "lat" in opened[0]["data"]  # the patient's place: it stays
    return {"id": incident["id"], "before": record}


async def wait_until(check: Callable[[], Awaitable[bool]], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


def cutoff() -> datetime:
    return datetime.now(UTC) - timedelta(days=RETENTION_DAYS)


def client(server: ServerProcess) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30.0)


async def test_the_job_erases_the_positions_past_the_retention_and_nothing_else(
    busy_server: ServerProcess, admin_headers: dict[str, str]
) -> None:
    url = busy_server.database_url
    redis = connect_redis(busy_server.redis_url)
    lease = Lease(redis, lease_key(Keys(busy_server.env["DISPATCH_REDIS_PREFIX"])), 120)
    assert await wait_until(lease.acquire)  # held by the test, the server's rounds wait meanwhile
    with client(busy_server) as http:
        past = await kept_timeline(busy_server, http, admin_headers, cutoff() - timedelta(hours=1))
        inside = await kept_timeline(busy_server, http, admin_headers, cutoff() + timedelta(hours=1))
    await asyncio.sleep(2)
    assert await timeline(url, past["id"]) == past["before"]  # nothing while the lease was held
    assert await lease.release()
    await redis.aclose()
    deadline = time.monotonic() + 30
    while await timeline(url, past["id"]) != erased(past["before"]):
        assert time.monotonic() < deadline, "the retention job did not erase the old positions"
        await asyncio.sleep(0.5)
    await asyncio.sleep(3)  # three more rounds
    assert await timeline(url, past["id"]) == erased(past["before"])
    assert await timeline(url, inside["id"]) == inside["before"]


def privacy_cli(server: ServerProcess, *args: str) -> str:
    env = {**os.environ, "DATABASE_URL": server.database_url, **RETENTION}
    done = subprocess.run(
        [sys.executable, "-m", "dispatch.cli", "privacy", "retention", *args],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_the_command_counts_dry_then_erases_in_batches(
    quiet_server: ServerProcess, admin_headers: dict[str, str]
) -> None:
    url = quiet_server.database_url
    with client(quiet_server) as http:
        past = [
            await kept_timeline(quiet_server, http, admin_headers, cutoff() - timedelta(hours=h))
            for h in (1, 24 * 40)
        ]
        inside = await kept_timeline(quiet_server, http, admin_headers, cutoff() + timedelta(hours=1))

    out = privacy_cli(quiet_server, "--dry-run")
    assert "would be erased: 2 alerts (where the responder accepted), 6 incident events" in out, out
    for incident in [*past, inside]:
        assert await timeline(url, incident["id"]) == incident["before"]

    out = privacy_cli(quiet_server, "--batch", "2")  # several batches per month: the loop goes on
    assert "erased: 2 alerts (where the responder accepted), 6 incident events" in out, out
    for incident in past:
        assert await timeline(url, incident["id"]) == erased(incident["before"])
    assert await timeline(url, inside["id"]) == inside["before"]
    assert "erased: 0 alerts" in privacy_cli(quiet_server)


async def test_one_worker_runs_a_round_per_period(quiet_server: ServerProcess) -> None:
    """The lease: a second worker asking within the period runs nothing."""
    settings = Settings(
        database_url=quiet_server.database_url,
        position_retention_days=RETENTION_DAYS,
        position_retention_every_s=60,
    )
    db, redis = Database(settings.database_url, pool_size=1), connect_redis(quiet_server.redis_url)
    keys = Keys(quiet_server.env["DISPATCH_REDIS_PREFIX"] + "-lease-test")
    try:
        first = await retention_round(db, redis, keys, settings)
        second = await retention_round(db, redis, keys, settings)
    finally:
        await redis.aclose()
        await db.dispose()
    assert first is not None and first.cutoff < datetime.now(UTC) - timedelta(days=RETENTION_DAYS - 1)
    assert second is None
