"""Who hears of stored fixes: the seam through which other parts watch positions as they arrive.

`responders` stores positions and knows nothing of incidents; the dispatch side wants to see the
fixes of the few responders on their way to a patient (arrival geofences, `dispatch.arrival`). The
composition (`dispatch.app`) hands the ingest a `FixObserver`; each path that stores a responder's
fix (HTTP single and gateway batch, the websocket's `location` frame) calls it after storing.

An observer is called on the ingest's hot path (~70k fixes/s): it must be cheap and must not wait
(no I/O, no await); anything slow it schedules for itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from starlette.requests import HTTPConnection

from responders.store import FixColumns, Outcome, PositionFix


class FixObserver(Protocol):
    def fix_stored(self, fix: PositionFix) -> None:
        """One responder's own fix was stored (HTTP single update, websocket frame)."""

    def fixes_stored(self, fixes: FixColumns, outcomes: Sequence[Outcome]) -> None:
        """A gateway chunk was ingested: `outcomes[i]` is what became of fix `i` (only `stored`
        ones describe a position the store now holds)."""


class NoObserver:
    """Nobody watches: the ingest alone (a store without a dispatch side, benchmarks)."""

    def fix_stored(self, fix: PositionFix) -> None:
        return None

    def fixes_stored(self, fixes: FixColumns, outcomes: Sequence[Outcome]) -> None:
        return None


NO_OBSERVER = NoObserver()


def fix_observer(connection: HTTPConnection) -> FixObserver:
    """The observer the app was composed with (`app.state.fix_observer`), or nobody."""
    return getattr(connection.app.state, "fix_observer", NO_OBSERVER)
