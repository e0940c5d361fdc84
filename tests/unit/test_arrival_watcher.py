"""The arrival watcher's side of the ingest (dispatch.arrival), without I/O: which stored fixes it
looks at, what it queues for writing, and that it never queues the same mark twice."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import numpy as np

from core.config import Settings
from core.db import Database
from core.redis import Keys, connect_redis
from dispatch.arrival import ArrivalWatcher, Engaged, id_prefixes
from dispatch.arrival_marks import TripKey
from dispatch.fanout import Fanout
from dispatch.geofence import Point, Radii, Trip
from geo.distance import destination
from responders.records import padded_id, uuid_ids
from responders.store import FixColumns, Outcome, PositionFix

PATIENT = Point(22.5431, 114.0579)
ORIGIN = Point(*destination(PATIENT.lat, PATIENT.lng, 200, 0))
NOW = datetime.now(UTC)


def watcher() -> ArrivalWatcher:
    """Never started: its database and fan-out are not reached by the ingest's side."""
    redis = connect_redis("redis://127.0.0.1:1/0")
    db = Database("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    return ArrivalWatcher(db, Fanout(redis, Keys("unit:")), Radii.from_settings(Settings()), asyncio.Event())


def engaged(responder_id: str) -> Engaged:
    key = TripKey(uuid.uuid4(), NOW, uuid.uuid4(), responder_id)
    return Engaged(key, Trip("cpr", PATIENT, NOW.timestamp() - 60, origin=ORIGIN))


def columns(rows: list[tuple[str, Point, float | None]]) -> FixColumns:
    ids = np.array([padded_id(r) for r, _, _ in rows], dtype="S36")
    lat, lng = [p.lat for _, p, _ in rows], [p.lng for _, p, _ in rows]
    ts = [NOW.timestamp()] * len(rows)
    return FixColumns.build(
        ids, np.array(lat), np.array(lng), np.array(ts), [a for *_, a in rows], [None] * len(rows)
    )


def test_prefixes_are_the_ids_first_eight_bytes() -> None:
    ids = uuid_ids([uuid.UUID(int=i << 96) for i in (1, 2)])
    assert id_prefixes(ids).tolist() == [int.from_bytes(i[:8], "little") for i in ids.tolist()]


def test_a_batch_queues_only_stored_fixes_of_engaged_responders_that_cross() -> None:
    w = watcher()
    runner = str(uuid.uuid4())
    twin = runner[:8] + str(uuid.uuid4())[8:]  # the same 8-byte prefix, someone else
    w.engage([engaged(runner)])
    at_patient = Point(*destination(PATIENT.lat, PATIENT.lng, 5, 90))
    fixes = columns(
        [(twin, at_patient, 5.0), (runner, at_patient, 80.0), (str(uuid.uuid4()), at_patient, 5.0)]
    )
    w.fixes_stored(fixes, [Outcome.stored] * 3)
    assert w.crossed.empty()  # the twin is not engaged; the runner's fix is too inaccurate
    good = columns([(runner, at_patient, 5.0)])
    w.fixes_stored(good, [Outcome.stale])
    assert w.crossed.empty()  # not stored: an older fix than the store holds
    w.fixes_stored(good, [Outcome.stored])
    crossed = w.crossed.get_nowait()
    assert [c.mark for c in crossed.judged.crossings] == ["en_route", "on_scene"]
    w.fixes_stored(good, [Outcome.stored])
    w.fix_stored(PositionFix(runner, at_patient.lat, at_patient.lng, NOW.timestamp(), 5.0))
    assert w.crossed.empty()  # seen once: not queued again


def test_a_single_fix_without_a_known_origin_supplies_it() -> None:
    w = watcher()
    rid = str(uuid.uuid4())
    trip = engaged(rid)
    trip.trip = Trip("cpr", PATIENT, NOW.timestamp() - 60)
    w.engage([trip])
    w.fix_stored(PositionFix(rid, ORIGIN.lat, ORIGIN.lng, NOW.timestamp(), None))
    crossed = w.crossed.get_nowait()
    assert crossed.judged.origin == ORIGIN and crossed.judged.crossings == ()
    assert w.by_responder[rid][0].trip.origin == ORIGIN
