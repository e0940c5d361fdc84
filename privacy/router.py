"""HTTP routes of privacy: a responder (or an admin) downloads everything held about them, or has
their account erased. Thin adapters over `export` and `erasure`."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from core.auth import Principal, Role, require_roles
from core.deps import get_session
from core.openapi import errors
from core.revocation import announce_session_revoked
from privacy import erasure, export
from privacy.schemas import EraseIn, ErasureOut, ResponderData
from responders.router import ensure_self, live_store, load_or_fail
from responders.store import LiveLocationStore

router = APIRouter(prefix="/v1/responders", tags=["privacy"])
admin_or_self = require_roles(Role.admin, Role.responder)


def download_name(responder_id: uuid.UUID) -> str:
    return f"responder-{responder_id}-data.json"


@router.get(
    "/{responder_id}/data",
    response_model=ResponderData,
    responses=errors(410),
    response_description="the document, as an attachment (`Content-Disposition`) a browser saves",
)
async def download_data(
    responder_id: uuid.UUID,
    principal: Principal = Depends(admin_or_self),
    session: AsyncSession = Depends(get_session),
    store: LiveLocationStore = Depends(live_store),
) -> Response:
    """Everything held about the responder as one JSON document: profile, team, certificates, live
    position, duty sessions, alerts with the incident events about them, debriefs, push
    subscriptions (endpoints only), tokens (labels and dates only) and their own answer counts."""
    ensure_self(principal, responder_id)
    responder = await load_or_fail(session, responder_id)
    document = await export.responder_data(session, store, responder)
    disposition = f'attachment; filename="{download_name(responder_id)}"'
    return Response(
        document.model_dump_json(),
        media_type="application/json",
        headers={"Content-Disposition": disposition},
    )


@router.post("/{responder_id}/erase", response_model=ErasureOut, responses=errors(404))
async def erase(
    responder_id: uuid.UUID,
    body: EraseIn,
    request: Request,
    principal: Principal = Depends(admin_or_self),
    session: AsyncSession = Depends(get_session),
    store: LiveLocationStore = Depends(live_store),
) -> ErasureOut:
    """Delete the account for good (`{"confirm": "erase"}`); the incident record keeps an anonymous
    stand-in. The responder's tokens stop working at once. Asking again changes nothing
    (`already_erased`)."""
    ensure_self(principal, responder_id)
    try:
        report = await erasure.erase_account(session, store, responder_id)
    except erasure.NoSuchResponder:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"id: no responder {responder_id}") from None
    await announce_session_revoked(request, session)
    return report
