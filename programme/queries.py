"""The programme report's counting, in SQL: a year of a city's incidents, alerts and duty sessions
is counted where it lies, and only a few numbers per group travel back.

Three counts per (slice, group) — `slice` is a month or the whole window (`programme.window`):
- incidents: opened in the slice, placed by where they happened (the district or street whose
  boundary contains them, PostGIS `ST_Contains`; none: the group is NULL, "outside"), or, for teams,
  every team with a member alerted to them; reached in time by `dispatch.arrival_times.first_arrivals`
  (the one definition of when help reached the patient) — within `FIVE_MINUTES` of opening;
- alerts: of those incidents (teams: those sent to the team's members). An alert is *accepted* when
  it was answered yes (`answered_at` set and not declined), whatever came after (on the way, on
  scene, cancelled); *answered* when accepted, declined or expired — an alert cancelled while still
  pending (the incident closed, or enough others accepted) was never put to the test and counts in
  neither; it *ran for nothing* when accepted and then cancelled before `on_scene_at` was set;
- duty: sessions clipped to the slice (an open one runs until now), placed by the responder's team:
  a team path reads `<city>/<district>/<street>/<community>` in the slugs of the city's names
  (`simulator.teams.slug`, rebuilt in SQL by `slug`), so a team below a district belongs to it; a
  team naming no district of the city (or no team) is NULL, "outside".
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import (
    DateTime,
    Select,
    String,
    Subquery,
    and_,
    case,
    cast,
    column,
    distinct,
    extract,
    func,
    literal,
    or_,
    select,
    true,
    values,
)
from sqlalchemy.sql.base import ColumnCollection
from sqlalchemy.sql.elements import ColumnElement

from dispatch.arrival_times import first_arrivals
from dispatch.models import Alert, Incident
from programme.schemas import Grouping
from programme.window import Slice
from responders.models import DutySession, Responder, Team
from simulator.models import DistrictRow, StreetRow

FIVE_MINUTES = timedelta(seconds=300)
""""Within 5 minutes of opening": arrival time − incident.created_at ≤ 300 s (issue 22)."""


def slug(name: ColumnElement[str]) -> ColumnElement[str]:
    """`simulator.teams.slug` in SQL: "Bao'an" → 'bao-an', the form a team path uses."""
    return func.btrim(func.regexp_replace(func.lower(name), "[^a-z0-9]+", "-", "g"), "-")


def _segment(path: ColumnElement[str], n: int) -> ColumnElement[str]:
    return func.split_part(path, "/", n)


def _first_id(query: Select[tuple[str]]) -> ColumnElement[str]:
    """The first place's id as text (a group key), for each row of the outer query."""
    return query.limit(1).scalar_subquery()


def _district_of_team(path: ColumnElement[str]) -> ColumnElement[str]:
    named = slug(DistrictRow.name) == _segment(path, 2)
    return _first_id(select(cast(DistrictRow.id, String)).where(named).order_by(DistrictRow.id))


def _street_of_team(path: ColumnElement[str]) -> ColumnElement[str]:
    return _first_id(
        select(cast(StreetRow.id, String))
        .join(DistrictRow, DistrictRow.id == StreetRow.district_id)
        .where(slug(DistrictRow.name) == _segment(path, 2), slug(StreetRow.name) == _segment(path, 3))
        .order_by(StreetRow.id)
    )


NO_GROUP: ColumnElement[str] = literal("", String)  # months (the slice is the group) and the total


def _team_group(by: Grouping | None) -> ColumnElement[str]:
    """The group of a responder's duty (and, for teams, of their alerts), from their team."""
    if by is Grouping.district:
        return _district_of_team(Team.path)
    if by is Grouping.street:
        return _street_of_team(Team.path)
    if by is Grouping.team:
        return Team.path
    return NO_GROUP


def _slices(cut: Sequence[Slice]) -> Subquery:
    at = DateTime(timezone=True)
    table = values(column("label", String), column("start", at), column("end", at), name="slices")
    return select(table.data([(s.label, s.start, s.end) for s in cut])).subquery("slices")


def _in_slice(at: ColumnElement[datetime], sl: Subquery) -> ColumnElement[bool]:
    return and_(at >= sl.c.start, at < sl.c.end)


def _alerts_of_window(start: datetime, end: datetime) -> ColumnElement[bool]:
    """Alerts are partitioned by their incident's opening: this bound reads only the window's months."""
    return and_(Alert.opened_at >= start, Alert.opened_at < end)


