"""The kept positions of `privacy.positions` as SQL: which rows hold one, and how it is erased.

One description per table, used by the retention job (rows past the retention, month by month)
and by erasure (one person's rows), so both find and erase exactly the same things.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Text, and_, cast, func, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import ARRAY, array
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from dispatch.models import Alert, IncidentEvent
from privacy.positions import ALERT_POSITION_COLUMNS, EVENT_POSITION_KEYS, POSITION_EVENT_KINDS

_KEYS = cast(array(EVENT_POSITION_KEYS), ARRAY(Text))


@dataclass(frozen=True)
class KeptPositions:
    """One table's kept positions: `holds` tells a row that still keeps one, `erased` is what an
    UPDATE sets to erase it (nothing else of the row changes), `key` is its partition key."""

    table: type[Alert] | type[IncidentEvent]
    key: InstrumentedAttribute[datetime]
    holds: ColumnElement[bool]
    erased: dict[Any, Any]

    async def erase(self, session: AsyncSession, *where: ColumnElement[bool]) -> int:
        """Erase the positions of the rows matching `where` in one statement; how many rows."""
        result = await session.execute(
            update(self.table).where(self.holds, *where).values(self.erased).returning(self.table.id)
        )
        return len(result.all())

    async def erase_batch(self, session: AsyncSession, batch: int, *where: ColumnElement[bool]) -> int:
        """Erase at most `batch` of the rows matching `where` (rows another transaction holds are
        skipped, for the next run); how many. `where` should bound `key`: both the choice and
        the UPDATE then read only the partitions it names."""
        chosen = (
            select(self.table.id, self.key)
            .where(self.holds, *where)
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
        return await self.erase(session, *where, tuple_(self.table.id, self.key).in_(chosen))

    async def count(self, session: AsyncSession, *where: ColumnElement[bool]) -> int:
        """How many rows matching `where` still keep a position (what `erase` would change)."""
        query = select(func.count()).select_from(self.table).where(self.holds, *where)
        return int((await session.execute(query)).scalar_one())


ALERT_POSITIONS = KeptPositions(
    table=Alert,
    key=Alert.opened_at,
    holds=or_(*(getattr(Alert, c).is_not(None) for c in ALERT_POSITION_COLUMNS)),
    erased={getattr(Alert, c): None for c in ALERT_POSITION_COLUMNS},
)
EVENT_POSITIONS = KeptPositions(
    table=IncidentEvent,
    key=IncidentEvent.ts,
    holds=and_(IncidentEvent.kind.in_(POSITION_EVENT_KINDS), IncidentEvent.data.has_any(_KEYS)),
    erased={IncidentEvent.data: IncidentEvent.data.op("-")(_KEYS)},
)
KEPT = (ALERT_POSITIONS, EVENT_POSITIONS)
