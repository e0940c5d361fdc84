"""HTTP routes of Web Push: the VAPID public key, and a responder's push subscriptions.

The public key is given to any signed-in caller (it is public: every push request carries it; the
token only keeps `/v1` uniformly behind the bearer gate). Subscriptions belong to a responder:
the responder themself or an admin may add, list and remove them.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, HTTPException, Request, status
from sqlalchemy.ext.asyncio import AsyncSession

from core.auth import Principal, Role, require_roles
from core.config import Settings
from core.deps import get_app_settings, get_session
from core.openapi import errors
from dispatch.channels import push_service
from dispatch.channels.push import PushChannel
from dispatch.channels.push_schemas import (
    PushSubscriptionCreated,
    PushSubscriptionIn,
    PushSubscriptionOut,
    VapidPublicKey,
    endpoint_problem,
)
from responders.models import Responder
from responders.router import admin_or_self, ensure_self

router = APIRouter(tags=["push"])
anyone = require_roles(*Role)
SUBSCRIPTIONS = "/v1/responders/{responder_id}/push-subscriptions"


def push_channel(request: Request) -> PushChannel:
    return request.app.state.push


async def _responder(session: AsyncSession, principal: Principal, responder_id: uuid.UUID) -> None:
    """Self or admin, and the responder exists (else 403 / 404 naming why)."""
    ensure_self(principal, responder_id)
    if await session.get(Responder, responder_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"id: no responder {responder_id}")


@router.get("/v1/push/vapid-public-key", response_model=VapidPublicKey)
async def vapid_public_key(
    _: Principal = Depends(anyone), channel: PushChannel = Depends(push_channel)
) -> VapidPublicKey:
    """The `applicationServerKey` for `pushManager.subscribe` (the same for every worker and restart)."""
    return VapidPublicKey(public_key=await channel.public_key())


@router.post(
    SUBSCRIPTIONS,
    status_code=status.HTTP_201_CREATED,
    response_model=PushSubscriptionCreated,
    responses=errors(404),
)
async def add_subscription(
    responder_id: uuid.UUID,
    body: PushSubscriptionIn,
    principal: Principal = Depends(admin_or_self),
    session: AsyncSession = Depends(get_session),
    settings: Settings = Depends(get_app_settings),
) -> PushSubscriptionCreated:
    """Keep the browser's `PushSubscription` so alerts can wake this device; the same endpoint
    again updates its keys (201 with the same id)."""
    problem = endpoint_problem(body.endpoint, settings.push_allow_http_loopback, settings.push_endpoint_hosts)
    if problem is not None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, f"endpoint: {problem}")
    await _responder(session, principal, responder_id)
    return PushSubscriptionCreated(id=await push_service.subscribe(session, responder_id, body))


@router.get(SUBSCRIPTIONS, response_model=list[PushSubscriptionOut], responses=errors(404))
async def list_subscriptions(
    responder_id: uuid.UUID,
    principal: Principal = Depends(admin_or_self),
    session: AsyncSession = Depends(get_session),
) -> list[PushSubscriptionOut]:
    """The devices this responder's alerts are pushed to."""
    await _responder(session, principal, responder_id)
    rows = await push_service.list_for(session, responder_id)
    return [PushSubscriptionOut.model_validate(r, from_attributes=True) for r in rows]


@router.delete(SUBSCRIPTIONS + "/{sub_id}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(404))
async def remove_subscription(
    responder_id: uuid.UUID,
    sub_id: uuid.UUID,
    principal: Principal = Depends(admin_or_self),
    session: AsyncSession = Depends(get_session),
) -> None:
    """Stop pushing to one device (the page calls this when the person turns notifications off)."""
    await _responder(session, principal, responder_id)
    if not await push_service.remove(session, responder_id, sub_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"sub_id: no push subscription {sub_id} here")
