"""One-time alert codes: what an SMS or voice link carries instead of a sign-in.

What "one-time" means here (the code travels in a text message that may be forwarded or read over
a shoulder, so it must open as little as possible, for as short a time as possible):
- a code opens ONE alert: the one it was issued for; shown another alert's id it is refused (403);
- it lives as long as that alert: while the alert waits for an answer, and after the responder
  accepted, while the incident is open (the responder on the way needs the place); once the alert
  is declined, expired or cancelled the code is dead (401);
- it can send the receipt and read the alert as often as needed (a page reload must not lock the
  responder out), but it ANSWERS ONCE: after it accepted or declined, it only reads (409);
- it never signs in as the responder: no location, no duty, no other alert.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.channels.models import AlertCode
from dispatch.models import ENGAGED, PENDING, Alert, Incident

CODE_BYTES = 16  # 128 bits: never guessed, short enough for an SMS link (22 characters)


def hash_code(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def issue(session: AsyncSession, alert: Alert, channel: str) -> str:
    """A new code for one alert (added to the session; the caller commits); the plain code is
    returned once and never stored."""
    plain = secrets.token_urlsafe(CODE_BYTES)
    code = AlertCode(
        alert_id=alert.id, alert_opened_at=alert.opened_at, code_hash=hash_code(plain), channel=channel
    )
    session.add(code)
    return plain


class CodeRefused(ValueError):
    """Why a code may not be used: `status` 401 (unknown or dead) or 403 (another alert's)."""

    def __init__(self, status: int, rule: str) -> None:
        super().__init__(f"X-Alert-Code: {rule}")
        self.status = status


def alive(alert: Alert, incident: Incident, now: datetime | None = None) -> bool:
    """Whether a code of this alert still works: the alert waits for an answer, or it was accepted
    and the incident is still open."""
    now = now or datetime.now(UTC)
    if incident.status != "open":
        return False
    return (alert.status in PENDING and alert.expires_at > now) or alert.status in ENGAGED


@dataclass(frozen=True, slots=True)
class FoundCode:
    id: uuid.UUID
    channel: str  # the channel whose message carried it: how the alert reached the phone
    responder_id: uuid.UUID  # the alert's responder, on whose behalf the code acts


async def check(session: AsyncSession, code: str, alert_id: uuid.UUID) -> FoundCode:
    """The code when it may act on `alert_id`; raises `CodeRefused` otherwise."""
    row = (
        await session.execute(
            select(AlertCode, Alert, Incident)
            .join(Alert, and_(Alert.id == AlertCode.alert_id, Alert.opened_at == AlertCode.alert_opened_at))
            .join(Incident, Incident.id == Alert.incident_id)
            .where(AlertCode.code_hash == hash_code(code))
        )
    ).first()
    if row is None:
        raise CodeRefused(401, "unknown code")
    found, alert, incident = row
    if found.alert_id != alert_id:
        raise CodeRefused(403, "this code belongs to another alert")
    if not alive(alert, incident):
        raise CodeRefused(401, f"expired: the alert is {alert.status}")
    return FoundCode(found.id, found.channel, alert.responder_id)


async def spend(session: AsyncSession, code_id: uuid.UUID) -> None:
    """Use the code's one answer (in the answer's transaction); raises `CodeRefused(409)` when it
    has answered already."""
    spent = await session.execute(
        update(AlertCode)
        .where(AlertCode.id == code_id, AlertCode.answered_at.is_(None))
        .values(answered_at=datetime.now(UTC))
        .returning(AlertCode.id)
    )
    if spent.first() is None:
        raise CodeRefused(409, "this code has answered already; it can only read the alert now")
