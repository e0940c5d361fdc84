"""AED registry tables: the devices, their problem reports and an append-only history.

Locations are `geography(Point, 4326)` with a GiST index so nearest-neighbour (`<->`) and radius
queries run on the index. Status and access are plain strings checked by constraints (the enums live
in `schemas.py`), so adding a value needs a migration but no type dance.
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
    ForeignKey,
    Index,
    String,
    Text,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

AED_STATUSES = ("active", "out_of_service", "unverified", "removed")
AED_ACCESS = ("public", "customers", "private")
REPORT_KINDS = ("missing", "broken", "locked", "pads_expired", "other")
# An open, confirmed report of one of these kinds takes the AED out of `nearby` until an admin
# resolves it (`trust.py` says when a report is confirmed).
BLOCKING_REPORT_KINDS = ("missing", "broken")


def _now() -> datetime:
    return datetime.now(UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Aed(Base):
    """One automated external defibrillator where a responder can pick it up."""

    __tablename__ = "aeds"
    __table_args__ = (
        CheckConstraint(_in("status", AED_STATUSES), name="status"),
        CheckConstraint(_in("access", AED_ACCESS), name="access"),
        Index("ix_aeds_location", "location", postgresql_using="gist"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    external_id: Mapped[str | None] = mapped_column(String(100), unique=True, nullable=True)
    name: Mapped[str] = mapped_column(String(300))
    address: Mapped[str | None] = mapped_column(String(500), nullable=True)
    location_detail: Mapped[str | None] = mapped_column(String(500), nullable=True)
    location: Mapped[Any] = mapped_column(
        Geography(geometry_type="POINT", srid=4326, spatial_index=False), nullable=False
    )
    opening_hours: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Why `opening_hours` could not be parsed (kept as written, evaluated as "unknown"); None = fine.
    opening_hours_error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    access: Mapped[str] = mapped_column(String(20), default="public")
    status: Mapped[str] = mapped_column(String(20), default="active")
    contact: Mapped[str | None] = mapped_column(String(300), nullable=True)
    source: Mapped[str | None] = mapped_column(String(200), nullable=True)
    last_checked: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class AedReport(Base):
    """A problem someone found on site (missing, broken, locked, ...), open until an admin resolves it."""

    __tablename__ = "aed_reports"
    __table_args__ = (
        CheckConstraint(_in("kind", REPORT_KINDS), name="kind"),
        # The nearby query asks "does this AED have an open blocking report?" for every candidate.
        Index(
            "ix_aed_reports_open_blocking",
            "aed_id",
            postgresql_where=text(
                f"resolved_at IS NULL AND confirmed_at IS NOT NULL AND {_in('kind', BLOCKING_REPORT_KINDS)}"
            ),
        ),
        Index("ix_aed_reports_reporter_created_at", "reporter", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    aed_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("aeds.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    reported_by: Mapped[str] = mapped_column(String(200))
    # Who reported, as one identity per token or responder ("token:<id>", "responder:<id>"): two
    # reports confirm each other only when their reporters differ.
    reporter: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    # When the report started to count for dispatch (admin: at once; others: when confirmed).
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    resolution: Mapped[str | None] = mapped_column(Text, nullable=True)


class AedEvent(Base):
    """Append-only history of every change to an AED: who, when, what (never updated or deleted)."""

    __tablename__ = "aed_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    aed_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("aeds.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))  # created, updated, status, report_opened, ...
    actor: Mapped[str] = mapped_column(String(200))  # "<role>:<token label>" or "cli"
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class AedAvailabilityChange(Base):
    """Audit of every change of whether dispatch may use an AED: who, when, why, before and after.

    States: `available`, a status other than `active` (`out_of_service`, `unverified`, `removed`),
    `reported_missing` / `reported_broken` (a confirmed open report), `absent` (before creation).
    """

    __tablename__ = "aed_availability_changes"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    aed_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("aeds.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    before: Mapped[str] = mapped_column(String(40))
    after: Mapped[str] = mapped_column(String(40))
    report_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
