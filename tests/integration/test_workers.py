"""Four API workers behind one port (uvicorn `--workers 4`) against the same stores, on the single
Redis and on the 3-primary cluster (found out by asking it: `DISPATCH_REDIS_CLUSTER` unset).

An incident opened through one worker reaches the phones and consoles whose sockets are held by the
others, each escalation step happens once whichever worker's clock takes it, and each alert is sent
to its phone once. Which worker served what is read from `X-Dispatch-Worker`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from core.worker_header import WORKER_HEADER
from tests.support.db import stores_of_its_own
from tests.support.people import bearer, on_duty_at, pinned_acceptance
from tests.support.phones import Console, Phone
from tests.support.server import ServerProcess

pytestmark = pytest.mark.integration
WORKERS = 4
NEAR, FAR, CONSOLES = 24, 4, 8


def offset(lat: float, lng: float, north_m: float, east_m: float) -> tuple[float, float]:
    return lat + north_m / 111_195.0, lng + east_m / (111_195.0 * math.cos(math.radians(lat)))


@pytest.fixture(params=["single", "cluster"])
def four_workers(
    request: pytest.FixtureRequest, app_env: dict[str, str], store_env: dict[str, str]
) -> Iterator[ServerProcess]:
    redis_url = (
        store_env["REDIS_URL"] if request.param == "single" else request.getfixturevalue("cluster_url")
    )
    with stores_of_its_own(store_env["DATABASE_URL"], "workers") as own:
        env = {
            **app_env,
            **own,
            **pinned_acceptance(0.05),  # nobody is likely to accept: everyone in reach is alerted
            "REDIS_URL": redis_url,
            "DISPATCH_ALERT_CAP": str(NEAR + FAR + 4),
            "DISPATCH_ESCALATION_INTERVAL_S": "1",
            "DISPATCH_ESCALATION_STEP_S": "60",
        }
        env.pop("DISPATCH_REDIS_CLUSTER", None)
        server = ServerProcess(env=env, workers=WORKERS).start(timeout_s=120)
        try:
            yield server
        finally:
            server.stop()


def worker_of(socket: Phone | Console) -> str:
    return str(socket.ws.response.headers[WORKER_HEADER])


async def read_all(phone: Phone, into: list[dict[str, Any]]) -> None:
    """Everything the phone is sent, as it comes (the phone confirms each alert it reads)."""
    with contextlib.suppress(Exception):  # the socket closes at the end of the test
        while True:
            into.append(await phone.next(timeout=3600))


async def read_events(console: Console, into: list[dict[str, Any]]) -> None:
    with contextlib.suppress(Exception):
        while True:
            into.append(json.loads(await console.ws.recv()))


@contextlib.asynccontextmanager
async def reading(sockets: list[Any], reader: Any) -> AsyncIterator[list[list[dict[str, Any]]]]:
    received: list[list[dict[str, Any]]] = [[] for _ in sockets]
    tasks = [asyncio.create_task(reader(s, into)) for s, into in zip(sockets, received, strict=True)]
    try:
        yield received
    finally:
        for task in tasks:
            task.cancel()


async def until(check: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {timeout_s} s: {what}")


async def test_an_incident_opened_on_one_worker_reaches_sockets_on_every_other_and_escalates_once(
    four_workers: ServerProcess, admin_headers: dict[str, str]
) -> None:
    server = four_workers
    http = httpx.Client(base_url=server.url, timeout=30)
    lat, lng = random.uniform(-45, 45), random.uniform(-170, 170)  # far from other tests' people
    ring = [offset(lat, lng, 150 * math.cos(a), 150 * math.sin(a)) for a in range(NEAR)]
    near = [on_duty_at(http, admin_headers, *spot) for spot in ring]
    # 1.5 km on an e-bike: 385 s, beyond 300 s but within the second step (420 s)
    far = [
        on_duty_at(http, admin_headers, *offset(lat, lng, -1500, 10 * i), mode="ebike") for i in range(FAR)
    ]
    desk = bearer(
        http.post("/v1/tokens", json={"role": "dispatcher", "label": "desk"}, headers=admin_headers).json()[
            "token"
        ]
    )
    desk_token = desk["Authorization"].split()[1]
    people = near + far
    async with contextlib.AsyncExitStack() as stack:
        phones = [await stack.enter_async_context(Phone(server.ws_url, p["token"])) for p in people]
        consoles = [
            await stack.enter_async_context(Console(server.ws_url, desk_token)) for _ in range(CONSOLES)
        ]
        held_by = [worker_of(p) for p in phones]
        assert len(set(held_by)) >= 3, f"the kernel put {len(phones)} sockets on {set(held_by)}"
        frames = await stack.enter_async_context(reading(phones, read_all))
        events = await stack.enter_async_context(reading(consoles, read_events))

        opening = time.monotonic()
        with httpx.Client(base_url=server.url, timeout=30) as fresh:  # a new connection: any worker
            r = fresh.post(
                "/v1/incidents", json={"lat": lat, "lng": lng, "category": "cardiac_arrest"}, headers=desk
            )
        assert r.status_code == 201, r.text
        incident, opened_on = r.json(), r.headers[WORKER_HEADER]
        assert sorted(a["responder_id"] for a in incident["alerts"]) == sorted(p["id"] for p in near)
        others = [i for i, w in enumerate(held_by) if w != opened_on]
        assert others, "every socket on the worker that opened the incident"

        def alerts_to(i: int) -> list[dict[str, Any]]:
            return [f for f in frames[i] if f["type"] == "alert" and f["incident_id"] == incident["id"]]

        await until(lambda: all(len(alerts_to(i)) == 1 for i in range(NEAR)), 30, "every near phone alerted")
        alerted_s = time.monotonic() - opening
        await until(
            lambda: all(len(alerts_to(i)) == 1 for i in range(NEAR, NEAR + FAR)), 60, "far phones alerted"
        )

        def exhausted() -> dict[str, Any] | None:
            detail = http.get(f"/v1/incidents/{incident['id']}", headers=desk).json()
            return detail if any(e["kind"] == "escalation_exhausted" for e in detail["events"]) else None

        await until(lambda: exhausted() is not None, 60, "escalation exhausted")
        await asyncio.sleep(2.0)  # three more clock ticks on every worker: no step is taken twice
        detail = http.get(f"/v1/incidents/{incident['id']}", headers=desk).json()
        timeline = [(e["ts"], e["kind"], e["data"]) for e in detail["events"]]
        steps = [e["data"]["step"] for e in detail["events"] if e["kind"] == "escalated"]
        assert steps == [1, 2, 3], timeline
        assert sum(e["kind"] == "escalation_exhausted" for e in detail["events"]) == 1, timeline

        alerts = detail["alerts"]
        assert sorted(a["responder_id"] for a in alerts) == sorted(p["id"] for p in people)  # one each

        def per_alert(kind: str, **data: str) -> Counter[str]:
            return Counter(
                e["data"]["alert_id"]
                for e in detail["events"]
                if e["kind"] == kind and all(e["data"].get(k) == v for k, v in data.items())
            )

        # Written into a socket at most once each (the phone's receipt may come before the write is
        # recorded, which then records none), and received once each, over the socket.
        assert set(per_alert("attempt", channel="socket").values()) <= {1}, timeline
        delivered = per_alert("delivered", delivered_via="socket")
        assert sorted(delivered) == sorted(a["alert_id"] for a in alerts) and set(delivered.values()) == {1}
        for i, phone_frames in enumerate(frames):
            assert len(alerts_to(i)) == 1, (i, held_by[i], phone_frames)

        def escalations_seen(j: int) -> list[int]:
            return [
                e["data"]["step"]
                for e in events[j]
                if e.get("incident_id") == incident["id"] and e.get("kind") == "escalated"
            ]

        await until(lambda: all(escalations_seen(j) == [1, 2, 3] for j in range(CONSOLES)), 10, "consoles")
        print(
            f"{NEAR} phones alerted {alerted_s:.2f} s after the request; opened on {opened_on}; "
            "phones by worker "
            f"{ {w: held_by.count(w) for w in sorted(set(held_by))} }; "
            f"consoles by worker { {w: [worker_of(c) for c in consoles].count(w) for w in set(held_by)} }"
        )
