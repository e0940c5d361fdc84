"""What the dispatch logic needs from the running app, in one place (built once in the lifespan)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

from core.config import Settings
from core.db import Database
from core.redis import Keys
from dispatch.channels.base import Channel
from dispatch.channels.presence import Presence
from dispatch.fanout import Fanout
from dispatch.policy.circle import CircleRules
from geo.reach import ReachModel
from responders.acceptance_store import AcceptanceStore
from responders.store import LiveLocationStore


@dataclass(frozen=True)
class DispatchContext:
    settings: Settings
    db: Database
    store: LiveLocationStore
    fanout: Fanout
    model: ReachModel
    policy: CircleRules
    """The dispatch policy's knobs (`dispatch.policy.circle`): targets, success level, cap, timeouts."""
    acceptance: AcceptanceStore
    """Each responder's answers counted, and read back as their chance of accepting."""
    channels: Mapping[str, Channel] = field(default_factory=dict)
    """The ways past the socket (push, sms, voice) by name; one not configured is absent."""
    presence: Presence | None = None
    """Who holds a socket on some worker (the ladder's first decision)."""
    wake_ladder: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when alerts are published, so the ladder takes their first step now, not at the tick."""
    engaged_changed: asyncio.Event = field(default_factory=asyncio.Event)
    """Set after an accept or a tap, so this worker's arrival watcher (`dispatch.arrival`) reads
    the engaged trips now, not at its next refresh."""

    @classmethod
    def build(
        cls,
        settings: Settings,
        db: Database,
        store: LiveLocationStore,
        fanout: Fanout,
        channels: Mapping[str, Channel] | None = None,
    ) -> DispatchContext:
        return cls(
            settings,
            db,
            store,
            fanout,
            ReachModel.from_settings(settings),
            CircleRules.from_settings(settings),
            AcceptanceStore.from_settings(settings),
            channels=dict(channels or {}),
            presence=Presence(fanout.redis, Keys(settings.redis_prefix)),
        )
