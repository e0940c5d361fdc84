"""HTTP for the feedback to centres: a centre's subscriptions (cad role, its own only) and the
deliveries admins watch and re-send."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from cad import deliveries, subscriptions
from core.auth import Principal, Role, require_roles
from core.deps import get_session
from core.inputs import InputModel, Text
from core.openapi import errors

router = APIRouter(prefix="/v1/cad", tags=["cad"])
CENTRE = require_roles(Role.cad)
BIGINT_MAX = 2**63 - 1  # a delivery id is a PostgreSQL bigint: larger ones are a 422, not a 500
ADMIN = require_roles(Role.admin)


class SubscriptionIn(InputModel):
    url: Text = Field(min_length=1, max_length=2000, description="where feedback is POSTed (http/https)")
    secret: Text = Field(
        min_length=16, max_length=200, description="HMAC-SHA256 key of `X-Rescue-Signature`; never shown back"
    )


class SubscriptionOut(BaseModel):
    id: uuid.UUID
    agency: str
    url: str
    created_at: datetime


class ResendOut(BaseModel):
    id: int
    status: Literal["pending"]


class DeliveryOut(BaseModel):
    id: int
    agency: str
    subscription_id: uuid.UUID
    incident_id: uuid.UUID
    seq: int
    event: str
    status: str
    attempts: int
    next_try_at: datetime
    last_error: str | None
    delivered_at: datetime | None
    body: dict[str, Any]


def _agency(principal: Principal) -> str:
    assert principal.agency is not None, "a cad token always names its agency (core.auth)"
    return principal.agency


@router.post(
    "/subscriptions",
    status_code=status.HTTP_201_CREATED,
    response_model=SubscriptionOut,
    responses=errors(422),
)
async def create_subscription(
    body: SubscriptionIn,
    request: Request,
    session: AsyncSession = Depends(get_session),
    principal: Principal = Depends(CENTRE),
) -> SubscriptionOut:
    """Send this centre's feedback (every incident it posted) to `url`, signed with `secret`."""
    problem = subscriptions.url_problem(body.url, request.app.state.settings.cad_allow_private_urls)
    if problem:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, f"url: {problem}")
    row = await subscriptions.subscribe(session, _agency(principal), body.url, body.secret)
    return SubscriptionOut(id=row.id, agency=row.agency, url=row.url, created_at=row.created_at)


@router.get("/subscriptions", response_model=list[SubscriptionOut])
async def list_subscriptions(
    session: AsyncSession = Depends(get_session), principal: Principal = Depends(CENTRE)
) -> list[SubscriptionOut]:
    """This centre's own subscriptions (their secrets are never shown)."""
    rows = await subscriptions.of_agency(session, _agency(principal))
    return [SubscriptionOut(id=r.id, agency=r.agency, url=r.url, created_at=r.created_at) for r in rows]


@router.delete(
    "/subscriptions/{subscription_id}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(404)
)
async def delete_subscription(
    subscription_id: uuid.UUID,
    session: AsyncSession = Depends(get_session),
    principal: Principal = Depends(CENTRE),
) -> None:
    """Stop one of this centre's subscriptions; its undelivered feedback is dropped with it."""
    if not await subscriptions.unsubscribe(session, _agency(principal), subscription_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"subscription {subscription_id} not found")


@router.get("/deliveries", response_model=list[DeliveryOut])
async def list_deliveries(
    status_: Literal["pending", "delivered", "failed"] = Query("failed", alias="status"),
    limit: int = Query(100, ge=1, le=1000),
    session: AsyncSession = Depends(get_session),
    _: Principal = Depends(ADMIN),
) -> list[DeliveryOut]:
    """Feedback deliveries by status, newest first: `failed` ones wait for a re-send."""
    rows = await deliveries.listed(session, status_, limit)
    return [
        DeliveryOut(
            id=r.id,
            agency=agency,
            subscription_id=r.subscription_id,
            incident_id=r.incident_id,
            seq=r.seq,
            event=r.event,
            status=r.status,
            attempts=r.attempts,
            next_try_at=r.next_try_at,
            last_error=r.last_error,
            delivered_at=r.delivered_at,
            body=r.body,
        )
        for r, agency in rows
    ]


@router.post(
    "/deliveries/{delivery_id}/resend",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ResendOut,
    responses=errors(404, 409),
)
async def resend_delivery(
    delivery_id: int = Path(ge=1, le=BIGINT_MAX),
    session: AsyncSession = Depends(get_session),
    _: Principal = Depends(ADMIN),
) -> ResendOut:
    """Queue a failed delivery again (the incident's later feedback follows it, in order)."""
    if await deliveries.resend(session, delivery_id):
        return ResendOut(id=delivery_id, status="pending")
    if await deliveries.exists(session, delivery_id):
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"delivery {delivery_id} is not failed: nothing to re-send"
        )
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"delivery {delivery_id} not found")
