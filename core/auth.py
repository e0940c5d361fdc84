"""Bearer-token authentication and role checks.

Tokens are 32 random bytes (URL-safe), shown once and stored only as a SHA-256 hash: a token has
far more entropy than a password, so a fast hash is safe and keeps every request cheap. The hash
is looked up by index and then compared with `hmac.compare_digest`, so timing reveals nothing.
Each worker keeps the principals it found in a cache (`core.token_cache`) that every revocation
reaches at once (`core.revocation`), so a request does not usually touch PostgreSQL at all.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from fastapi import Depends, HTTPException, Request, WebSocket, status
from sqlalchemy import DateTime, String, Uuid, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from starlette.requests import HTTPConnection

from core.db import Base
from core.metrics import TOKEN_CACHE_HITS, TOKEN_LOOKUPS
from core.ratelimit import FailedLookups, Limited

if TYPE_CHECKING:  # core.token_cache holds Principals: imported here only for the hint
    from core.token_cache import TokenCache


class Role(StrEnum):
    admin = "admin"
    dispatcher = "dispatcher"
    planner = "planner"
    responder = "responder"
    gateway = "gateway"
    cad = "cad"  # an emergency centre's dispatch system: posts incidents (EIDO), hears back
    coordinator = "coordinator"  # a programme coordinator: debrief follow-ups, service exports, reports


class ApiToken(Base):
    """One issued token: only its hash, the role it grants and, for responders, whose it is; for
    an emergency centre (`cad`), which agency it speaks for."""

    __tablename__ = "api_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    role: Mapped[str] = mapped_column(String(20))
    label: Mapped[str] = mapped_column(String(200))
    responder_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True, nullable=True)
    agency: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=lambda: datetime.now(UTC))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the role, the token's id and, for a responder, the responder id; for an
    emergency centre, its agency id."""

    role: Role
    token_id: uuid.UUID | None
    responder_id: uuid.UUID | None = None
    label: str = ""
    agency: str | None = None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


async def issue_token(
    session: AsyncSession,
    role: Role,
    label: str,
    responder_id: uuid.UUID | None = None,
    agency: str | None = None,
) -> tuple[ApiToken, str]:
    """Create a token; returns the row and the plain token (the only time it is visible)."""
    plain = new_token()
    row = ApiToken(
        token_hash=hash_token(plain), role=role.value, label=label, responder_id=responder_id, agency=agency
    )
    session.add(row)
    await session.flush()
    return row, plain


REVOKED_KEY = "revoked_token_ids"


def _note_revoked(session: AsyncSession, ids: list[uuid.UUID]) -> None:
    """Keep the ids on the session, so whoever commits can announce them (`core.revocation`)."""
    session.info.setdefault(REVOKED_KEY, []).extend(ids)


def take_revoked(session: AsyncSession) -> list[uuid.UUID]:
    """The token ids revoked through this session since the last call (announce after the commit)."""
    return list(session.info.pop(REVOKED_KEY, []))


async def revoke_token(session: AsyncSession, token_id: uuid.UUID) -> bool:
    """Revoke one token; False when it does not exist or was already revoked."""
    result = await session.execute(
        update(ApiToken)
        .where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
        .returning(ApiToken.id)
    )
    ids = list(result.scalars())
    _note_revoked(session, ids)
    return bool(ids)


async def revoke_responder_tokens(session: AsyncSession, responder_id: uuid.UUID) -> int:
    """Revoke every live token of a responder (used when rotating or deactivating)."""
    result = await session.execute(
        update(ApiToken)
        .where(ApiToken.responder_id == responder_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
        .returning(ApiToken.id)
    )
    ids = list(result.scalars())
    _note_revoked(session, ids)
    return len(ids)


ADMIN_PRINCIPAL = Principal(role=Role.admin, token_id=None, label="DISPATCH_ADMIN_TOKEN")


def _is_admin_token(plain: str, admin_token: str | None) -> bool:
    return bool(admin_token) and hmac.compare_digest(plain.encode(), str(admin_token).encode())


async def resolve_token(session: AsyncSession, plain: str, admin_token: str | None) -> Principal | None:
    """The principal behind a plain token, or None when it is unknown or revoked."""
    if _is_admin_token(plain, admin_token):
        return ADMIN_PRINCIPAL
    digest = hash_token(plain)
    row = (await session.execute(select(ApiToken).where(ApiToken.token_hash == digest))).scalar_one_or_none()
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.token_hash, digest):
        return None
    return Principal(Role(row.role), row.id, row.responder_id, row.label, row.agency)


