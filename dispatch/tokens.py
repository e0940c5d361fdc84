"""Issuing and revoking API tokens (admin only)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from core.auth import Principal, Role, issue_token, require_roles, revoke_token
from core.deps import get_session
from core.inputs import InputModel, Text
from core.revocation import announce_session_revoked

router = APIRouter(prefix="/v1/tokens", tags=["tokens"])


class TokenCreate(InputModel):
    role: Role = Field(description="admin, dispatcher, planner, gateway or cad")
    label: Text = Field(min_length=1, max_length=200, description="who or what holds the token")
    agency: Text | None = Field(
        None,
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="the emergency centre a `cad` token speaks for (required for cad, refused otherwise)",
    )


class TokenIssued(BaseModel):
    id: uuid.UUID
    role: Role
    label: str
    token: str = Field(description="shown once; only its hash is stored")
    agency: str | None = None


@router.post("", status_code=status.HTTP_201_CREATED, response_model=TokenIssued)
async def create_token(
    body: TokenCreate,
    session: AsyncSession = Depends(get_session),
    _: Principal = Depends(require_roles(Role.admin)),
) -> TokenIssued:
    if body.role is Role.responder:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY,
            "role: responder tokens are issued with the responder (POST /v1/responders or rotate-token)",
        )
    if (body.role is Role.cad) != (body.agency is not None):
        rule = "required for a cad token" if body.role is Role.cad else "only a cad token has an agency"
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, f"agency: {rule}")
    row, plain = await issue_token(session, body.role, body.label, agency=body.agency)
    await session.commit()
    return TokenIssued(id=row.id, role=body.role, label=body.label, token=plain, agency=body.agency)


@router.delete("/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_token(
    token_id: uuid.UUID,
    request: Request,
    session: AsyncSession = Depends(get_session),
    _: Principal = Depends(require_roles(Role.admin)),
) -> None:
    """Revoke a token; every socket opened with it is closed (4401) on every worker within seconds."""
    if not await revoke_token(session, token_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"token {token_id} not found or already revoked")
    await session.commit()
    await announce_session_revoked(request, session)
