"""Background upkeep of the live store, run by every API worker (all steps are idempotent).

The sweeper bounds Redis memory by dropping positions past the staleness limit or whose
certificates lapsed (queries already ignore them). At start-up, cells of the earlier live-store
layout (an upgrade with Redis kept) are deleted. When Redis lost its data — restarted or flushed,
told by the store's generation marker, not by whether the profile hash exists — duty profiles are
rebuilt from Postgres so phones' next fixes are accepted again. That check runs every
`live_check_s` (a couple of seconds: until it runs, every fix is refused as "not on duty"); the
sweep only every quarter of the staleness limit.
"""

from __future__ import annotations

import asyncio
import logging
import time

from core.config import Settings
from core.db import Database
from core.outage import log_failed_round
from responders.service import resync_live_profiles
from responders.store import LiveLocationStore

log = logging.getLogger(__name__)


async def upkeep_once(
    db: Database, store: LiveLocationStore, settings: Settings, *, force_resync: bool, sweep: bool = True
) -> None:
    if force_resync:  # start-up: also forget cells of the earlier layout, once
        dropped = await store.drop_legacy_cells()
        if dropped:
            log.info("dropped cells of the earlier live-store layout", extra={"cells": dropped})
    lost = await store.profiles_lost()
    if force_resync or lost:
        run = await store.server_run()  # before the rebuild: a restart during it reads as lost
        async with db.sessions() as session:
            count = await resync_live_profiles(session, store, settings)
        await store.mark_rebuilt(run, warmup_s=settings.live_warmup_s if lost else 0.0)
        log.info("live profiles resynced from the registry", extra={"on_duty": count, "lost": lost})
    if sweep:
        removed = await store.sweep()
        if removed:
            log.info("swept stale live positions", extra={"removed": removed})


async def run_upkeep(db: Database, store: LiveLocationStore, settings: Settings) -> None:
    """Loop until cancelled; a failing round (Redis down) is logged and retried, never fatal."""
    sweep_every = max(1.0, settings.staleness_s / 4)
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
