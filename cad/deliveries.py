"""What admins see of the feedback deliveries, and the re-send of a failed one."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cad.outbox_models import CadOutbox, CadSubscription


async def listed(session: AsyncSession, status: str, limit: int) -> list[tuple[CadOutbox, str]]:
    """Deliveries in `status` (newest first) with their subscription's agency."""
    query = (
        select(CadOutbox, CadSubscription.agency)
        .join(CadSubscription, CadSubscription.id == CadOutbox.subscription_id)
        .where(CadOutbox.status == status)
        .order_by(CadOutbox.id.desc())
        .limit(limit)
    )
    return [(row, agency) for row, agency in (await session.execute(query)).all()]


async def resend(session: AsyncSession, delivery_id: int) -> bool:
    """A failed delivery goes back to the queue with its tries counted afresh (same `seq`, same
    `Idempotency-Key`); the incident's later feedback, which waited behind it, follows it."""
    result = await session.execute(
        update(CadOutbox)
        .where(CadOutbox.id == delivery_id, CadOutbox.status == "failed")
        .values(status="pending", attempts=0, next_try_at=datetime.now(UTC))
        .returning(CadOutbox.id)
    )
    await session.commit()
    return result.first() is not None


async def exists(session: AsyncSession, delivery_id: int) -> bool:
    return (await session.get(CadOutbox, delivery_id)) is not None
