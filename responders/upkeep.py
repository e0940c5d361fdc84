"""Background upkeep of the live store, run by every API worker (all steps are idempotent).

The sweeper bounds Redis memory by dropping positions past the staleness limit or whose
certificates lapsed (queries already ignore them). At start-up, cells of the earlier live-store
layout (an upgrade with Redis kept) are deleted. When the profile hash is gone — Redis restarted
or was flushed — duty profiles are rebuilt from Postgres so phones' next fixes are accepted again.
"""

from __future__ import annotations

import asyncio
import logging

from core.config import Settings
from core.db import Database
from responders.service import resync_live_profiles
from responders.store import LiveLocationStore

log = logging.getLogger(__name__)


async def upkeep_once(
    db: Database, store: LiveLocationStore, settings: Settings, *, force_resync: bool
) -> None:
    if force_resync:  # start-up: also forget cells of the earlier layout, once
        dropped = await store.drop_legacy_cells()
        if dropped:
            log.info("dropped cells of the earlier live-store layout", extra={"cells": dropped})
    if force_resync or await store.profiles_lost():
        async with db.sessions() as session:
            count = await resync_live_profiles(session, store, settings)
        log.info("live profiles resynced from the registry", extra={"on_duty": count})
    removed = await store.sweep()
    if removed:
        log.info("swept stale live positions", extra={"removed": removed})


async def run_upkeep(db: Database, store: LiveLocationStore, settings: Settings) -> None:
    """Loop until cancelled; a failing round (Redis down) is logged and retried, never fatal."""
    interval = max(1.0, settings.staleness_s / 4)
    first = True
    while True:
        try:
            await upkeep_once(db, store, settings, force_resync=first)
            first = False
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("live-store upkeep failed; retrying")
        await asyncio.sleep(interval)
