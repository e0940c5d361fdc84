"""Incidents: open (plan, alert the first batch), read, list and close.

The order of work on `open` is what makes alerts never lost: plan, write the incident, its alerts
and events in one transaction, commit, and only then publish. If publishing fails, or nobody
holding the responder's socket is listening, the responder still gets the alert on (re)connect.

Postgres is the record, Redis only the positions: with Redis down an incident is still recorded,
its coverage saying `positions: "unavailable"`, and after Redis lost its data the positions
stream back for a while (`"warming"`). Either way the dispatch clock re-plans the incident every
`replan_s` at the same reach until a plan sees live positions (`dispatch.escalation`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import ColumnElement, ScalarSelect, and_, cast, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from aed_registry.models import Aed
from aed_registry.service import AvailableAed, nearby_available
from core.redis import REDIS_DOWN
from dispatch import events
from dispatch.context import DispatchContext
from dispatch.frames import AedInfo, AlertView, alert_frame, cancel_frame
from dispatch.geofence import MARKS
from dispatch.matching import AedSite, Candidate, coverage_of, people_in_reach
from dispatch.models import ENGAGED, PENDING, UNDECIDED, Alert, Incident, IncidentEvent
from dispatch.policy.circle import Person, top_up
from dispatch.schemas import (
    AedConsidered,
    AlertOut,
    AttemptOut,
    CoverageOut,
    EventOut,
    IncidentCreate,
    IncidentDetail,
    IncidentOut,
    IncidentPlace,
)
from geo.crs import Crs, from_wgs84, to_wgs84
from responders.store import Nearby

ATTEMPT_EVENTS = ("attempt", "attempt_skipped")  # logged by the ladder (dispatch.channels)
CLOSED_REASON = "incident closed"  # a `cancel` because the dispatcher closed the incident
LIVE, WARMING, UNAVAILABLE = "live", "warming", "unavailable"
"""What the positions a plan saw were worth: all there; streaming back after Redis lost them;
none (Redis down)."""


@dataclass(frozen=True)
class Origin:
    """An incident an emergency centre sent (`cad/`): the id reserved for it, the centre, its
    tracking id, and how far from the point the patient may be (None: not said)."""

    incident_id: uuid.UUID
    agency: str
    tracking_id: str
    uncertainty_m: float | None


class DispatchError(ValueError):
    """A request the dispatcher must fix; `status` is the HTTP code, `str()` names field and rule."""

    def __init__(self, status: int, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.status, self.field, self.rule = status, field, rule


@dataclass(frozen=True)
class Plan:
    """Everyone dispatchable in reach now, as the dispatch policy sees them (`Person`: direct ETA,
    the AEDs each could bring in time, chance of accepting), and the open AEDs around the patient."""

    people: list[Person]
    aeds: list[AvailableAed]
    positions: str = LIVE  # LIVE, WARMING or UNAVAILABLE

    def coverage(self) -> dict[str, object]:
        """The verdict stored on the incident and shown to the dispatcher (`coverage_of`), and what
        the positions it rests on were worth."""
        verdict = coverage_of(self.people)
        return {
            "covered": verdict.covered,
            "fastest_eta_s": verdict.fastest_eta_s,
            "aed_eta_s": verdict.aed_eta_s,
            "positions": self.positions,
        }


def _now() -> datetime:
    return datetime.now(UTC)


async def acceptance_chances(
    session: AsyncSession, ctx: DispatchContext, responder_ids: Collection[str], at: datetime | None = None
) -> dict[str, float]:
    """How likely each responder is to accept an alert sent at `at` (default now): the one place
    the policy asks, for opening, answers and the clock alike. Learned from their own answers,
    shrunk toward their team's and category's (`responders.acceptance_store`)."""
    return await ctx.acceptance.estimates(session, responder_ids, at or _now())


async def _open_aeds(
    session: AsyncSession, ctx: DispatchContext, incident: Incident, aed_radius: float, at: float
) -> list[AvailableAed]:
    """The AEDs a runner could fetch in time, nearest first (none when the reach leaves no time)."""
    if aed_radius <= 0:
        return []
    return await nearby_available(
        session,
        incident.lat,
        incident.lng,
        at=datetime.fromtimestamp(at, UTC),
        limit=ctx.settings.aeds_considered,
        max_distance_m=aed_radius,
        settings=ctx.settings,
    )


async def plan_alerts(
    session: AsyncSession,
    ctx: DispatchContext,
    incident: Incident,
    reach_s: float,
    *,
    at: float | None = None,
) -> Plan:
    """Dispatchable responders and open AEDs around the patient, as the dispatch policy's people.

    Whom to alert, and who does what, is the policy's (`dispatch.policy.circle`) on this plan. The
    two searches are independent (Redis and PostGIS), so they run concurrently: the incident
    waits for the slower of the two, not their sum. Both are awaited even when one fails, so the
    session is idle again before the error leaves. Redis out of reach is not an error here: the
    plan has nobody in it and says the positions were unavailable.
    """
    at = time.time() if at is None else at
    kinds = ctx.settings.qualifying_certificates.get(incident.category)
    radius = ctx.model.max_distance_for(reach_s)
    # Each mode's reach (plus a millimetre for rounding): who cannot arrive in time is never fetched;
    # `people_in_reach` still decides eligibility exactly on the ETA.
    mode_radii = {mode: ctx.model.max_distance_m(reach_s, mode) + 1e-3 for mode in ctx.model.speeds}
    aed_radius = ctx.model.max_distance_for(reach_s - ctx.model.aed_pickup_s)
    aeds, nearby, warming = await asyncio.gather(
        _open_aeds(session, ctx, incident, aed_radius, at),
        ctx.store.nearby(
            incident.lat,
            incident.lng,
            radius,
            at=at,
            cert_kinds=kinds,
            mode_radii=mode_radii,
            in_homes=incident.place == IncidentPlace.residential,
        ),
        ctx.store.warming(),
        return_exceptions=True,
    )
    positions = WARMING if warming is True else LIVE
    if isinstance(nearby, REDIS_DOWN) or isinstance(warming, REDIS_DOWN):
        nearby, warming, positions = Nearby.empty(), False, UNAVAILABLE
    for result in (nearby, warming, aeds):
        if isinstance(result, BaseException):
            raise result
    candidates = list(
        map(Candidate, nearby.responder_id, nearby.lat, nearby.lng, nearby.mode, nearby.distance_m)
    )
    chance = await acceptance_chances(session, ctx, nearby.responder_id, datetime.fromtimestamp(at, UTC))
    people = people_in_reach(
        incident.lat,
        incident.lng,
        candidates,
        [AedSite(a.id, a.lat, a.lng) for a in aeds],
        ctx.model,
        reach_s,
        chance,
        prior=ctx.settings.acceptance_probability,
    )
    return Plan(people, aeds, positions)


def replan_soon(positions: str) -> bool:
    """Whether the clock should plan again within seconds, at the same reach: the last plan saw
    the positions missing or still coming back, so people near the patient may not be in it."""
    return positions != LIVE


def add_alerts(
    session: AsyncSession,
    ctx: DispatchContext,
    incident: Incident,
    people: Sequence[Person],
    batch: int,
    *,
    taken_aeds: Collection[str] = (),
) -> list[Alert]:
    """Alert rows for the people the policy chose; not yet committed. Roles are `undecided` (they
    are chosen at the accept); each keeps the direct ETA, and the nearest AED nobody accepted to
    bring yet that the person could fetch, as the AED they may be asked to bring."""
    now = _now()
    expires = now + timedelta(seconds=ctx.settings.alert_ttl_s)
    rows = []
    for person in people:
        option = next((f.aed_id for f in person.fetch if f.aed_id not in taken_aeds), None)
        rows.append(
            Alert(
                id=uuid.uuid4(),
                incident_id=incident.id,
                opened_at=incident.created_at,
                responder_id=uuid.UUID(person.responder_id),
                role=UNDECIDED,
                aed_id=None,
                option_aed_id=uuid.UUID(option) if option else None,
                eta_s=person.eta_s,
                distance_m=person.distance_m,
                status="sent",
                batch=batch,
                created_at=now,
                expires_at=expires,
                updated_at=now,
            )
        )
    session.add_all(rows)
    return rows


def first_overdue(alerts: Iterable[Alert], now: datetime, answer_timeout_s: float) -> datetime | None:
    """When the next pending alert goes unanswered past the answer timeout (the clock tops the
    circle up then), or None when no pending alert is still within it."""
    timeout = timedelta(seconds=answer_timeout_s)
    due = (a.created_at + timeout for a in alerts if a.status in PENDING)
    return min((t for t in due if t > now), default=None)


async def publish_alerts(session: AsyncSession, ctx: DispatchContext, alerts: list[Alert]) -> None:
    for view in await alert_views(session, [a.id for a in alerts]):
        await ctx.fanout.to_responder(view.responder_id, alert_frame(view))


async def open_incident(
    session: AsyncSession,
    ctx: DispatchContext,
    body: IncidentCreate,
    created_by: str,
    *,
    origin: Origin | None = None,
) -> IncidentOut:
    """Record the incident and alert the first batch: the people the policy's `top_up` picks from
    everyone in reach (enough that the targets are met with the configured chance). An incident
    from an emergency centre (`origin`) takes the id reserved for it and remembers where it came
    from; it commits with whatever the caller wrote in the session (the centre's report)."""
    settings = ctx.settings
    reach_s = settings.reach_s if body.reach_s is None else body.reach_s
    if not settings.reach_min_s <= reach_s <= settings.reach_max_s:
        raise DispatchError(
            422, "reach_s", f"must be within [{settings.reach_min_s:g}, {settings.reach_max_s:g}] s"
        )
    lat, lng = to_wgs84(body.lat, body.lng, body.crs)
    now = _now()
    incident = Incident(
        id=origin.incident_id if origin else uuid.uuid4(),
        agency=origin.agency if origin else None,
        tracking_id=origin.tracking_id if origin else None,
        location_uncertainty_m=origin.uncertainty_m if origin else None,
        category=body.category.value,
        place=body.place.value,
        status="open",
        location=f"SRID=4326;POINT({lng} {lat})",
        lat=lat,
        lng=lng,
        address=body.address,
        note=body.note,
        reach_s=reach_s,
        coverage={},
        escalation_step=0,
        escalation_interval_s=settings.escalation_interval_s,
        answer_timeout_s=settings.answer_timeout_s,
        next_escalation_at=now + timedelta(seconds=settings.escalation_interval_s),
        created_by=created_by,
        created_at=now,
    )
    plan = await plan_alerts(session, ctx, incident, reach_s)
    incident.coverage = plan.coverage()
    if replan_soon(plan.positions):
        incident.next_escalation_at = now + timedelta(seconds=settings.replan_s)
    session.add(incident)
    await session.flush()
    alerts = add_alerts(session, ctx, incident, top_up([], plan.people, 0.0, ctx.policy), batch=0)
    incident.next_topup_at = first_overdue(alerts, now, settings.answer_timeout_s)
    logged = [
        events.record(
            session,
            incident.id,
            "opened",
            category=incident.category,
            place=incident.place,
            lat=lat,
            lng=lng,
            address=incident.address,
            reach_s=reach_s,
            coverage=incident.coverage,
            created_by=created_by,
            **({"agency": origin.agency, "tracking_id": origin.tracking_id} if origin else {}),
        ),
        *[alert_event(session, a, "alert_sent") for a in alerts],
    ]
    if plan.positions != LIVE:  # nobody alerted may not mean nobody there
        logged.append(events.record(session, incident.id, f"positions_{plan.positions}", reach_s=reach_s))
    elif not plan.people:
        logged.append(events.record(session, incident.id, "nobody_in_reach", reach_s=reach_s))
    await session.commit()
    # Everything the phones need is in hand (the plan's AEDs came with names and places), so the
    # alerts go out straight after the commit, without reading back what was just written.
    aed_info = {a.id: AedInfo(a.id, a.name, a.lat, a.lng, a.location_detail) for a in plan.aeds}
    for alert in alerts:
        option = aed_info[str(alert.option_aed_id)] if alert.option_aed_id else None
        view = alert_view(alert, incident, None, option)
        await ctx.fanout.to_responder(str(alert.responder_id), alert_frame(view))
    ctx.wake_ladder.set()  # the alerts' first rung (push for those without a socket) now, not at the tick
    await events.publish(ctx.fanout, logged)
    return incident_out(incident, alerts, body.crs, plan.aeds)


def alert_event(session: AsyncSession, alert: Alert, kind: str) -> IncidentEvent:
    return events.record(
        session,
        alert.incident_id,
        kind,
        alert_id=str(alert.id),
        responder_id=str(alert.responder_id),
        role=alert.role,
        eta_s=alert.eta_s,
        aed_id=str(alert.aed_id) if alert.aed_id else None,
        aed_option_id=str(alert.option_aed_id) if alert.option_aed_id else None,
        batch=alert.batch,
    )


def incident_out(
    incident: Incident, alerts: list[Alert], crs: Crs, aeds: list[AvailableAed] = ()
) -> IncidentOut:  # type: ignore[assignment]
    lat, lng = from_wgs84(incident.lat, incident.lng, crs)
    considered = []
    for a in aeds:
        a_lat, a_lng = from_wgs84(a.lat, a.lng, crs)
        considered.append(
            AedConsidered(
                id=a.id,
                name=a.name,
                lat=a_lat,
                lng=a_lng,
                distance_m=round(a.distance_m, 1),
                open_now=a.open_now,
            )
        )
    return IncidentOut(
        id=incident.id,
        status=incident.status,
        category=incident.category,
        place=incident.place,
        lat=lat,
        lng=lng,
        crs=crs,
        address=incident.address,
        note=incident.note,
        reach_s=incident.reach_s,
        coverage=CoverageOut(**incident.coverage)
        if incident.coverage
        else CoverageOut(covered=False, fastest_eta_s=None, aed_eta_s=None),
        created_at=incident.created_at,
        closed_at=incident.closed_at,
        alerts=[
            AlertOut(
                alert_id=a.id,
                responder_id=a.responder_id,
                role=a.role,
                eta_s=a.eta_s,
                distance_m=a.distance_m,
                aed_id=a.aed_id,
                may_fetch_aed=a.role == "fetch_aed" if a.role != UNDECIDED else a.option_aed_id is not None,
                aed_option_id=a.option_aed_id,
                status=a.status,
                cancel_reason=a.cancel_reason,
                delivered_via=a.delivered_via,
                answered_at=a.answered_at,
                en_route_at=a.en_route_at,
                aed_picked_up_at=a.aed_picked_up_at,
                on_scene_at=a.on_scene_at,
            )
            for a in alerts
        ],
        aeds=considered,
        agency=incident.agency,
        tracking_id=incident.tracking_id,
        location_uncertainty_m=incident.location_uncertainty_m,
        centre_changed=incident.centre_changed,
    )


async def load_incident(session: AsyncSession, incident_id: uuid.UUID, *, lock: bool = False) -> Incident:
    query = select(Incident).where(Incident.id == incident_id)
    if lock:
        # NO KEY UPDATE: still one closer or escalation at a time, but it lets the ladder (which
        # holds an alert's row and writes an event referring to the incident) finish; FOR UPDATE
        # blocked that event while the close waited for the alert: a deadlock.
        query = query.with_for_update(key_share=True)
    incident = (await session.execute(query)).scalar_one_or_none()
    if incident is None:
        raise DispatchError(404, "id", f"no incident {incident_id}")
    return incident


def of_incident(incident: Incident) -> ColumnElement[bool]:
    """The alerts of one incident, in the one monthly partition that holds them all."""
    return and_(Alert.incident_id == incident.id, Alert.opened_at == incident.created_at)


async def alerts_of(session: AsyncSession, incident: Incident) -> list[Alert]:
    query = select(Alert).where(of_incident(incident)).order_by(Alert.batch, Alert.eta_s)
    return list((await session.execute(query)).scalars())


async def incident_detail(session: AsyncSession, incident_id: uuid.UUID, crs: Crs) -> IncidentDetail:
    incident = await load_incident(session, incident_id)
    out = incident_out(incident, await alerts_of(session, incident), crs)
    history = await events.history(session, incident)
    tried: dict[str, list[AttemptOut]] = {}
    for e in history:
        if e.kind in ATTEMPT_EVENTS:
            d = e.data
            tried.setdefault(d["alert_id"], []).append(
                AttemptOut(
                    channel=d["channel"], step=d["step"], outcome=d["outcome"], detail=d["detail"], at=e.ts
                )
            )
    for alert in out.alerts:
        alert.attempts = tried.get(str(alert.alert_id), [])
    log = [EventOut(seq=e.id, ts=e.ts, kind=e.kind, data=e.data) for e in history]
    return IncidentDetail(**out.model_dump(), events=log)


async def list_incidents(
    session: AsyncSession, status: str | None, limit: int, crs: Crs
) -> list[IncidentOut]:
    query = select(Incident).order_by(Incident.created_at.desc()).limit(limit)
    if status is not None:
        query = query.where(Incident.status == status)
    incidents = list((await session.execute(query)).scalars())
    out = []
    for incident in incidents:
        out.append(incident_out(incident, await alerts_of(session, incident), crs))
    return out


async def close_incident(
    session: AsyncSession,
    ctx: DispatchContext,
    incident_id: uuid.UUID,
    closed_by: str,
    reason: str | None,
    *,
    cancel_reason: str = CLOSED_REASON,
) -> IncidentOut:
    """Close; every responder still pending or on the way gets a `cancel` saying why
    (`cancel_reason`: the dispatcher closed it, or the emergency centre did, or its EMS arrived)."""
    incident = await load_incident(session, incident_id, lock=True)
    if incident.status == "closed":
        raise DispatchError(409, "id", "incident is already closed")
    now = _now()
    incident.status = "closed"
    incident.closed_at = now
    incident.next_escalation_at = incident.next_topup_at = None
    result = await session.execute(
        update(Alert)
        .where(of_incident(incident), Alert.status.in_(PENDING + ENGAGED))
        .values(status="cancelled", cancel_reason=cancel_reason, ladder_due_at=None, updated_at=now)
        .returning(Alert.id, Alert.responder_id)
    )
    cancelled = result.all()
    logged = [
        events.record(
            session, incident.id, "closed", closed_by=closed_by, reason=reason, cancelled=len(cancelled)
        )
    ]
    await session.commit()
    for alert_id, responder_id in cancelled:
        await ctx.fanout.to_responder(
            str(responder_id), cancel_frame(str(alert_id), str(incident.id), cancel_reason)
        )
    await events.publish(ctx.fanout, logged)
    return incident_out(incident, await alerts_of(session, incident), Crs.wgs84)


# --- alert views ----------------------------------------------------------------------------------
_OPTION = aliased(Aed)


async def alert_views(
    session: AsyncSession, alert_ids: list[uuid.UUID] | None = None, *, responder_id: uuid.UUID | None = None
) -> list[AlertView]:
    """Alerts joined with their incident and AED, by id or for one responder's open incidents."""
    query = (
        select(Alert, Incident, *_aed_columns(Aed), *_aed_columns(_OPTION))
        .join(Incident, Incident.id == Alert.incident_id)
        .outerjoin(Aed, Aed.id == Alert.aed_id)
        .outerjoin(_OPTION, _OPTION.id == Alert.option_aed_id)
    )
    if alert_ids is not None:
        if not alert_ids:
            return []
        query = query.where(Alert.id.in_(alert_ids))
    if responder_id is not None:
        query = query.where(
            Alert.responder_id == responder_id,
            Incident.status == "open",
            Alert.opened_at >= oldest_open(),  # old months hold no open incident's alerts
        )
    views = []
    for alert, incident, *columns in (await session.execute(query)).all():
        aed = AedInfo(str(alert.aed_id), *columns[:4]) if alert.aed_id else None
        option = AedInfo(str(alert.option_aed_id), *columns[4:]) if alert.option_aed_id else None
        views.append(alert_view(alert, incident, aed, option))
    return views


def oldest_open() -> ScalarSelect[datetime]:
    """When the oldest open incident was opened (NULL when none is: then nothing matches)."""
    return select(func.min(Incident.created_at)).where(Incident.status == "open").scalar_subquery()


def _aed_columns(aed: type[Aed]) -> tuple[Any, ...]:
    """An AED's name, place and location detail, as `AedInfo` takes them after its id."""
    geometry = cast(aed.location, Geometry)
    return aed.name, func.ST_Y(geometry), func.ST_X(geometry), aed.location_detail


def alert_view(
    alert: Alert, incident: Incident, aed: AedInfo | None, option: AedInfo | None = None
) -> AlertView:
    """What a phone needs to show one alert, from rows already at hand."""
    return AlertView(
        alert_id=str(alert.id),
        incident_id=str(incident.id),
        responder_id=str(alert.responder_id),
        role=alert.role,
        status=alert.status,
        eta_s=alert.eta_s,
        distance_m=alert.distance_m,
        expires_at=alert.expires_at,
        category=incident.category,
        lat=incident.lat,
        lng=incident.lng,
        address=incident.address,
        note=incident.note,
        aed=aed,
        aed_option=option,
        marks={m: at for m in MARKS if (at := getattr(alert, f"{m}_at")) is not None},
    )
