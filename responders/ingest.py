"""Location ingest: from validated reports to the live store, the same for HTTP and websockets.

Phones resend and clocks drift. A report older than the stored one, or older than the staleness
limit, is dropped without error (it would only move someone backwards); one from further in the
future than the allowed clock skew is rejected, because storing it would block every honest update
after it. Both are counted in `/metrics`.
"""

from __future__ import annotations

import asyncio
import collections
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import Counter

from geo.crs import to_wgs84
from responders.schemas import IngestResult, LocationUpdate, RejectedUpdate
from responders.store import INGEST_CHUNK, LiveLocationStore, Outcome, PositionFix

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
    """The ingest's view of time: `now` and the accepted window around it."""

    now: float
    skew_s: float
    staleness_s: float

    @classmethod
    def of(cls, settings: IngestSettings, now: float | None = None) -> Clock:
        return cls(time.time() if now is None else now, settings.max_clock_skew_s, settings.staleness_s)


def to_fix(responder_id: uuid.UUID | str, update: LocationUpdate, clock: Clock) -> PositionFix | None:
    """The WGS-84 fix to store; None when it is too old to matter; raises when it is in the future."""
    ts = update.ts.timestamp()
    if ts > clock.now + clock.skew_s:
        raise LocationRejected("ts", f"must not be more than {clock.skew_s:g} s in the future (clock skew)")
    if ts < clock.now - clock.staleness_s:
        return None
    lat, lng = to_wgs84(update.lat, update.lng, update.crs)
    mode = update.mode.value if update.mode else None
    return PositionFix(str(responder_id), lat, lng, ts, update.accuracy_m, mode)


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
) -> Outcome:
    """One responder's own report (HTTP or websocket); raises `LocationRejected` for a future ts."""
    try:
        fix = to_fix(responder_id, update, Clock.of(settings, now))
    except LocationRejected:
        LOCATION_UPDATES.labels("future_rejected").inc()
        raise
    outcomes = [Outcome.stale if fix is None else await store.ingest_one(fix)]
    _tally(IngestResult(), outcomes)
    return outcomes[0]


async def ingest_batch(
    store: LiveLocationStore,
    settings: IngestSettings,
    updates: Sequence[tuple[uuid.UUID | str, LocationUpdate]],
    now: float | None = None,
) -> IngestResult:
    """Many responders' reports (a gateway): good ones stored, future ones listed in `rejected`.

    Converted and stored a chunk at a time: each chunk's script call is started before the next
    chunk is converted, so Redis works while this process prepares what follows.
    """
    clock = Clock.of(settings, now)
    result = IngestResult()
    pending: list[asyncio.Task[list[Outcome]]] = []
    too_old = 0
    for start in range(0, len(updates), INGEST_CHUNK):
        fixes: list[PositionFix] = []
        for index, (responder_id, update) in enumerate(updates[start : start + INGEST_CHUNK], start):
            try:
                fix = to_fix(responder_id, update, clock)
            except LocationRejected as exc:
                field = f"updates.{index}.{exc.field}"
                result.rejected.append(RejectedUpdate(index=index, field=field, rule=exc.rule))
                continue
            if fix is None:
                too_old += 1
            else:
                fixes.append(fix)
        pending.append(asyncio.create_task(store.ingest(fixes)))
        await asyncio.sleep(0)  # let the task send its chunk before this one converts the next
    chunks = await asyncio.gather(*pending)
    if result.rejected:
        LOCATION_UPDATES.labels("future_rejected").inc(len(result.rejected))
    return _tally(result, [*(o for chunk in chunks for o in chunk), *[Outcome.stale] * too_old])