def _placed(by: Grouping, start: datetime, end: datetime) -> Subquery:
    """(incident_id, grp): the district or street whose boundary contains each incident opened in
    [start, end) (the first by id should boundaries overlap); an incident in none has no row.

    Shaped for speed (20,000 incidents of a year in Shenzhen's 74 streets: ~1 s, against 8 s as a
    lookup per incident): the boundaries are read once into a CTE (kept in a table they are
    compressed, and unpacking one for every test was most of the time), the incidents' points made
    geometry once, and each place scans the points with the bounding-box operator first.
    """
    place = DistrictRow if by is Grouping.district else StreetRow
    places = (
        select(place.id, func.ST_Force2D(place.boundary).label("boundary"))
        .cte(f"{by.value}_boundaries")
        .prefix_with("MATERIALIZED")
    )
    points = (
        select(Incident.id, func.geometry(Incident.location).label("at"))
        .where(Incident.created_at >= start, Incident.created_at < end)
        .cte("incident_points")
        .prefix_with("MATERIALIZED")
    )
    inside = (
        select(points.c.id.label("incident_id"))
        .where(places.c.boundary.op("&&")(points.c.at), func.ST_Contains(places.c.boundary, points.c.at))
        .lateral("inside")
    )
    return (
        select(inside.c.incident_id, cast(places.c.id, String).label("grp"))
        .select_from(places)
        .join(inside, true())
        .distinct(inside.c.incident_id)
        .order_by(inside.c.incident_id, places.c.id)
        .subquery("placed")
    )


def _grouped_incidents(by: Grouping | None, cut: Sequence[Slice]) -> Subquery:
    """(incident_id, created_at, slice, grp) of the incidents opened in the slices; for teams one row
    per team with a member alerted to the incident (none alerted: no row)."""
    sl = _slices(cut)
    start, end = cut[0].start, cut[-1].end
    if by is Grouping.team:
        query = (
            select(Incident.id, Incident.created_at, sl.c.label, Team.path)
            .select_from(Incident)
            .distinct()
            .join(Alert, and_(Alert.incident_id == Incident.id, Alert.opened_at == Incident.created_at))
            .join(Responder, Responder.id == Alert.responder_id)
            .outerjoin(Team, Team.id == Responder.team_id)
            .where(_alerts_of_window(start, end))
        )
    elif by in (Grouping.district, Grouping.street):
        placed = _placed(by, start, end)
        query = (
            select(Incident.id, Incident.created_at, sl.c.label, placed.c.grp)
            .select_from(Incident)
            .outerjoin(placed, placed.c.incident_id == Incident.id)
        )
    else:
        query = select(Incident.id, Incident.created_at, sl.c.label, NO_GROUP).select_from(Incident)
    query = query.join(sl, _in_slice(Incident.created_at, sl)).where(
        Incident.created_at >= start, Incident.created_at < end
    )
    return _named(query, "grouped")


def _named(query: Select[tuple[object, ...]], name: str) -> Subquery:
    """The query's four columns named (incident_id, created_at, slice, grp)."""
    cols = list(query.selected_columns)
    return query.with_only_columns(
        cols[0].label("incident_id"),
        cols[1].label("created_at"),
        cols[2].label("slice"),
        cols[3].label("grp"),
    ).subquery(name)


def incident_counts(by: Grouping | None, cut: Sequence[Slice]) -> Select[tuple[object, ...]]:
    """(slice, grp, incidents, responder_5min, aed_5min)."""
    grouped = _grouped_incidents(by, cut)
    arrived = first_arrivals(cut[0].start, cut[-1].end).subquery("arrived")

    def in_time(at: ColumnElement[datetime]) -> ColumnElement[bool]:
        return at <= grouped.c.created_at + FIVE_MINUTES

    return (
        select(
            grouped.c.slice,
            grouped.c.grp,
            func.count(),
            func.count().filter(in_time(arrived.c.responder_at)),
            func.count().filter(in_time(arrived.c.aed_at)),
        )
        .select_from(grouped.outerjoin(arrived, arrived.c.incident_id == grouped.c.incident_id))
        .group_by(grouped.c.slice, grouped.c.grp)
    )


ANSWER_COLUMNS = (Alert.status, Alert.created_at, Alert.answered_at, Alert.on_scene_at)


def _accepted(a: ColumnCollection[str, ColumnElement[object]]) -> ColumnElement[bool]:
    """Answered yes, whatever came after (on the way, on scene, or cancelled)."""
    return and_(a.answered_at.is_not(None), a.status != "declined")


