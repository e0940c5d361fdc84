"""Looking in the stores themselves for what they keep about a responder (privacy tests), and
setting up incident timelines that hold responders' positions.

The scanners read every key of a deployment's Redis prefix and every row of every table (through
the row's text form, and the text form of any PostGIS column), so a place that keeps a position
is found whether or not the test knew about it.
"""

from __future__ import annotations

import json
import random
import struct
import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import httpx
from redis.asyncio import Redis

from tests.support.db import plain_dsn
from tests.support.people import bearer, on_duty_at

ARRIVAL_KINDS = ("en_route", "aed_picked_up", "on_scene")


@dataclass(frozen=True)
class Spot:
    """A position no other test uses, with the forms a store might keep it in."""

    lat: float
    lng: float

    @classmethod
    def fresh(cls) -> Spot:
        """Somewhere remote (the database is shared), to the micro-degree as the live store keeps it."""
        return cls(round(random.uniform(-45, 45), 6), round(random.uniform(-170, 170), 6))

    def needles(self) -> list[bytes]:
        """The position as text (JSON, logs, SQL) and as the live store's binary records (<f8)."""
        return [repr(self.lat).encode(), repr(self.lng).encode(), struct.pack("<d", self.lat)]


async def _value(redis: Redis, key: bytes) -> bytes:
    kind = (await redis.type(key)).decode()
    if kind == "string":
        return await redis.get(key) or b""
    if kind == "hash":
        return b"\n".join(k + b"=" + v for k, v in (await redis.hgetall(key)).items())
    if kind == "set":
        return b"\n".join(await redis.smembers(key))
    if kind == "zset":
        return b"\n".join(m for m, _ in await redis.zrange(key, 0, -1, withscores=True))
    if kind == "list":
        return b"\n".join(await redis.lrange(key, 0, -1))
    return b""


async def redis_mentions(redis_url: str, prefix: str, needles: list[bytes]) -> dict[str, bytes]:
    """Every key under `prefix` whose name or value holds one of `needles`: name → what matched."""
    redis = Redis.from_url(redis_url)  # a single server: the tests' own
    found: dict[str, bytes] = {}
    try:
        keys = [k async for k in redis.scan_iter(match=f"{prefix}:*".encode(), count=1000)]
        for key in keys:
            blob = key + b"\n" + await _value(redis, key)
            hits = [n for n in needles if n in blob]
            if hits:
                found[key.decode(errors="replace")] = hits[0]
    finally:
        await redis.aclose()
    return found


async def tables_mentioning(database_url: str, needles: list[str]) -> dict[str, int]:
    """Every table with rows whose text (or a PostGIS column's WKT) holds one of `needles`:
    table → rows. Partitioned tables are read through their parent."""
    conn = await asyncpg.connect(plain_dsn(database_url))
    try:
        tables = await conn.fetch(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
            " AND c.relname <> 'spatial_ref_sys'"
        )
        found: dict[str, int] = {}
        patterns = [f"%{n}%" for n in needles]
        for (table,) in tables:
            geo = await conn.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public'"
                " AND table_name = $1 AND udt_name IN ('geography', 'geometry')",
                table,
            )
            texts = ["r::text", *(f'ST_AsText(r."{c}"::geometry, 9)' for (c,) in geo)]
            where = " OR ".join(f"{t} LIKE ANY($1::text[])" for t in texts)
            rows = await conn.fetchval(f'SELECT count(*) FROM "{table}" AS r WHERE {where}', patterns)
            if rows:
                found[table] = rows
        return found
    finally:
        await conn.close()


def dispatcher(http: httpx.Client, admin: dict[str, str]) -> dict[str, str]:
    r = http.post("/v1/tokens", json={"role": "dispatcher", "label": "privacy desk"}, headers=admin)
    assert r.status_code == 201, r.text
    return bearer(r.json()["token"])


def accepted_alert(
    http: httpx.Client, admin: dict[str, str], desk: dict[str, str], **fields: object
) -> tuple[dict, dict, str]:
    """A responder on duty beside a new incident who accepted its alert through the API:
    (the responder as registered, the incident as opened, the alert's id)."""
    spot = Spot.fresh()
    person = on_duty_at(http, admin, spot.lat + 0.0005, spot.lng, **fields)
    r = http.post(
        "/v1/incidents",
        json={"lat": spot.lat, "lng": spot.lng, "category": "cardiac_arrest", "address": "Gate 7"},
        headers=desk,
    )
    assert r.status_code == 201, r.text
    incident = r.json()
    assert [a["responder_id"] for a in incident["alerts"]] == [person["id"]]
    alert_id = incident["alerts"][0]["alert_id"]
    r = http.post(
        f"/v1/alerts/{alert_id}/answer", json={"response": "accept"}, headers=bearer(person["token"])
    )
    assert r.status_code == 200, r.text
    return person, incident, alert_id


async def record_timeline_positions(database_url: str, alert_id: str, where: Spot) -> None:
    """Where the responder accepted (`alerts.accepted_lat/lng`) and the arrival events with their
    fixes, written as the arrival piece (`dispatch.arrival`, not on this branch) writes them."""
    conn = await asyncpg.connect(plain_dsn(database_url))
    try:
        async with conn.transaction():
            alert = await conn.fetchrow(
                "UPDATE alerts SET accepted_lat = $2, accepted_lng = $3 WHERE id = $1"
                " RETURNING incident_id, responder_id, role",
                uuid.UUID(alert_id),
                where.lat,
                where.lng,
            )
            for kind in ARRIVAL_KINDS:
                data = {
                    "alert_id": alert_id,
                    "responder_id": str(alert["responder_id"]),
                    "role": alert["role"],
                    "source": "auto",
                    "lat": where.lat,
                    "lng": where.lng,
                    "accuracy_m": 8.0,
                }
                await conn.execute(
                    "INSERT INTO incident_events (incident_id, ts, kind, data)"
                    " VALUES ($1, now(), $2, $3::jsonb)",
                    alert["incident_id"],
                    kind,
                    json.dumps(data),
                )
    finally:
        await conn.close()


async def backdate_incident(database_url: str, incident_id: str, to: datetime) -> None:
    """Move an incident, its alerts and its events back in time, as if it happened at `to` (rows
    move between the monthly partitions)."""
    conn = await asyncpg.connect(plain_dsn(database_url))
    iid = uuid.UUID(incident_id)
    try:
        async with conn.transaction():
            shift = await conn.fetchval(
                "SELECT $2::timestamptz - created_at FROM incidents WHERE id = $1", iid, to
            )
            await conn.execute(
                "UPDATE incidents SET created_at = created_at + $2, closed_at = closed_at + $2 WHERE id = $1",
                iid,
                shift,
            )
            await conn.execute(
                "UPDATE alerts SET opened_at = opened_at + $2, created_at = created_at + $2,"
                " updated_at = updated_at + $2, answered_at = answered_at + $2, expires_at = expires_at + $2"
                " WHERE incident_id = $1",
                iid,
                shift,
            )
            await conn.execute("UPDATE incident_events SET ts = ts + $2 WHERE incident_id = $1", iid, shift)
    finally:
        await conn.close()
