"""Tables of Web Push: the browsers' push subscriptions and the service's VAPID key.

A subscription is a capability URL on a browser vendor's push service plus the browser's keys to
encrypt for it (RFC 8291). A browser has one endpoint per application server, so the endpoint is
unique: the same browser subscribing again (new keys, or another person signing in on the phone)
updates its row instead of adding a second one that would ring the phone twice.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, SmallInteger, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base


def _now() -> datetime:
    return datetime.now(UTC)


class PushSubscription(Base):
    """One browser (device) of a responder that may be woken by a push; several per responder."""

    __tablename__ = "push_subscriptions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    responder_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("responders.id", ondelete="CASCADE"), index=True
    )
    endpoint: Mapped[str] = mapped_column(Text, unique=True)
    p256dh: Mapped[str] = mapped_column(String(100))  # base64url of the browser's P-256 point
    auth: Mapped[str] = mapped_column(String(40))  # base64url of its 16-byte auth secret
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class VapidKey(Base):
    """The one VAPID key pair of the deployment (row id 1), made at the first start of any worker.

    Browsers bind a subscription to the public key they were given, so the key must never change
    behind their back: every worker reads the same row, and the first to start inserts it.
    """

    __tablename__ = "push_vapid_keys"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    private_key: Mapped[str] = mapped_column(String(100))  # base64url of the 32-byte private scalar
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
