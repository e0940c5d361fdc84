"""The demo city in the real stores: loading is idempotent, and the mover streams positions through
the service's own ingest path so the console sees responders move."""

from __future__ import annotations

import asyncio
import logging
import random
import re
import secrets
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
from redis.asyncio import Redis
from shapely.geometry import box
from sqlalchemy import text

from core.config import Settings
from core.db import Database
from core.redis import Keys
from responders.store import LiveLocationStore
from simulator.city import City, District
from simulator.demo import build_demo, load_demo, registry_ids, responder_rows
from simulator.live import stream_crowd
from simulator.policy_run import street_names
from simulator.population import SimResponder, shift_at
from simulator.service import load_city
from tests.support.people import register

pytestmark = pytest.mark.integration


async def test_loading_the_demo_twice_changes_nothing(store_env, http, admin_headers) -> None:
    settings = Settings(database_url=store_env["DATABASE_URL"], redis_url=store_env["REDIS_URL"])
    demo = build_demo(seed=11, responders=60, aeds=120)
    db = Database(settings.database_url, pool_size=1)
    redis = Redis.from_url(settings.redis_url, decode_responses=True)
    store = LiveLocationStore(redis, Keys("rctest-demo-" + secrets.token_hex(3)), settings)
    try:
        async with db.sessions() as session:
            first = await load_demo(session, store, settings, demo)
            again = await load_demo(session, store, settings, demo)
            ids = await registry_ids(session, demo)
        # (a database that already holds another seed's demo gets its rows updated, not created)
        assert sum(first[f"responders_{k}"] for k in ("created", "updated", "unchanged")) == 60
        assert sum(first[f"aeds_{k}"] for k in ("created", "updated", "unchanged")) == 120
        assert again["responders_unchanged"] == 60 and again["aeds_unchanged"] == 120
        assert again["responders_created"] == again["responders_updated"] == 0
        assert again["aeds_created"] == again["aeds_updated"] == 0
        assert len(ids) == 60
        city = http.get("/v1/city", headers=admin_headers).json()
        assert [f["properties"]["name"] for f in city["districts"]["features"]] == demo.city.names
        assert city["districts"]["features"][0]["properties"]["name_zh"] == "福田区"
        assert city["population"] == demo.city.population
        streets = [f["properties"] for f in city["streets"]["features"]]
        assert [(s["district"], s["name"]) for s in streets] == street_names(demo.city)
        assert {s["name_zh"] for s in streets} >= {"南园街道", "蛇口街道", "南澳街道"}
        async with db.sessions() as session:  # the stored city is the demo, streets and all
            stored = await load_city(session)
        assert [(s.name, s.name_zh, s.population) for _, s in stored.streets] == [
            (s.name, s.name_zh, s.population) for _, s in demo.city.streets
        ]
        one = http.get(f"/v1/responders/{ids[demo.responders[0].responder_id]}", headers=admin_headers).json()
        assert one["category"] == demo.responders[0].category and one["mode"] == demo.responders[0].mode
        assert one["certificates"][0]["kind"] == "first_aid"
        # city → district → street → community: the registry holds the worker's community team
        assert one["team"] == f"shenzhen/{responder_rows(demo)[0].data.team}"
        assert one["team"].count("/") == 3
    finally:
        async with db.sessions() as session:  # keep Shenzhen free of stray AEDs for the other tests
            gone = "SELECT id FROM aeds WHERE source = 'demo' AND external_id LIKE 'demo-aed%'"
            await session.execute(text(f"DELETE FROM aed_events WHERE aed_id IN ({gone})"))
            await session.execute(text(f"DELETE FROM aed_reports WHERE aed_id IN ({gone})"))
            await session.execute(text(f"DELETE FROM aed_availability_changes WHERE aed_id IN ({gone})"))
            await session.execute(
                text("DELETE FROM aeds WHERE source = 'demo' AND external_id LIKE 'demo-aed%'")
            )
            await session.commit()
        await redis.aclose()
        await db.dispose()


async def test_the_mover_clocks_the_shift_in_and_streams_moving_positions(
    live_server, admin_headers, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="simulator.live")
    rng = random.Random(secrets.randbits(32))
    lat, lng = rng.uniform(-40, 40), rng.uniform(-170, 170)
    city = City("Tiny", (District("Only", 20_000, box(lng - 0.02, lat - 0.01, lng + 0.02, lat + 0.01)),))
    tz = ZoneInfo("Asia/Shanghai")
    with httpx.Client(base_url=live_server.url) as sync_http:
        registered = [register(sync_http, admin_headers, mode="ebike") for _ in range(4)]
    people = [
        SimResponder(f"sim{i}", "city_inspector", lat + rng.uniform(-0.005, 0.005), lng, "ebike", shift)
        for i, shift in enumerate(["day", "night", "day", "night"])
    ]
    ids = {p.responder_id: r["id"] for p, r in zip(people, registered, strict=True)}
    working = {ids[p.responder_id] for p in people if p.shift == shift_at(datetime.now(tz).hour)}
    stop_at = time.monotonic() + 6
    async with httpx.AsyncClient(base_url=live_server.url, headers=admin_headers) as client:
        await stream_crowd(
            client, city, people, ids, tz=tz, tick_s=0.5, report_every_s=(1.0, 1.5), summary_every_s=2.0,
            until=lambda: time.monotonic() > stop_at,
        )  # fmt: skip
        first = await _positions(client, lat, lng)
        await asyncio.sleep(2)
        await stream_crowd(
            client, city, people, ids, tz=tz, tick_s=0.5, report_every_s=(1.0, 1.5),
            until=lambda: time.monotonic() > stop_at + 5,
        )  # fmt: skip
        second = await _positions(client, lat, lng)
        duty = {
            r["id"]: (await client.get(f"/v1/responders/{r['id']}")).json()["on_duty"] for r in registered
        }
        served = {
            r["id"]: (await client.get(f"/v1/responders/{r['id']}/service")).json()["on_duty_s"]
            for r in registered
        }
    assert set(first) == working == set(second)  # the shift on duty and reporting, the other one not
    assert {rid for rid, on in duty.items() if on} == working
    # clocked in through the duty API, so the service record counts their time (duty_sessions)
    assert {rid for rid, on_duty_s in served.items() if on_duty_s > 0} == working
    assert all(first[rid] != second[rid] for rid in working)  # and they move
    # a summary every 2 s instead of a line per request: the fixes of the shift, all stored
    summaries = [r.getMessage() for r in caplog.records if r.getMessage().startswith("demo mover:")]
    assert len(summaries) >= 2, summaries
    sent_stored = [re.search(r"(\d+) fixes sent, (\d+) stored$", line) for line in summaries]
    assert all(m is not None and m[1] == m[2] for m in sent_stored), summaries
    assert sum(int(m[1]) for m in sent_stored if m) >= len(working) * 2, summaries


async def _positions(client: httpx.AsyncClient, lat: float, lng: float) -> dict[str, tuple[float, float]]:
    bbox = f"{lat - 0.05},{lng - 0.05},{lat + 0.05},{lng + 0.05}"
    r = await client.get("/v1/responders/live", params={"bbox": bbox})
    assert r.status_code == 200, r.text
    return {f["properties"]["id"]: tuple(f["geometry"]["coordinates"]) for f in r.json()["features"]}
