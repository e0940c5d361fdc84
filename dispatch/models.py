"""Incident tables: incidents, the alerts sent for them and the append-only event log.

Every alert is written here before it is published, so a responder who connects later, or a
worker that restarts, finds it again. The event log is never updated, only appended: it is what a
dispatcher (and later an inquiry) reads to know who was told what and when.

`alerts` and `incident_events` are partitioned by month (`core.partitions`, migration 0016): alerts
by their incident's opening time (`opened_at`), events by their own time (`ts`). Their keys in the
database therefore include that column; the mapper still knows a row by `id` alone (unique all
the same). Queries on them name a time bound so that old months are skipped.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from geoalchemy2 import Geography
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

INCIDENT_CATEGORIES = ("cardiac_arrest", "unconscious", "choking", "severe_bleeding", "other_medical")
INCIDENT_STATUSES = ("open", "closed")
INCIDENT_PLACES = ("public", "residential")  # residential: only responders whose tier allows homes
UNDECIDED = "undecided"
ALERT_ROLES = (UNDECIDED, "cpr", "fetch_aed")
"""`undecided` until the responder accepts: roles are chosen as people accept (dispatch.circle)."""
ALERT_STATUSES = ("sent", "delivered", "accepted", "declined", "expired", "en_route", "on_scene", "cancelled")
PENDING = ("sent", "delivered")  # waiting for the responder's answer
ENGAGED = ("accepted", "en_route", "on_scene")  # counted as help on the way
DELIVERY_CHANNELS = ("socket", "push", "sms", "voice", "app")  # what a receipt may name
LADDER_WAITING = "status = 'sent' AND ladder_due_at IS NOT NULL"  # alerts the ladder still steps


def _now() -> datetime:
    return datetime.now(UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (
        CheckConstraint(_in("category", INCIDENT_CATEGORIES), name="category"),
        CheckConstraint(_in("status", INCIDENT_STATUSES), name="status"),
        CheckConstraint(_in("place", INCIDENT_PLACES), name="place"),
        Index("ix_incidents_open_escalation", "next_escalation_at", postgresql_where="status = 'open'"),
        Index("ix_incidents_open_topup", "next_topup_at", postgresql_where="status = 'open'"),
        # the oldest open incident: the lower time bound of a responder's alerts (dispatch.service)
        Index("ix_incidents_open_created", "created_at", postgresql_where="status = 'open'"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    category: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(10), default="open")
    location: Mapped[Any] = mapped_column(Geography(geometry_type="POINT", srid=4326, spatial_index=False))
    lat: Mapped[float] = mapped_column(Float)
    lng: Mapped[float] = mapped_column(Float)
    address: Mapped[str | None] = mapped_column(String(500), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    place: Mapped[str] = mapped_column(String(12), default="public", server_default="public")
    reach_s: Mapped[float] = mapped_column(Float)
    coverage: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    escalation_step: Mapped[int] = mapped_column(Integer, default=0)
    # the schedule the incident was opened with, which every worker's dispatch clock follows
    escalation_interval_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    next_escalation_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # the answer timeout the incident was opened with (every worker's clock follows it), and when
    # the next pending alert goes unanswered past it: the clock tops up then
    answer_timeout_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    next_topup_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_by: Mapped[str] = mapped_column(String(200))
    # From an emergency centre's dispatch system (`cad/`): which centre, and its incident tracking id
    # (EIDO `$id`), unique so the same case never makes a second incident. None: opened here.
    agency: Mapped[str | None] = mapped_column(String(100), nullable=True)
    tracking_id: Mapped[str | None] = mapped_column(String(300), nullable=True, unique=True)
    # how far from the point the patient may be (the centre's PIDF-LO shape; None: not said), and
    # which facts the centre changed on its last update (the console marks them)
    location_uncertainty_m: Mapped[float | None] = mapped_column(Float, nullable=True)
    centre_changed: Mapped[list[str] | None] = mapped_column(JSONB, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        CheckConstraint(_in("role", ALERT_ROLES), name="role"),
        CheckConstraint(_in("status", ALERT_STATUSES), name="status"),
        CheckConstraint(_in("delivered_via", DELIVERY_CHANNELS), name="delivered_via"),
        # with opened_at (the partition key must be in it): the same pairs, as it follows from incident_id
        UniqueConstraint("incident_id", "responder_id", "opened_at", name="uq_alerts_incident_responder"),
        Index("ix_alerts_responder_status", "responder_id", "status"),
        Index("ix_alerts_pending_expiry", "expires_at", postgresql_where="status IN ('sent', 'delivered')"),
        Index("ix_alerts_ladder_due", "ladder_due_at", postgresql_where=LADDER_WAITING),
        {"postgresql_partition_by": "RANGE (opened_at)"},
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.id"), index=True)
    # the incident's `created_at`: the partition key, and the time bound of "this incident's alerts"
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    responder_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("responders.id"))
    role: Mapped[str] = mapped_column(String(10))
    aed_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("aeds.id"), nullable=True)
    # the AED an undecided responder may be asked to bring (the nearest free one when alerted)
    option_aed_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("aeds.id"), nullable=True)
    eta_s: Mapped[float] = mapped_column(Float)
    distance_m: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(10), default="sent")
    batch: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    cancel_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    """Why a `cancelled` alert ended: the incident closed, or `enough_responders` (stood down)."""
    # How the alert reached the phone (dispatch.channels): only a receipt (or an answer) sets
    # `delivered_via`; `socket_at` is when a socket first took the frame (an attempt, not a delivery).
    delivered_via: Mapped[str | None] = mapped_column(String(10), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    socket_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The ladder (dispatch.channels.ladder): the index of its next step, and when that is due (None:
    # nothing left to try). Due at once on creation, so the clock looks at every new alert.
    ladder_next: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    ladder_due_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True, default=_now
    )
    # After the accept (dispatch.arrival): where the phone stood when its person accepted (the
    # origin of the `en_route` geofence; a position on duty, so it is erased after the retention,
    # `privacy.retention`), and when the person left, took the AED off the wall and reached the
    # patient, whether the phone's fixes showed it (`auto`) or the person tapped it (`manual`).
    # Kept even when the alert is later cancelled: the programme report counts from them.
    accepted_lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    accepted_lng: Mapped[float | None] = mapped_column(Float, nullable=True)
    en_route_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    aed_picked_up_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    on_scene_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __mapper_args__ = {"primary_key": [id]}  # noqa: RUF012  (the row's identity; opened_at only partitions)


class IncidentEvent(Base):
    __tablename__ = "incident_events"
    __table_args__ = ({"postgresql_partition_by": "RANGE (ts)"},)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.id"), index=True)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True, default=_now)
    kind: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)

    __mapper_args__ = {"primary_key": [id]}  # noqa: RUF012  (the row's identity; ts only partitions)
