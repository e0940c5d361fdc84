"""The living demo: on-shift workers walk and ride the street grid, and their phones report in.

`Crowd` is pure state (numpy): positions in metres around the city's centre, a heading along the
grid, a speed by travel mode, and when each phone reports next (every 10–15 s, as real phones do).
`stream_crowd` is the edge: it puts the shift on duty and streams due positions into the running
service through the real ingest path (`POST /v1/locations` batches, as a gateway would), handing
over at shift change (07:00 and 19:00 local) by taking the leaving shift off duty.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import shapely

from simulator.city import City, LocalProjection
from simulator.population import SimResponder, shift_at

log = logging.getLogger(__name__)
PATROL_SPEED_MPS = {"walk": 1.1, "ebike": 3.5}  # patrolling, not racing to a patient
REPORT_EVERY_S = (10.0, 15.0)
SUMMARY_EVERY_S = 10.0
TURN_PER_S = 1 / 90  # on average a turn every minute and a half
HEADINGS = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])


class Crowd:
    """Moving people inside the city outline; each step is vectorised over everyone."""

    def __init__(
        self,
        city: City,
        people: Sequence[SimResponder],
        seed: int = 0,
        now: float | None = None,
        report_every_s: tuple[float, float] = REPORT_EVERY_S,
    ) -> None:
        centre = city.outline.centroid
        self.proj = LocalProjection(centre.y, centre.x)
        self.outline = self.proj.forward(city.outline)
        shapely.prepare(self.outline)
        self.rng = np.random.default_rng([seed, 3])
        self.ids = [p.responder_id for p in people]
        self.modes = np.array([p.mode for p in people])
        x, y = self.proj.to_xy(np.array([p.lng for p in people]), np.array([p.lat for p in people]))
        self.x, self.y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        self.heading = self.rng.integers(0, 4, len(people))
        self.speed = np.array([PATROL_SPEED_MPS.get(m, 1.1) for m in self.modes])
        start = time.time() if now is None else now
        self.report_every_s = report_every_s
        self.next_report = start + self.rng.uniform(0, report_every_s[1], len(people))
        self.on_duty = np.zeros(len(people), dtype=bool)  # clocked in with the service yet?

    def __len__(self) -> int:
        return len(self.ids)

    def step(self, dt: float) -> None:
        """Move everyone `dt` seconds along their heading; turn now and then; never leave the city."""
        turn = self.rng.random(len(self)) < dt * TURN_PER_S
        self.heading = np.where(turn, (self.heading + self.rng.choice([1, 3], len(self))) % 4, self.heading)
        move = HEADINGS[self.heading] * (self.speed * dt)[:, None]
        nx, ny = self.x + move[:, 0], self.y + move[:, 1]
        inside = shapely.contains_xy(self.outline, nx, ny)
        self.x, self.y = np.where(inside, nx, self.x), np.where(inside, ny, self.y)
        self.heading = np.where(inside, self.heading, (self.heading + 2) % 4)  # turn back at the edge

    def latlng(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lng, lat = self.proj.to_lnglat(self.x[idx], self.y[idx])
        return np.asarray(lat), np.asarray(lng)

    def due(self, now: float) -> np.ndarray:
        """Indices whose phone reports now; each schedules its next report 10–15 s later."""
        idx = np.flatnonzero((self.next_report <= now) & self.on_duty)
        self.next_report[idx] = now + self.rng.uniform(*self.report_every_s, len(idx))
        return idx


def updates(crowd: Crowd, idx: np.ndarray, registry_ids: Mapping[str, str], now: float) -> list[dict]:
    """The batch body for the due phones (positions with a few metres of GPS noise)."""
    lat, lng = crowd.latlng(idx)
    ts = datetime.fromtimestamp(now, UTC).isoformat()
    return [
        {
            "responder_id": registry_ids[crowd.ids[k]],
            "lat": round(float(a), 6),
            "lng": round(float(b), 6),
            "ts": ts,
            "accuracy_m": 8.0,
            "mode": str(crowd.modes[k]),
        }
        for k, a, b in zip(idx, lat, lng, strict=True)
    ]


@dataclass
class MoverTally:
    """What became of the fixes the mover sent since the last summary: one log line every few
    seconds instead of an access-log line per request, which buried `make run`'s start-up block."""

    sent: int = 0
    stored: int = 0
    stale: int = 0
    not_on_duty: int = 0
    not_qualified: int = 0
    rejected: int = 0
    refused: int = 0  # in batches the service answered with an error

    def count(self, sent: int, status: int, answer: Mapping[str, Any]) -> None:
        """One batch of `sent` fixes and the service's answer (`IngestResult` when status is 200)."""
        self.sent += sent
        if status != 200:
            self.refused += sent
            return
        self.stored += int(answer.get("stored", 0))
        self.stale += int(answer.get("stale", 0))
        self.not_on_duty += int(answer.get("not_on_duty", 0))
        self.not_qualified += int(answer.get("not_qualified", 0))
        self.rejected += len(answer.get("rejected", []))

    def line(self, on_duty: int, window_s: float) -> str:
        """The summary, e.g. `demo mover: 5,601 on duty; last 10 s: 4,480 fixes sent, 4,470 stored,
        10 stale`; kinds that did not happen are left out."""
        kinds = ", ".join(
            f"{getattr(self, f.name):,} {f.name.replace('_', ' ')}"
            for f in fields(self)[1:]
            if getattr(self, f.name) or f.name == "stored"
        )
        return f"demo mover: {on_duty:,} on duty; last {window_s:.0f} s: {self.sent:,} fixes sent, {kinds}"


