"""Incidents from an emergency centre: a new case opens (or waits for a place), an update re-plans,
a closure stands responders down.

Each EIDO is applied in one transaction under the lock of the case's `cad_reports` row (taken with
`INSERT … ON CONFLICT DO NOTHING`, then `FOR UPDATE`), so two workers given the same case at once
make one incident and apply updates one after the other; a document not newer than the one applied
changes nothing. Whom to alert and whom to stand down is the dispatch service's and policy's
(`dispatch.service.open_incident`, `dispatch.decisions.after_move`, `close_incident`): this module
only says what the centre asked for.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cad.categories import Category, category_for
from cad.eido import Eido, changed_fields, parse_eido
from cad.models import CadReport
from cad.schemas import EidoReceipt
from dispatch import events
from dispatch.context import DispatchContext
from dispatch.decisions import after_move
from dispatch.models import Incident
from dispatch.schemas import IncidentCategory, IncidentCreate
from dispatch.service import DispatchError, Origin, close_incident, load_incident, open_incident
from geo.crs import Crs, to_wgs84
from geo.distance import haversine_m

MOVED_M = 5.0
"""A new point this far (or farther) from the last one moves the patient and re-plans the circle;
closer is the same place re-measured."""
CLOSED_BY_CENTRE, EMS_ON_SCENE = "cancelled_by_centre", "ems_on_scene"  # `cancel` reasons


@dataclass(frozen=True)
class Place:
    """Where the patient is, in WGS-84, and how far from it they may be."""

    lat: float
    lng: float
    uncertainty_m: float | None


def place_of(eido: Eido, datum: Crs) -> Place | None:
    """The EIDO's geodetic point moved from the centre's datum to WGS-84; None without one."""
    if eido.geodetic is None:
        return None
    lat, lng = to_wgs84(eido.geodetic.lat, eido.geodetic.lng, datum)
    return Place(lat, lng, eido.geodetic.uncertainty_m)


def waiting_reason(eido: Eido) -> str:
    """Why a case without a geodetic location is not dispatched, in the call-taker's words."""
    if eido.reference is not None:
        return "location only by reference: dispatch starts when an update brings a geodetic location"
    return "location only as a civic address: dispatch starts when an update brings a geodetic location"


async def receive_eido(
    session: AsyncSession, ctx: DispatchContext, doc: Any, agency: str
) -> tuple[EidoReceipt, bool]:
    """Apply one EIDO from `agency`'s centre; the receipt and whether it made a new case.
    `EidoError` (422) for a document we cannot read, `DispatchError` for one we refuse."""
    eido = parse_eido(doc)
    category = category_for(eido.type_codes, ctx.settings.cad_incident_types)
    place = place_of(eido, Crs(ctx.settings.cad_datum_by_agency.get(agency, "wgs84")))
    now = datetime.now(UTC)
    new = await _claim(session, eido, doc, agency, category, place, now)
    report = (
        await session.execute(
            select(CadReport).where(CadReport.tracking_id == eido.tracking_id).with_for_update()
        )
    ).scalar_one()
    if report.agency != agency:
        raise DispatchError(409, "incidentTrackingIdentifier", "belongs to another emergency centre's case")
    if new:
        return await _first(session, ctx, report, eido, category, place), True
    if eido.updated_at <= report.last_update_at:
        return await _stale(session, report, category), False
    return await _update(session, ctx, report, eido, doc, category, place, now), False


async def _claim(
    session: AsyncSession,
    eido: Eido,
    doc: Any,
    agency: str,
    category: Category,
    place: Place | None,
    now: datetime,
) -> bool:
    """Take the case's row: True when this document made it (waits, at a conflict, until the
    other transaction commits, then finds its row)."""
    inserted = await session.execute(
        insert(CadReport)
        .values(
            tracking_id=eido.tracking_id,
            incident_id=uuid.uuid4(),
            agency=agency,
            eido=doc,
            facts=eido.fields(),
            last_update_at=eido.updated_at,
            changed_fields=[],
            location_reference=eido.reference,
            dispatching=False,
            category_mapped_from=category.mapped_from,
            uncertainty_m=place.uncertainty_m if place else None,
            received_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=[CadReport.tracking_id])
        .returning(CadReport.tracking_id)
    )
    return inserted.scalar_one_or_none() is not None


async def _first(
    session: AsyncSession,
    ctx: DispatchContext,
    report: CadReport,
    eido: Eido,
    category: Category,
    place: Place | None,
) -> EidoReceipt:
    """A new case: open its incident when it has a place and is still the centre's to work."""
    if eido.status != "active":
        report.waiting_reason = "closed by the centre before anyone was alerted"
        await session.commit()
        return _receipt(report, eido, category, None)
    if place is None:
        report.waiting_reason = waiting_reason(eido)
        await session.commit()
        return _receipt(report, eido, category, None)
    return await _open(session, ctx, report, eido, category, place)


async def _open(
    session: AsyncSession,
    ctx: DispatchContext,
    report: CadReport,
    eido: Eido,
    category: Category,
    place: Place,
) -> EidoReceipt:
    """Open the case's incident under its reserved id; commits the report with it."""
    report.dispatching, report.waiting_reason = True, None
    body = IncidentCreate(
        lat=place.lat,
        lng=place.lng,
        category=IncidentCategory(category.category),
        address=eido.civic,
        note=eido.note,
    )
    origin = Origin(report.incident_id, report.agency, report.tracking_id, place.uncertainty_m)
    out = await open_incident(session, ctx, body, f"cad:{report.agency}", origin=origin)
    coverage = out.coverage.model_dump()
    return _receipt(report, eido, category, None, alerts=len(out.alerts), coverage=coverage)


