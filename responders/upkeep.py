"""Background upkeep of the live store, run by every API worker: each job once, under a lease.

The sweeper bounds Redis memory by dropping positions past the staleness limit or whose
certificates lapsed (queries already ignore them). It runs region by region, each region under a
lease that lasts the sweep period and is not released: with N workers each region is swept once
per period, by whichever worker comes first (and on a cluster the sweeps of different regions run
on their own shards). The directory parts' move marks are swept the same way, each part under a
lease: a mark older than `MOVE_MARK_S` was left by a worker that died mid-move, and the copy it
stood for goes unless the directory accounts for it. At start-up, keys of earlier live-store
layouts are deleted. When Redis lost
data — a shard restarted or was flushed, told by the store's loss markers, not by whether a
profile hash exists — the duty profiles are rebuilt from Postgres so phones' next fixes are
accepted again, once, under a lease renewed while the rebuild runs: a worker that finds it held
leaves the rebuild to its holder (if the holder dies, the lease expires and the next check does
it). That check runs every `live_check_s` (a couple of seconds: until the rebuild, every fix is
refused as "not on duty"); the sweep every quarter of the staleness limit.
"""

from __future__ import annotations

import asyncio
import logging
import time

from core.config import Settings
from core.db import Database
from core.lease import Lease
from core.outage import log_failed_round
from core.redis import gather_limited
from responders.service import resync_live_profiles
from responders.store import LiveLocationStore

log = logging.getLogger(__name__)
REBUILD_LEASE_S = 30.0  # renewed every 10 s while the rebuild runs; a dead holder's lapses in 30


def sweep_period_s(settings: Settings) -> float:
    return max(1.0, settings.staleness_s / 4)


async def rebuild_if_lost(db: Database, store: LiveLocationStore, settings: Settings, *, force: bool) -> bool:
    """Rebuild the duty profiles from Postgres when lost (or `force`: start-up), unless another
    worker is rebuilding right now; True when this worker did."""
    lost = await store.profiles_lost()
    if not (force or lost):
        return False
    async with Lease(store.redis, store.layout.rebuild_lease_key, REBUILD_LEASE_S).held() as ours:
        if not ours:
            return False
        token = await store.begin_rebuild()  # before the rebuild: a loss during it still reads as lost
        async with db.sessions() as session:
            count = await resync_live_profiles(session, store, settings)
        await store.mark_rebuilt(token, warmup_s=settings.live_warmup_s if lost else 0.0)
    log.info("live profiles resynced from the registry", extra={"on_duty": count, "lost": lost})
    return True


async def sweep_regions(store: LiveLocationStore, period_s: float) -> int:
    """Sweep each region whose lease for this period is free; returns how many positions went."""

    async def sweep(region: str) -> int:
        if not await Lease(store.redis, store.layout.sweep_lease_key(region), period_s).acquire():
            return 0  # another worker swept it in this period
        return await store.sweep_region(region)

    return sum(await gather_limited(map(sweep, sorted(await store.regions()))))


async def sweep_moves(store: LiveLocationStore, period_s: float) -> int:
    """Clear the marks of moves whose worker died, in each directory part whose lease for this
    period is free; returns how many orphan copies went."""

    async def sweep(tag: str) -> int:
        if not await Lease(store.redis, store.layout.sweep_lease_key(tag), period_s).acquire():
            return 0
        return await store.sweep_moves(tag)

    await store.ready()  # the leases go out at once: a cluster client must know the slots first
    return sum(await gather_limited(map(sweep, store.layout.directory_tags())))


async def upkeep_once(
    db: Database, store: LiveLocationStore, settings: Settings, *, force_resync: bool, sweep: bool = True
) -> None:
    if force_resync:  # start-up: also forget keys of the earlier layouts, once
        dropped = await store.drop_legacy_cells()
        if dropped:
            log.info("dropped keys of an earlier live-store layout", extra={"cells": dropped})
    await rebuild_if_lost(db, store, settings, force=force_resync)
    if sweep:
        removed = await sweep_regions(store, sweep_period_s(settings))
        if removed:
            log.info("swept stale live positions", extra={"removed": removed})
        orphans = await sweep_moves(store, sweep_period_s(settings))
        if orphans:
            log.warning(
                "dropped copies left by moves between regions that never finished", extra={"orphans": orphans}
            )


async def run_upkeep(db: Database, store: LiveLocationStore, settings: Settings) -> None:
    """Loop until cancelled; a failing round (Redis down) is logged and retried, never fatal."""
    sweep_every = sweep_period_s(settings)
    first, swept_at = True, 0.0
    while True:
        try:
            sweep = time.monotonic() - swept_at >= sweep_every
            await upkeep_once(db, store, settings, force_resync=first, sweep=sweep)
            first = False
            if sweep:
                swept_at = time.monotonic()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log_failed_round(log, "live-store upkeep", exc)
        await asyncio.sleep(settings.live_check_s)
