"""A centre's subscriptions: where its feedback goes, checked before we ever POST there.

We send requests to whatever URL a centre names, so the URL is checked like any address that
makes us call out: `http` or `https`, a host, no user and password in it, and (unless
`DISPATCH_CAD_ALLOW_PRIVATE_URLS`, for tests and for a centre on our own network) no loopback,
private, link-local or otherwise internal IP literal and no `localhost`. Host names are not
resolved here: a public name that resolves inward is the network's egress rules' job.
"""

from __future__ import annotations

import ipaddress
import uuid
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from cad.outbox_models import CadSubscription

INTERNAL_NAMES = ("localhost", "localhost.localdomain")


def url_problem(url: str, allow_private: bool) -> str | None:
    """Why `url` may not receive feedback, or None when it may."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # raises on a port that is not a number in range
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return "must be an http:// or https:// URL"
    if not parts.hostname:
        return "must name a host"
    if parts.username or parts.password:
        return "must not carry a user or password (the signature authenticates us)"
    if allow_private:
        return None
    host = parts.hostname.lower().rstrip(".")
    if host in INTERNAL_NAMES or host.endswith(".localhost"):
        return "must not name this machine (set DISPATCH_CAD_ALLOW_PRIVATE_URLS for a local receiver)"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if not address.is_global:
        return "must not be a private, loopback or link-local address (see DISPATCH_CAD_ALLOW_PRIVATE_URLS)"
    return None


async def subscribe(session: AsyncSession, agency: str, url: str, secret: str) -> CadSubscription:
    row = CadSubscription(agency=agency, url=url, secret=secret)
    session.add(row)
    await session.commit()
    return row


async def of_agency(session: AsyncSession, agency: str) -> list[CadSubscription]:
    query = (
        select(CadSubscription).where(CadSubscription.agency == agency).order_by(CadSubscription.created_at)
    )
    return list((await session.execute(query)).scalars())


async def unsubscribe(session: AsyncSession, agency: str, subscription_id: uuid.UUID) -> bool:
    """Drop one of the agency's own subscriptions (and its undelivered feedback); False if none."""
    result = await session.execute(
        delete(CadSubscription)
        .where(CadSubscription.id == subscription_id, CadSubscription.agency == agency)
        .returning(CadSubscription.id)
    )
    await session.commit()
    return result.first() is not None