async def set_duty(
    client: httpx.AsyncClient, ids: Sequence[str], on_duty: bool, parallel: int = 16
) -> list[bool]:
    """Put responders on or off duty through the API; which ones the service accepted."""
    gate = asyncio.Semaphore(parallel)

    async def one(rid: str) -> bool:
        async with gate:
            r = await client.put(f"/v1/responders/{rid}/duty", json={"on_duty": on_duty})
            return r.status_code == 200

    return list(await asyncio.gather(*(one(rid) for rid in ids)))


async def clock_in(
    client: httpx.AsyncClient, crowd: Crowd, registry_ids: Mapping[str, str], chunk: int = 200
) -> None:
    """The shift clocks in a few hundred at a time; each reports once the service has them on duty."""
    for start in range(0, len(crowd), chunk):
        part = range(start, min(start + chunk, len(crowd)))
        accepted = await set_duty(client, [registry_ids[crowd.ids[k]] for k in part], True)
        crowd.on_duty[list(part)] = accepted
    log.info("demo: %d of %d on duty", int(crowd.on_duty.sum()), len(crowd))


async def stream_crowd(
    client: httpx.AsyncClient,
    city: City,
    people: Sequence[SimResponder],
    registry_ids: Mapping[str, str],
    *,
    tz: ZoneInfo,
    seed: int = 0,
    batch_max: int = 5000,
    tick_s: float = 1.0,
    report_every_s: tuple[float, float] = REPORT_EVERY_S,
    summary_every_s: float = SUMMARY_EVERY_S,
    until: Callable[[], bool] = lambda: False,
) -> None:
    """Keep the shift on duty and moving until `until()` says stop (or forever); log a summary of
    what became of the fixes every `summary_every_s`."""
    known = [p for p in people if p.responder_id in registry_ids]
    shift = shift_at(datetime.now(tz).hour)
    crowd = Crowd(city, [p for p in known if p.shift == shift], seed, report_every_s=report_every_s)
    log.info("demo: %s shift of %d clocking in", shift, len(crowd))
    tasks = {asyncio.create_task(clock_in(client, crowd, registry_ids))}
    off = [registry_ids[p.responder_id] for p in known if p.shift != shift]
    tasks.add(asyncio.create_task(set_duty(client, off, False, parallel=4)))  # left over from a restart
    last = summarised = time.time()
    tally = MoverTally()
    while not until():
        await asyncio.sleep(tick_s)
        now = time.time()
        crowd.step(now - last)
        last = now
        body = updates(crowd, crowd.due(now), registry_ids, now)
        for start in range(0, len(body), batch_max):
            batch = body[start : start + batch_max]
            r = await client.post("/v1/locations", json={"updates": batch})
            tally.count(len(batch), r.status_code, r.json() if r.status_code == 200 else {})
            if r.status_code != 200:
                log.warning("demo: location batch refused: %s %s", r.status_code, r.text[:200])
        if now - summarised >= summary_every_s:
            log.info("%s", tally.line(int(crowd.on_duty.sum()), now - summarised))
            tally, summarised = MoverTally(), now
        if shift_at(datetime.now(tz).hour) != shift:  # shift change: hand over, start a new crowd
            leaving = [registry_ids[i] for i in crowd.ids]
            shift = shift_at(datetime.now(tz).hour)
            crowd = Crowd(city, [p for p in known if p.shift == shift], seed, report_every_s=report_every_s)
            tasks.add(asyncio.create_task(clock_in(client, crowd, registry_ids)))
            tasks.add(asyncio.create_task(set_duty(client, leaving, False, parallel=4)))
        tasks = {t for t in tasks if not t.done()}
