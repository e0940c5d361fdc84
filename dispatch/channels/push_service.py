"""The push subscriptions of responders: add (or refresh), list, remove.

Pure data work over a session; the HTTP rules (who may, what is valid) stay in `push_router`.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.channels.push_models import PushSubscription
from dispatch.channels.push_schemas import PushSubscriptionIn


async def subscribe(session: AsyncSession, responder_id: uuid.UUID, body: PushSubscriptionIn) -> uuid.UUID:
    """Store a subscription; the same endpoint again (the browser refreshed its keys, or someone
    else signed in on that phone) updates the one row: a device is never rung twice for one alert."""
    now = datetime.now(UTC)
    keys = body.keys
    values = {"responder_id": responder_id, "p256dh": keys.p256dh, "auth": keys.auth, "updated_at": now}
    statement = (
        insert(PushSubscription)
        .values(id=uuid.uuid4(), endpoint=body.endpoint, created_at=now, **values)
        .on_conflict_do_update(index_elements=["endpoint"], set_=values)
        .returning(PushSubscription.id)
    )
    sub_id = (await session.execute(statement)).scalar_one()
    await session.commit()
    return sub_id


async def list_for(session: AsyncSession, responder_id: uuid.UUID) -> Sequence[PushSubscription]:
    query = (
        select(PushSubscription)
        .where(PushSubscription.responder_id == responder_id)
        .order_by(PushSubscription.created_at)
    )
    return (await session.execute(query)).scalars().all()


async def remove(session: AsyncSession, responder_id: uuid.UUID, sub_id: uuid.UUID) -> bool:
    """Delete one of a responder's subscriptions; False when it is not theirs or not there."""
    result = await session.execute(
        delete(PushSubscription)
        .where(PushSubscription.id == sub_id, PushSubscription.responder_id == responder_id)
        .returning(PushSubscription.id)
    )
    await session.commit()
    return result.scalar_one_or_none() is not None


async def with_devices(session: AsyncSession, responder_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these responders have at least one device to push to."""
    if not responder_ids:
        return set()
    query = select(PushSubscription.responder_id).where(PushSubscription.responder_id.in_(responder_ids))
    return set((await session.execute(query.distinct())).scalars())
