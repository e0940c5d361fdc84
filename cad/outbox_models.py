"""Tables of the feedback to emergency centres: their subscriptions, one stream per subscription and
incident, and the outbox of events waiting to be (or already) delivered.

The outbox rows are written in the transaction of the incident change they describe
(`cad.outbox`), so a centre hears of every change that committed and of none that did not. The
stream row holds the last `seq` handed out and the running tallies (`answered`'s counts): it is
locked by each writer until commit, so `seq` follows commit order within an incident.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
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

DELIVERY_STATUSES = ("pending", "delivered", "failed")


def _now() -> datetime:
    return datetime.now(UTC)


class CadSubscription(Base):
    """Where a centre wants its feedback POSTed, and the secret the POSTs are signed with (kept in
    plain: we must compute the HMAC with it; it is never shown back)."""

    __tablename__ = "cad_subscriptions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    agency: Mapped[str] = mapped_column(String(100), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class CadStream(Base):
    """One subscription's view of one incident: the last `seq` given and the tallies so far."""

    __tablename__ = "cad_streams"

    subscription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("cad_subscriptions.id", ondelete="CASCADE"), primary_key=True
    )
    # no foreign key: an opening may flush its incident and its first events together
    incident_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    tally: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class CadOutbox(Base):
    """One feedback event for one subscription: the exact body, and how its delivery is going."""

    __tablename__ = "cad_outbox"
    __table_args__ = (
        CheckConstraint(
            f"status IN ({', '.join(repr(s) for s in DELIVERY_STATUSES)})", name="cad_outbox_status"
        ),
        UniqueConstraint("subscription_id", "incident_id", "seq", name="uq_cad_outbox_stream_seq"),
        Index("ix_cad_outbox_due", "next_try_at", postgresql_where="status = 'pending'"),
        Index("ix_cad_outbox_failed", "id", postgresql_where="status = 'failed'"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    subscription_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cad_subscriptions.id", ondelete="CASCADE"))
    incident_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    seq: Mapped[int] = mapped_column(Integer)
    event: Mapped[str] = mapped_column(String(20))
    body: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_try_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
