"""Where each responder's answers to alerts are counted, and read back as acceptance estimates.

Every real answer — accepted, declined, or left unanswered until the alert expired — adds one to
three tallies (`acceptance_tallies`): the responder's, their team's and their category's, in the
time-of-day band the alert went out in (the city's local time). The increment is an
`INSERT … ON CONFLICT DO UPDATE … + 1` in the caller's transaction, the one that moves the alert
out of pending: the answer and its count commit together or not at all, and two answers at once
both count, because the row lock serialises the two additions. Alerts the dispatcher ended
(incident closed, `enough_responders`) are not answers: nobody calls `record` for them.

Reading is two queries for a whole incident's pool (who is in which team and category; the
tallies of all of them in the band), then the pure Beta-Binomial shrinkage of
`dispatch.policy.acceptance`: responder → team → category → `settings.acceptance_probability`.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import String, Uuid, and_, any_, bindparam, or_, select
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.models import AcceptanceTally
from dispatch.policy.acceptance import BANDS, Band, History, Outcome, Tally, band_at
from responders.models import Responder


class AcceptanceSettings(Protocol):
    timezone: str
    acceptance_probability: float
    acceptance_prior_strength: float


class Answer(NamedTuple):
    """One alert's end that counts: who, how (`Outcome`), and when the alert went out."""

    responder_id: uuid.UUID
    outcome: Outcome
    alert_at: datetime


class Belonging(NamedTuple):
    """The groups a responder's answers also count for (None: not in a team)."""

    team: str | None
    category: str


TallyKey = tuple[str, str, Band]  # (level, key, band), the table's primary key
_ROW = (
    AcceptanceTally.level,
    AcceptanceTally.key,
    AcceptanceTally.band,
    AcceptanceTally.accepted,
    AcceptanceTally.declined,
    AcceptanceTally.unanswered,
)  # a tally as `history_of_rows` reads it


def tally_increments(
    answers: Iterable[Answer], belonging: Mapping[uuid.UUID, Belonging], tz: ZoneInfo
) -> dict[TallyKey, Tally]:
    """What the answers add to each tally row: the responder's, team's and category's, per band.

    Pure. Rows are summed per key, since one statement may not update a row twice; a responder
    missing from `belonging` (never the case for an alert, whose responder is never deleted) counts
    for themself only.
    """
    out: dict[TallyKey, Tally] = {}
    for responder_id, outcome, alert_at in answers:
        band = band_at(alert_at.astimezone(tz))
        group = belonging.get(responder_id)
        keys = [("responder", str(responder_id))]
        if group is not None:
            keys.append(("category", group.category))
            if group.team is not None:
                keys.append(("team", group.team))
        for level, key in keys:
            row = (level, key, band)
            out[row] = out.get(row, Tally()).add(outcome)
    return out


def history_of_rows(rows: Iterable[Sequence[Any]]) -> History:
    """The tallies read back (level, key, band, accepted, declined, unanswered) as a `History`."""
    levels: dict[str, dict[tuple[str, Band], Tally]] = {"responder": {}, "team": {}, "category": {}}
    for level, key, band, accepted, declined, unanswered in rows:
        levels[level][(key, band)] = Tally(accepted, declined, unanswered)
    return History(levels["responder"], levels["team"], levels["category"])


# Arrays bound as one parameter each (`= ANY(:ids)`), not `IN (:1, :2, …)`: the statement's text is
# the same for every pool size, so the driver's prepared statement is reused.
_POOL = select(Responder.id, Responder.team_id, Responder.category).where(
    Responder.id == any_(bindparam("ids", type_=ARRAY(Uuid)))
)
_POOL_TALLIES = select(*_ROW).where(
    AcceptanceTally.band == bindparam("band"),
    or_(
        *(
            and_(
                AcceptanceTally.level == level,
                AcceptanceTally.key == any_(bindparam(level, type_=ARRAY(String))),
            )
            for level in ("responder", "team", "category")
        )
    ),
)


async def _belonging(session: AsyncSession, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, Belonging]:
    """Team and category of each of these responders (one query)."""
    return {
        rid: Belonging(str(team) if team else None, category)
        for rid, team, category in (await session.execute(_POOL, {"ids": list(ids)})).all()
    }


