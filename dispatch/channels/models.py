"""Tables of the channels: the one-time codes that SMS and voice links carry.

A code opens one alert in the responder app without signing in (a phone in China that gets no
Web Push still gets an SMS). Only its SHA-256 hash is kept, as for API tokens: a code has 128 bits
of entropy, so a fast hash is safe. A code has no expiry of its own: it lives exactly as long as
its alert does (`dispatch.channels.codes`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import DateTime, ForeignKeyConstraint, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base


class AlertCode(Base):
    __tablename__ = "alert_codes"
    __table_args__ = (
        # alerts are partitioned by opened_at, so a reference to one names it too (migration 0016)
        ForeignKeyConstraint(
            ["alert_id", "alert_opened_at"],
            ["alerts.id", "alerts.opened_at"],
            name="fk_alert_codes_alert_id_alerts",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    alert_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    alert_opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    code_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    channel: Mapped[str] = mapped_column(String(10))  # the channel whose message carried it
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=lambda: datetime.now(UTC))
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
