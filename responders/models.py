"""Responder registry tables: teams, responders and their certificates.

Teams form the programme's hierarchy (city → district → street → community); a responder belongs to
one team at any level. `external_id` is the responder's electronic identity in the city's system
and is what imports match on, so re-importing a file never creates duplicates. Duty is kept here
too (the record of truth survives a Redis loss); the live position is only in Redis.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base

TEAM_LEVELS = ("city", "district", "street", "community")
RESPONDER_CATEGORIES = (
    "sanitation_worker", "city_inspector", "park_security", "auxiliary_staff",
    "volunteer", "medical_professional", "other",
)  # fmt: skip
CERTIFICATE_KINDS = ("first_aid", "cpr", "aed")
TRAVEL_MODES = ("walk", "run", "bicycle", "ebike", "car")
ALERT_PLACES = ("public", "public_and_homes")  # the tier: alerted for public places only, or homes too


def _now() -> datetime:
    return datetime.now(UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Team(Base):
    """A node of the hierarchy; `path` ('shenzhen/futian/shatou/xiasha') is unique and readable."""

    __tablename__ = "teams"
    __table_args__ = (CheckConstraint("level BETWEEN 0 AND 3", name="level"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[int] = mapped_column(SmallInteger)  # index into TEAM_LEVELS
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("teams.id"), nullable=True, index=True)
    path: Mapped[str] = mapped_column(String(400), unique=True)


class Responder(Base):
    """A trained worker who can be alerted; never deleted, only deactivated (alerts refer to them)."""

    __tablename__ = "responders"
    __table_args__ = (
        CheckConstraint(_in("category", RESPONDER_CATEGORIES), name="category"),
        CheckConstraint(_in("mode", TRAVEL_MODES), name="mode"),
        CheckConstraint(_in("alert_places", ALERT_PLACES), name="alert_places"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(40), nullable=True)
    category: Mapped[str] = mapped_column(String(30))
    team_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("teams.id"), nullable=True, index=True)
    mode: Mapped[str] = mapped_column(String(10))
    alert_places: Mapped[str] = mapped_column(String(20), default="public", server_default="public")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    on_duty: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    # Set when the person asked for their account to be deleted (`privacy.erasure`): the row stays
    # as an anonymous stand-in that the incident record points at, with no name, phone, identity,
    # certificate, token or subscription left.
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    team: Mapped[Team | None] = relationship(lazy="joined")
    certificates: Mapped[list[Certificate]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="Certificate.valid_until"
    )


class Certificate(Base):
    """A first-aid qualification; `valid_until` is inclusive (the whole last day counts)."""

    __tablename__ = "certificates"
    __table_args__ = (
        CheckConstraint(_in("kind", CERTIFICATE_KINDS), name="kind"),
        CheckConstraint("valid_until >= valid_from", name="period"),
        UniqueConstraint("responder_id", "kind", "number", name="uq_certificates_responder_kind_number"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    responder_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("responders.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(20))
    number: Mapped[str] = mapped_column(String(100))
    issuer: Mapped[str | None] = mapped_column(String(200), nullable=True)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    verified: Mapped[bool] = mapped_column(Boolean, default=False)


ACCEPTANCE_LEVELS = ("responder", "team", "category")
ANSWER_BANDS = ("day", "night")


class AcceptanceTally(Base):
    """Answers to alerts at one level (a responder, a team, a category) in one time-of-day band.

    Incremented in the transaction that records the answer or the expiry
    (`responders.acceptance_store`), so no count is lost or doubled; `key` is the responder's or the
    team's id, or the category's name.
    """

    __tablename__ = "acceptance_tallies"
    __table_args__ = (
        CheckConstraint(_in("level", ACCEPTANCE_LEVELS), name="level"),
        CheckConstraint(_in("band", ANSWER_BANDS), name="band"),
    )

    level: Mapped[str] = mapped_column(String(10), primary_key=True)
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    band: Mapped[str] = mapped_column(String(5), primary_key=True)
    accepted: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    declined: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    unanswered: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class DutySession(Base):
    """One stretch on duty: opened when the responder goes on duty, closed when they go off (or are
    deactivated). The service record (`service_record/`) sums these; no position is kept with it."""

    __tablename__ = "duty_sessions"
    __table_args__ = (
        Index("ix_duty_sessions_responder_started", "responder_id", "started_at"),
        # at most one open session per responder
        Index("uq_duty_sessions_open", "responder_id", unique=True, postgresql_where="ended_at IS NULL"),
        CheckConstraint("ended_at IS NULL OR ended_at >= started_at", name="ordered"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    responder_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("responders.id"))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