@dataclass(frozen=True, slots=True)
class AcceptanceStore:
    """The tallies in PostgreSQL: `record` answers in the caller's transaction, read `estimates`."""

    tz: ZoneInfo
    prior: float
    strength: float

    @classmethod
    def from_settings(cls, settings: AcceptanceSettings) -> AcceptanceStore:
        return cls(
            ZoneInfo(settings.timezone),
            float(settings.acceptance_probability),
            float(settings.acceptance_prior_strength),
        )

    def band(self, at: datetime) -> Band:
        """The band of a moment in the city's local time."""
        return band_at(at.astimezone(self.tz))

    async def record(
        self, session: AsyncSession, responder_id: uuid.UUID, outcome: Outcome, at: datetime
    ) -> None:
        """Count one answer (`at`: when the alert went out); not committed here."""
        await self.record_all(session, [Answer(responder_id, outcome, at)])

    async def record_all(self, session: AsyncSession, answers: Collection[Answer]) -> None:
        """Count many answers (a round of expiries) in one statement; not committed here.

        Rows are written in key order, so two transactions counting answers of the same team or
        category lock the shared rows in the same order and never deadlock each other.
        """
        if not answers:
            return
        belonging = await _belonging(session, {a.responder_id for a in answers})
        now = datetime.now(UTC)
        increments = tally_increments(answers, belonging, self.tz)
        rows = [
            {
                "level": level,
                "key": key,
                "band": band,
                "accepted": t.accepted,
                "declined": t.declined,
                "unanswered": t.unanswered,
                "updated_at": now,
            }
            for (level, key, band), t in sorted(increments.items())
        ]
        stmt = insert(AcceptanceTally).values(rows)
        stmt = stmt.on_conflict_do_update(
            index_elements=[AcceptanceTally.level, AcceptanceTally.key, AcceptanceTally.band],
            set_={
                "accepted": AcceptanceTally.accepted + stmt.excluded.accepted,
                "declined": AcceptanceTally.declined + stmt.excluded.declined,
                "unanswered": AcceptanceTally.unanswered + stmt.excluded.unanswered,
                "updated_at": stmt.excluded.updated_at,
            },
        )
        await session.execute(stmt)

    async def estimates(
        self, session: AsyncSession, responder_ids: Collection[str | uuid.UUID], at: datetime
    ) -> dict[str, float]:
        """Each responder's chance of accepting an alert sent at `at`, by id (text); two queries.

        A responder unknown to the registry gets what a newcomer with no team would: the
        category-less prior.
        """
        if not responder_ids:
            return {}
        ids = {uuid.UUID(str(r)) for r in responder_ids}
        belonging = await _belonging(session, ids)
        band = self.band(at)
        history = await self._history(session, belonging, band)
        out = {}
        for rid in ids:
            group = belonging.get(rid)
            team, category = (group.team, group.category) if group else (None, None)
            out[str(rid)] = history.estimate(
                str(rid), team, category, band, prior=self.prior, strength=self.strength
            )
        return out

    async def _history(
        self, session: AsyncSession, belonging: Mapping[uuid.UUID, Belonging], band: Band
    ) -> History:
        """The band's tallies of these responders, their teams and their categories (one query)."""
        keys = {
            "responder": [str(rid) for rid in belonging],
            "team": list({b.team for b in belonging.values() if b.team is not None}),
            "category": list({b.category for b in belonging.values()}),
        }
        rows = (await session.execute(_POOL_TALLIES, {"band": band, **keys})).all()
        return history_of_rows(rows)

    async def profile(self, session: AsyncSession, responder: Responder) -> dict[Band, tuple[Tally, float]]:
        """A responder's own tally and estimate in each band, for the admin's view of the profile."""
        me = str(responder.id)
        team = str(responder.team_id) if responder.team_id else None
        keys = [("responder", me), ("category", responder.category)] + ([("team", team)] if team else [])
        query = select(*_ROW).where(
            or_(*(and_(AcceptanceTally.level == lv, AcceptanceTally.key == k) for lv, k in keys))
        )
        history = history_of_rows((await session.execute(query)).all())
        return {
            band: (
                history.responders.get((me, band), Tally()),
                history.estimate(
                    me, team, responder.category, band, prior=self.prior, strength=self.strength
                ),
            )
            for band in BANDS
        }