async def _lookup(connection: HTTPConnection, plain: str) -> Principal | None:
    """`resolve_token`, asking PostgreSQL only when this worker's token cache does not know the
    token (`core.token_cache`; revocations reach it through `core.revocation`). A token unknown a
    moment ago, or any token from an address over its failed-lookup limit, is refused without
    asking PostgreSQL (`core.ratelimit.FailedLookups`). Raises `Limited` for the latter."""
    state = connection.app.state
    admin_token = state.settings.admin_token
    if _is_admin_token(plain, admin_token):
        return ADMIN_PRINCIPAL
    digest, address = hash_token(plain), connection.client.host if connection.client else "unknown"
    cache: TokenCache | None = getattr(state, "token_cache", None)
    cached = cache.get(digest) if cache is not None else None
    if cached is not None:
        TOKEN_CACHE_HITS.inc()
        return cached
    failures: FailedLookups | None = getattr(state, "failed_lookups", None)
    if failures is not None:
        refused = failures.refuse_without_lookup(digest, address)
        if isinstance(refused, Limited):
            raise refused
        if refused:
            return None
    epoch = cache.epoch() if cache is not None else 0
    async with state.db.sessions() as session:
        principal = await resolve_token(session, plain, admin_token)
    TOKEN_LOOKUPS.labels("found" if principal else "unknown").inc()
    if principal is not None and cache is not None:
        cache.put(digest, principal, epoch)
    if principal is not None and failures is not None:
        failures.record_valid(digest)
    if principal is None and failures is not None:
        await failures.record_failure(digest, address)  # this one is a 401 whatever the count
    return principal


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


async def authenticate(request: Request) -> Principal:
    """FastAPI dependency: the caller's principal, or 401 with a reason."""
    plain = _bearer(request.headers.get("authorization"))
    if plain is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        principal = await _lookup(request, plain)
    except Limited as exc:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS, str(exc), headers={"Retry-After": str(exc.retry_after_s)}
        ) from None
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "invalid or revoked token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    request.state.principal = principal
    return principal


def require_roles(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """Dependency factory: the caller must hold one of `roles`, else 403 naming them."""
    allowed = frozenset(roles)

    async def check(principal: Principal = Depends(authenticate)) -> Principal:
        if principal.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"role '{principal.role.value}' may not do this; needs one of: {names}",
            )
        return principal

    check.roles = allowed  # type: ignore[attr-defined]  # read by core.openapi (x-roles)
    return check


BEARER_SUBPROTOCOL = "bearer"


def subprotocol_token(websocket: WebSocket) -> str | None:
    """The token a browser offers as subprotocols `["bearer", "<token>"]`, else None.

    Browsers cannot set headers on a websocket, and a token in the URL ends up in access logs;
    `Sec-WebSocket-Protocol` is the one header they can set. The server must then select
    `bearer` (see `ws._admit`), or the browser drops the connection.
    """
    offered = list(websocket.scope.get("subprotocols") or ())
    if len(offered) >= 2 and offered[0] == BEARER_SUBPROTOCOL:
        return str(offered[1])
    return None


async def authenticate_websocket(websocket: WebSocket) -> Principal | None:
    """Principal for a websocket: `Authorization` header, subprotocols `["bearer", token]`, or (old
    clients; the access log is scrubbed) `?token=`."""
    plain = (
        _bearer(websocket.headers.get("authorization"))
        or subprotocol_token(websocket)
        or websocket.query_params.get("token")
    )
    if not plain:
        return None
    try:
        return await _lookup(websocket, plain)
    except Limited:  # an address that guessed too many tokens: refused like a bad token
        return None
