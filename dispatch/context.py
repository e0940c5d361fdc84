"""What the dispatch logic needs from the running app, in one place (built once in the lifespan)."""

from __future__ import annotations

from dataclasses import dataclass

from core.config import Settings
from core.db import Database
from dispatch.fanout import Fanout
from dispatch.matching import MatchPolicy
from geo.reach import ReachModel
from responders.store import LiveLocationStore


@dataclass(frozen=True)
class DispatchContext:
    settings: Settings
    db: Database
    store: LiveLocationStore
    fanout: Fanout
    model: ReachModel
    policy: MatchPolicy

    @classmethod
    def build(
        cls, settings: Settings, db: Database, store: LiveLocationStore, fanout: Fanout
    ) -> DispatchContext:
        return cls(
            settings,
            db,
            store,
            fanout,
            ReachModel.from_settings(settings),
            MatchPolicy.from_settings(settings),
        )
