"""Debriefs: a few questions to each responder after an incident they turned out for.

Facing a cardiac arrest marks people; programmes that call volunteers (Denmark's among them)
follow up on their wellbeing. One debrief per accepted alert. An answer that asks for support, or
reports an injury, puts the responder on the follow-up list (`follow_up = 'open'`) until a
programme coordinator marks it done, with a note of what was done.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import Boolean, CheckConstraint, DateTime, ForeignKey, Index, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

WENT = ("well", "ok", "hard")
FOLLOW_UP = ("none", "open", "done")


def _now() -> datetime:
    return datetime.now(UTC)


class Debrief(Base):
    __tablename__ = "debriefs"
    __table_args__ = (
        CheckConstraint(f"went IN ({', '.join(repr(w) for w in WENT)})", name="went"),
        CheckConstraint(f"follow_up IN ({', '.join(repr(f) for f in FOLLOW_UP)})", name="follow_up"),
        Index("ix_debriefs_follow_up_open", "answered_at", postgresql_where="follow_up = 'open'"),
        Index("ix_debriefs_responder", "responder_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    # the alert answered (no foreign key: `alerts` is partitioned, its key includes `opened_at`)
    alert_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.id"))
    responder_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("responders.id"))
    went: Mapped[str] = mapped_column(String(10))
    injured: Mapped[bool] = mapped_column(Boolean)
    wants_support: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    answered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    follow_up: Mapped[str] = mapped_column(String(10), default="none")
    follow_up_done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    follow_up_done_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    follow_up_note: Mapped[str | None] = mapped_column(Text, nullable=True)
