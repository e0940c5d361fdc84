"""The outcome record of an incident, in the terms of the Utstein core data set.

Entered after closing by the dispatcher or the EMS crew (through their centre's system), and
editable while facts arrive (survival to discharge is known weeks later). One row per incident;
every edit is also an incident event (`outcome_recorded`), so the log says who changed what. A
field left null is "not known", which Utstein keeps apart from "no".
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, DateTime, ForeignKey, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

WITNESSED = ("unwitnessed", "bystander", "first_responder", "ems")
"""Who saw the collapse: nobody, a bystander, one of our responders, or the EMS crew."""


class IncidentOutcome(Base):
    __tablename__ = "incident_outcomes"
    __table_args__ = (
        CheckConstraint(f"witnessed IN ({', '.join(repr(w) for w in WITNESSED)})", name="witnessed"),
    )

    incident_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("incidents.id"), primary_key=True)
    witnessed: Mapped[str | None] = mapped_column(String(20), nullable=True)
    bystander_cpr: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    """CPR by bystanders before any of our responders arrived."""
    first_responder_cpr_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    aed_attached: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    aed_attached_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    shock_delivered: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    first_shock_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ems_arrival_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    rosc: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    """Any return of spontaneous circulation."""
    survived_admission: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    survived_discharge: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    recorded_by: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
