"""The programme report: the counts of `programme.queries` per group, named and divided
(`programme.figures`), one row per district / street / team / month and a total.

Which rows: by district or street, every one of the city's (an empty one shows null shares) and an
`outside` row when an incident happened outside them all or a responder's team names none of them;
by team, every team with a member alerted or on duty in the window (`outside`: responders without a
team); by month, every month of the window. The total counts the whole window at once (it is not a
sum of the rows: a team row counts an incident once per team alerted to it; a responder on duty in
two months is one active responder of the window).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Select, text
from sqlalchemy.ext.asyncio import AsyncSession

from programme import queries
from programme.figures import AlertCounts, DutyCounts, IncidentCounts, Label, row
from programme.schemas import Grouping, ProgrammeReport, ProgrammeRow
from programme.window import WHOLE, Slice, slices

OUTSIDE = "outside"
TOTAL = "total"
Group = tuple[str, str | None]  # (slice label, group key)


async def _counted(
    session: AsyncSession, query: Select[tuple[object, ...]]
) -> dict[Group, tuple[object, ...]]:
    return {(str(r[0]), r[1]): tuple(r[2:]) for r in (await session.execute(query)).all()}


async def _rows(
    session: AsyncSession, by: Grouping | None, cut: Sequence[Slice], zone: ZoneInfo
) -> dict[Group, ProgrammeRow]:
    incidents = await _counted(session, queries.incident_counts(by, cut))
    alerts = await _counted(session, queries.alert_counts(by, cut))
    months_in = zone.key if by is Grouping.month else None
    duty = await _counted(session, queries.duty_counts(by, cut, months_in))
    out: dict[Group, ProgrammeRow] = {}
    for group in {*incidents, *alerts, *duty}:
        i, a, d = incidents.get(group), alerts.get(group), duty.get(group)
        out[group] = row(
            Label(group[1] or OUTSIDE), IncidentCounts.of(i), AlertCounts.of(a), DutyCounts.of(d)
        )
    return out


async def _places(session: AsyncSession, by: Grouping) -> list[tuple[str, Label]]:
    """The city's districts or streets as (group key, label), in the order the report lists them."""
    if by is Grouping.district:
        found = (await session.execute(queries.districts())).all()
        return [(gid, Label(name, name, zh or None)) for gid, name, zh in found]
    found = (await session.execute(queries.streets())).all()
    return [
        (gid, Label(f"{district}/{name}", name, zh or None, district, district_zh or None))
        for gid, name, zh, district, district_zh in found
    ]


def _named(counted: ProgrammeRow | None, label: Label) -> ProgrammeRow:
    base = counted or row(label, IncidentCounts(), AlertCounts(), DutyCounts())
    return base.model_copy(update=_names(label))


def _names(label: Label) -> dict[str, str | None]:
    return {
        "key": label.key,
        "name": label.name,
        "name_zh": label.name_zh,
        "district": label.district,
        "district_zh": label.district_zh,
    }


def _ordered(
    by: Grouping,
    counted: dict[Group, ProgrammeRow],
    places: Iterable[tuple[str, Label]],
    cut: Sequence[Slice],
) -> list[ProgrammeRow]:
    if by is Grouping.month:
        return [_named(counted.get((s.label, "")), Label(s.label)) for s in cut]
    listed = [_named(counted.get((WHOLE, gid)), label) for gid, label in places]
    if by is Grouping.team:
        listed = [counted[g] for g in sorted(counted, key=lambda g: g[1] or "") if g[1] is not None]
    outside = counted.get((WHOLE, None))
    return [*listed, *([outside] if outside is not None else [])]


async def programme_report(
    session: AsyncSession, start: datetime, end: datetime, by: Grouping, zone: ZoneInfo
) -> ProgrammeReport:
    """The report for [start, end), grouped `by`, months on the city's clock (`zone`)."""
    cut = slices(start, end, zone, by_month=by is Grouping.month)
    # Short scans of a year's rows: compiling them (JIT) took PostgreSQL seconds and saved nothing.
    await session.execute(text("SET LOCAL jit = off"))
    counted = await _rows(session, by, cut, zone)
    places = await _places(session, by) if by in (Grouping.district, Grouping.street) else []
    whole = await _rows(session, None, [Slice(WHOLE, start, end)], zone)
    total = _named(whole.get((WHOLE, "")), Label(TOTAL))
    return ProgrammeReport(
        start=start, end=end, by=by, time_zone=zone.key, rows=_ordered(by, counted, places, cut), total=total
    )
