"""Where each responder's answers to alerts are counted, and read back as acceptance estimates.

Every real answer — accepted, declined, or left unanswered until the alert expired — adds one to
three tallies (`acceptance_tallies`): the responder's, their team's and their category's, in the
time-of-day band the alert went out in (the city's local time). The increment is an
`INSERT … ON CONFLICT DO UPDATE … + 1` in the caller's transaction, the one that moves the alert
out of pending: the answer and its count commit together or not at all, and two answers at once
both count, because the row lock serialises the two additions. Alerts the dispatcher ended
(incident closed, `enough_responders`) are not answers: nobody calls `record` for them.

Reading is one query for a whole incident's pool (who is in which team and category, and the
tallies of all of them in the band), then the pure Beta-Binomial shrinkage of
`responders.acceptance`: responder → team → category → `settings.acceptance_probability`.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import String, Uuid, and_, any_, bindparam, cast, or_, select, text
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession

from responders.acceptance import BANDS, Band, History, Outcome, Tally, band_at
from responders.models import AcceptanceTally, Responder


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
    answers: Iterable[Answer], belonging: Mapping[str, Belonging], tz: ZoneInfo
) -> dict[TallyKey, Tally]:
    """What the answers add to each tally row: the responder's, team's and category's, per band.

    Pure. Rows are summed per key, since one statement may not update a row twice; a responder
    missing from `belonging` (never the case for an alert, whose responder is never deleted) counts
    for themself only.
    """
    out: dict[TallyKey, Tally] = {}
    for responder_id, outcome, alert_at in answers:
        band = band_at(alert_at.astimezone(tz))
        group = belonging.get(str(responder_id))
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
        if level in levels:  # other rows (a pool's members) are not tallies
            levels[level][(key, band)] = Tally(accepted, declined, unanswered)
    return History(levels["responder"], levels["team"], levels["category"])


# Arrays bound as one parameter each (`= ANY(:ids)`), not `IN (:1, :2, …)`: the statement's text is
# the same for every pool size, so the driver's prepared statement is reused.
# Ids travel as text both ways (cast in the database): converting hundreds of UUIDs in Python cost
# more than the query.
_POOL = select(cast(Responder.id, String), cast(Responder.team_id, String), Responder.category).where(
    Responder.id == any_(cast(bindparam("ids", type_=ARRAY(String)), ARRAY(Uuid)))
)
# A pool's teams and categories and every tally they need, in one round trip: the pool's rows
# first (level 'pool'), then the band's tallies, looked up by arrays built from the pool (each an
# index scan on the tallies' key, however many rows the table holds).
_POOL_WITH_TALLIES = text(
    """
WITH pool AS (
  SELECT id::text AS id, team_id::text AS team, category FROM responders WHERE id = ANY(CAST(:ids AS uuid[]))
)
SELECT 'pool' AS level, id AS key, team, category, 0 AS accepted, 0 AS declined, 0 AS unanswered FROM pool
UNION ALL
SELECT t.level, t.key, NULL, NULL, t.accepted, t.declined, t.unanswered
FROM acceptance_tallies t
WHERE t.band = :band AND (
     (t.level = 'responder' AND t.key = ANY(ARRAY(SELECT id FROM pool)))
  OR (t.level = 'team' AND t.key = ANY(ARRAY(SELECT team FROM pool)))
  OR (t.level = 'category' AND t.key = ANY(ARRAY(SELECT category FROM pool))))
"""
).bindparams(bindparam("ids", type_=ARRAY(String)))


async def _belonging(session: AsyncSession, ids: Collection[str]) -> dict[str, Belonging]:
    """Team and category of each of these responders, by id as text (one query)."""
    rows = (await session.execute(_POOL, {"ids": list(ids)})).all()
    return {rid: Belonging(team, category) for rid, team, category in rows}


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
        belonging = await _belonging(session, {str(a.responder_id) for a in answers})
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
        """Each responder's chance of accepting an alert sent at `at`, by id (text); one query.

        A responder unknown to the registry gets what a newcomer with no team would: the
        category-less prior.
        """
        if not responder_ids:
            return {}
        ids = set(map(str, responder_ids))
        band = self.band(at)
        rows = (await session.execute(_POOL_WITH_TALLIES, {"ids": list(ids), "band": band})).all()
        belonging = {
            key: Belonging(team, category) for level, key, team, category, *_ in rows if level == "pool"
        }
        history = history_of_rows((level, key, band, *counts) for level, key, _, _, *counts in rows)
        out = {}
        for rid in ids:
            group = belonging.get(rid)
            team, category = (group.team, group.category) if group else (None, None)
            out[rid] = history.estimate(rid, team, category, band, prior=self.prior, strength=self.strength)
        return out

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