def alert_counts(by: Grouping | None, cut: Sequence[Slice]) -> Select[tuple[object, ...]]:
    """(slice, grp, alerts, answered, accepted, median_accept_s, ran_for_nothing)."""
    start, end = cut[0].start, cut[-1].end
    if by is Grouping.team:
        sl = _slices(cut)
        keyed = (
            select(sl.c.label.label("slice"), Team.path.label("grp"), *ANSWER_COLUMNS)
            .select_from(Alert)
            .join(sl, _in_slice(Alert.opened_at, sl))
            .join(Responder, Responder.id == Alert.responder_id)
            .outerjoin(Team, Team.id == Responder.team_id)
        )
    else:
        grouped = _grouped_incidents(by, cut)
        keyed = select(grouped.c.slice, grouped.c.grp, *ANSWER_COLUMNS).join(
            grouped,
            and_(Alert.incident_id == grouped.c.incident_id, Alert.opened_at == grouped.c.created_at),
        )
    alerts = keyed.where(_alerts_of_window(start, end)).subquery("keyed_alerts")
    a = alerts.c
    accepted = _accepted(a)
    accept_s = case((accepted, extract("epoch", a.answered_at - a.created_at)))
    return select(
        a.slice,
        a.grp,
        func.count(),
        func.count().filter(or_(a.answered_at.is_not(None), a.status == "expired")),
        func.count().filter(accepted),
        func.percentile_cont(0.5).within_group(accept_s),
        func.count().filter(and_(accepted, a.status == "cancelled", a.on_scene_at.is_(None))),
    ).group_by(a.slice, a.grp)


def _team_groups(by: Grouping | None) -> Subquery:
    """(team_id, grp) for every team: placed once per team (hundreds), not once per duty session
    (millions in a year)."""
    return select(Team.id.label("team_id"), _team_group(by).label("grp")).subquery("team_groups")


def _month_of(at: ColumnElement[datetime], zone: str) -> ColumnElement[str]:
    """'YYYY-MM' of an instant on the city's clock: the label of its slice (`programme.window`)."""
    return func.to_char(func.timezone(zone, at), "YYYY-MM")


def _duty_in_slices(cut: Sequence[Slice], months_in: str | None) -> Subquery:
    """(slice, responder_id, seconds): every duty session clipped to each slice it overlaps (an open
    one runs until now), summed per responder.

    By month (`months_in`: the city's zone) a session is matched to the month it started in by
    equality (a hash join over a year's million sessions), and only the few that run into later
    months are matched to those by range: the range join over all of them took 7 s for a year."""
    sl = _slices(cut)
    ended = func.coalesce(DutySession.ended_at, func.now())
    overlap = and_(DutySession.started_at < sl.c.end, ended > sl.c.start)
    seconds = func.sum(
        extract("epoch", func.least(ended, sl.c.end) - func.greatest(DutySession.started_at, sl.c.start))
    )

    def clipped(slice_matches: ColumnElement[bool]) -> Select[tuple[object, ...]]:
        return (
            select(sl.c.label.label("slice"), DutySession.responder_id, seconds.label("seconds"))
            .select_from(DutySession)
            .join(sl, and_(slice_matches, overlap))
            .group_by(sl.c.label, DutySession.responder_id)
        )

    if months_in is None:
        return clipped(true()).subquery("per_responder")
    first, last = _month_of(DutySession.started_at, months_in), _month_of(ended, months_in)
    later = clipped(and_(sl.c.label > first, sl.c.label <= last)).where(last > first)
    return clipped(sl.c.label == first).union_all(later).subquery("per_responder")


def duty_counts(
    by: Grouping | None, cut: Sequence[Slice], months_in: str | None = None
) -> Select[tuple[object, ...]]:
    """(slice, grp, active_responders, on_duty_s): duty per responder and slice (a month, with
    `months_in` the city's zone, or the window), grouped by the responder's team (places and teams)
    or not at all (months and the total: everyone counts). Summing per responder first turns a
    year's million sessions into a row per responder and slice, with no DISTINCT to sort."""
    per_responder = _duty_in_slices(cut, months_in)
    p = per_responder.c
    if by in (Grouping.district, Grouping.street, Grouping.team):
        teams = _team_groups(by)
        return (
            select(p.slice, teams.c.grp, func.count(distinct(p.responder_id)), func.sum(p.seconds))
            .select_from(per_responder)
            .join(Responder, Responder.id == p.responder_id)
            .outerjoin(teams, teams.c.team_id == Responder.team_id)
            .group_by(p.slice, teams.c.grp)
        )
    return select(p.slice, NO_GROUP, func.count(distinct(p.responder_id)), func.sum(p.seconds)).group_by(
        p.slice
    )


def districts() -> Select[tuple[object, ...]]:
    """(id, name, name_zh) of the city's districts, by name."""
    return select(cast(DistrictRow.id, String), DistrictRow.name, DistrictRow.name_zh).order_by(
        DistrictRow.name
    )


def streets() -> Select[tuple[object, ...]]:
    """(id, name, name_zh, district, district_zh) of the city's streets, by district then name."""
    return (
        select(
            cast(StreetRow.id, String),
            StreetRow.name,
            StreetRow.name_zh,
            DistrictRow.name,
            DistrictRow.name_zh,
        )
        .join(DistrictRow, DistrictRow.id == StreetRow.district_id)
        .order_by(DistrictRow.name, StreetRow.name)
    )