async def _update(
    session: AsyncSession,
    ctx: DispatchContext,
    report: CadReport,
    eido: Eido,
    doc: Any,
    category: Category,
    place: Place | None,
    now: datetime,
) -> EidoReceipt:
    """A newer document for a known case: remember it, then do what changed."""
    facts = eido.fields()
    changed = changed_fields(report.facts, facts)
    report.eido, report.facts, report.last_update_at, report.updated_at = doc, facts, eido.updated_at, now
    report.changed_fields, report.category_mapped_from = changed, category.mapped_from
    report.location_reference = eido.reference
    if place is not None:
        report.uncertainty_m = place.uncertainty_m
    if not report.dispatching:
        if eido.status == "active" and place is not None:
            receipt = await _open(session, ctx, report, eido, category, place)
            return receipt.model_copy(update={"changed": changed})
        if eido.status != "active":
            report.waiting_reason = "closed by the centre before anyone was alerted"
        await session.commit()
        return _receipt(report, eido, category, None, changed=changed)
    incident = await load_incident(session, report.incident_id, lock=True)
    incident.centre_changed = changed
    incident.address = eido.civic or incident.address
    incident.note = eido.note
    if place is not None:  # re-measured in place or moved: the accuracy the centre says now
        incident.location_uncertainty_m = place.uncertainty_m
    if incident.status == "closed":  # by the centre or a dispatcher: an update opens nothing again
        await session.commit()
        reason = report.waiting_reason or "the incident is closed"
        return _receipt(report, eido, category, reason, changed=changed, incident=incident, closed=True)
    if eido.status != "active":
        reason = EMS_ON_SCENE if eido.status == "ems_on_scene" else CLOSED_BY_CENTRE
        report.waiting_reason = reason
        out = await close_incident(
            session, ctx, incident.id, f"cad:{report.agency}", reason, cancel_reason=reason
        )
        cancelled = sum(a.cancel_reason == reason for a in out.alerts)
        return _receipt(
            report,
            eido,
            category,
            reason,
            changed=changed,
            cancelled=cancelled,
            incident=incident,
            closed=True,
        )
    if _moves(incident, place) or incident.category != category.category:
        return await _replan(session, ctx, report, eido, category, place, incident, changed)
    events_logged = [events.record(session, incident.id, "centre_updated", changed=changed)]
    await session.commit()
    await events.publish(ctx.fanout, events_logged)
    return _receipt(report, eido, category, None, changed=changed, incident=incident)


def _moves(incident: Incident, place: Place | None) -> bool:
    return place is not None and haversine_m(incident.lat, incident.lng, place.lat, place.lng) >= MOVED_M


async def _replan(
    session: AsyncSession,
    ctx: DispatchContext,
    report: CadReport,
    eido: Eido,
    category: Category,
    place: Place | None,
    incident: Incident,
    changed: list[str],
) -> EidoReceipt:
    """The patient is elsewhere (or needs other help): move the incident and let the policy decide
    who is no longer in reach and who is now (`dispatch.decisions.after_move`)."""
    if place is not None:
        incident.lat, incident.lng = place.lat, place.lng
        incident.location = f"SRID=4326;POINT({place.lng} {place.lat})"
    incident.category = category.category
    changes = await after_move(session, ctx, incident)
    changes.logged.insert(
        0,
        events.record(
            session,
            incident.id,
            "centre_updated",
            changed=changed,
            lat=incident.lat,
            lng=incident.lng,
            category=incident.category,
        ),
    )
    await session.commit()
    await changes.publish(session, ctx)
    return _receipt(
        report,
        eido,
        category,
        None,
        alerts=len(changes.alerted),
        cancelled=len(changes.stood_down),
        changed=changed,
        incident=incident,
    )


async def _stale(session: AsyncSession, report: CadReport, category: Category) -> EidoReceipt:
    """Nothing changed (the row lock is let go): the case as it stands."""
    incident = await session.get(Incident, report.incident_id) if report.dispatching else None
    await session.commit()
    return EidoReceipt(
        incident_id=report.incident_id,
        tracking_id=report.tracking_id,
        dispatching=incident is not None and incident.status == "open",
        reason=report.waiting_reason or "not newer than the update already applied",
        alerts=0,
        coverage=incident.coverage if incident else {},
        stale=True,
        category=incident.category if incident else category.category,
        category_mapped_from=report.category_mapped_from,
    )


def _receipt(
    report: CadReport,
    eido: Eido,
    category: Category,
    reason: str | None,
    *,
    alerts: int = 0,
    cancelled: int = 0,
    coverage: dict[str, Any] | None = None,
    changed: list[str] | None = None,
    incident: Incident | None = None,
    closed: bool = False,
) -> EidoReceipt:
    return EidoReceipt(
        incident_id=report.incident_id,
        tracking_id=eido.tracking_id,
        dispatching=report.dispatching and not closed,
        reason=reason or report.waiting_reason,
        alerts=alerts,
        cancelled=cancelled,
        coverage=coverage if coverage is not None else (incident.coverage if incident else {}),
        category=category.category,
        category_mapped_from=category.mapped_from,
        changed=changed or [],
    )
