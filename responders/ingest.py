"""Location ingest: from validated reports to the live store, the same for HTTP and websockets.

Phones resend and clocks drift. A report older than the stored one, or older than the staleness
limit, is dropped without error (it would only move someone backwards); one from further in the
future than the allowed clock skew is rejected, because storing it would block every honest update
after it. Both are counted in `/metrics`.
"""

from __future__ import annotations

import collections
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from prometheus_client import Counter

from geo.crs import Crs, to_wgs84, to_wgs84_np
from responders.observers import NO_OBSERVER, FixObserver
from responders.records import uuid_ids
from responders.schemas import BatchLocationUpdate, IngestResult, LocationUpdate, RejectedUpdate
from responders.store import INGEST_CHUNK, FixColumns, LiveLocationStore, Outcome, PositionFix

LOCATION_UPDATES = Counter(
    "location_updates_total",
    "Location updates by outcome (stored, stale, not_on_duty, not_qualified, future_rejected)",
    ["outcome"],
)


class IngestSettings(Protocol):
    staleness_s: float
    max_clock_skew_s: float


class LocationRejected(ValueError):
    """A report that must not be stored; `str()` names the field and the rule."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


@dataclass(frozen=True, slots=True)
class Clock:
    """The ingest's view of time: `now` and the accepted window around it.

    `future` and `too_old` take one timestamp or a numpy array of them (a whole batch at once).
    """

    now: float
    skew_s: float
    staleness_s: float

    @classmethod
    def of(cls, settings: IngestSettings, now: float | None = None) -> Clock:
        return cls(time.time() if now is None else now, settings.max_clock_skew_s, settings.staleness_s)

    def future(self, ts: float | np.ndarray) -> bool | np.ndarray:
        return ts > self.now + self.skew_s

    def too_old(self, ts: float | np.ndarray) -> bool | np.ndarray:
        return ts < self.now - self.staleness_s

    @property
    def future_rule(self) -> str:
        return f"must not be more than {self.skew_s:g} s in the future (clock skew)"


def to_fix(responder_id: uuid.UUID | str, update: LocationUpdate, clock: Clock) -> PositionFix | None:
    """The WGS-84 fix to store; None when it is too old to matter; raises when it is in the future."""
    ts = update.ts.timestamp()
    if clock.future(ts):
        raise LocationRejected("ts", clock.future_rule)
    if clock.too_old(ts):
        return None
    lat, lng = to_wgs84(update.lat, update.lng, update.crs)
    mode = update.mode.value if update.mode else None
    return PositionFix(str(responder_id), lat, lng, ts, update.accuracy_m, mode)


@dataclass(frozen=True, slots=True)
class JudgedUpdates:
    """Some of a gateway's updates judged on time: the fixes to store as columns, the positions
    (in the updates given) of those from the future, and how many were too old to matter."""

    fixes: FixColumns
    future: list[int]
    too_old: int


def judge_updates(updates: Sequence[BatchLocationUpdate], clock: Clock) -> JudgedUpdates:
    """A gateway's updates as WGS-84 columns, the future and too-old ones set aside.

    One list pass per field and numpy for the rest: per update this is a few hundred nanoseconds,
    where building a fix object each cost microseconds of a batch's time.
    """
    ts = np.array([u.ts.timestamp() for u in updates], dtype=np.float64)
    future, too_old = clock.future(ts), clock.too_old(ts)
    keep = np.flatnonzero(~(future | too_old))
    if len(keep) < len(updates):
        updates, ts = [updates[i] for i in keep.tolist()], ts[keep]
    lat = np.array([u.lat for u in updates], dtype=np.float64)
    lng = np.array([u.lng for u in updates], dtype=np.float64)
    crs = np.array([u.crs.value for u in updates])
    for datum in set(crs.tolist()) - {Crs.wgs84.value}:  # phones on Chinese base maps: their rows only
        rows = np.flatnonzero(crs == datum)
        lat[rows], lng[rows] = to_wgs84_np(lat[rows], lng[rows], datum)
    ids = uuid_ids([u.responder_id for u in updates])
    fixes = FixColumns.build(ids, lat, lng, ts, [u.accuracy_m for u in updates], [u.mode for u in updates])
    return JudgedUpdates(fixes, np.flatnonzero(future).tolist(), int(too_old.sum()))


def _tally(result: IngestResult, outcomes: Sequence[Outcome]) -> IngestResult:
    """Count outcomes into the result and `/metrics`: one counter call per outcome, not per update."""
    for outcome, n in collections.Counter(outcomes).items():
        setattr(result, outcome.value, getattr(result, outcome.value) + n)
        LOCATION_UPDATES.labels(outcome.value).inc(n)
    return result


async def ingest_location(
    store: LiveLocationStore,
    settings: IngestSettings,
    responder_id: uuid.UUID | str,
    update: LocationUpdate,
    now: float | None = None,
    observer: FixObserver = NO_OBSERVER,
) -> Outcome:
    """One responder's own report (HTTP or websocket); raises `LocationRejected` for a future ts.
    A stored fix is shown to `observer` (arrival geofences)."""
    try:
        fix = to_fix(responder_id, update, Clock.of(settings, now))
    except LocationRejected:
        LOCATION_UPDATES.labels("future_rejected").inc()
        raise
    outcome = Outcome.stale if fix is None else await store.ingest_one(fix)
    if fix is not None and outcome is Outcome.stored:
        observer.fix_stored(fix)
    _tally(IngestResult(), [outcome])
    return outcome


async def ingest_batch(
    store: LiveLocationStore,
    settings: IngestSettings,
    updates: Sequence[BatchLocationUpdate],
    now: float | None = None,
    observer: FixObserver = NO_OBSERVER,
) -> IngestResult:
    """Many responders' reports (a gateway): good ones stored, future ones listed in `rejected`.

    Judged and packed a store chunk at a time, so Redis stores one chunk while the next is prepared.
    Each chunk is then shown to `observer` with its outcomes (arrival geofences).
    """
    clock = Clock.of(settings, now)
    result, too_old = IngestResult(), 0
    judged_chunks: list[FixColumns] = []

    def chunks() -> Iterator[FixColumns]:
        nonlocal too_old
        for start in range(0, len(updates), INGEST_CHUNK):
            judged = judge_updates(updates[start : start + INGEST_CHUNK], clock)
            result.rejected += [
                RejectedUpdate(index=start + i, field=f"updates.{start + i}.ts", rule=clock.future_rule)
                for i in judged.future
            ]
            too_old += judged.too_old
            judged_chunks.append(judged.fixes)
            yield judged.fixes

    outcomes = await store.ingest_chunks(chunks())
    first = 0
    for fixes in judged_chunks:  # the outcomes follow the chunks' fixes in order
        observer.fixes_stored(fixes, outcomes[first : first + len(fixes)])
        first += len(fixes)
    if result.rejected:
        LOCATION_UPDATES.labels("future_rejected").inc(len(result.rejected))
    return _tally(result, [*outcomes, *[Outcome.stale] * too_old])
