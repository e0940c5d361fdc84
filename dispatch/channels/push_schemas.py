"""Bodies of the Web Push endpoints: the browser's `PushSubscription.toJSON()` as it comes.

The keys are checked where they enter: a `p256dh` that is not a point on P-256, or an `auth` that
is not 16 bytes, could never be encrypted for, and would only surface as a failed alert later.
"""

from __future__ import annotations

import ipaddress
import uuid
from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import BaseModel, Field, field_validator

from core.inputs import InputModel, Text
from dispatch.channels.push_keys import b64url_decode

ENDPOINT_MAX = 2048
LOOPBACK_NAMES = frozenset({"localhost"})


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def endpoint_problem(endpoint: str, allow_http_loopback: bool) -> str | None:
    """Why a push endpoint is refused, or None: `https://` with a host, or `http://` to loopback
    when the setting allows it (a local push service in tests)."""
    parts = urlsplit(endpoint)
    if not parts.hostname:
        return "must be an absolute https:// URL"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and allow_http_loopback and is_loopback(parts.hostname):
        return None
    return "must be an https:// URL"


def _p256_point(value: str) -> str:
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(value))
    except ValueError:
        raise ValueError("must be the base64url of an uncompressed P-256 public key (65 bytes)") from None
    return value


def _auth_secret(value: str) -> str:
    try:
        raw = b64url_decode(value)
    except ValueError:
        raw = b""
    if len(raw) != 16:
        raise ValueError("must be the base64url of 16 random bytes")
    return value


class SubscriptionKeys(InputModel):
    p256dh: Annotated[Text, Field(min_length=1, max_length=100)]
    auth: Annotated[Text, Field(min_length=1, max_length=40)]

    _p256dh = field_validator("p256dh")(_p256_point)
    _auth = field_validator("auth")(_auth_secret)


class PushSubscriptionIn(InputModel):
    """`PushSubscription.toJSON()`: the push service's endpoint and the browser's keys."""

    endpoint: Annotated[Text, Field(min_length=1, max_length=ENDPOINT_MAX)]
    expirationTime: int | None = Field(None, description="ms since the epoch; browsers send null")
    keys: SubscriptionKeys


class PushSubscriptionCreated(BaseModel):
    id: uuid.UUID


class PushSubscriptionOut(BaseModel):
    """A stored subscription; the auth secret is not given back (it only serves to encrypt)."""

    id: uuid.UUID
    endpoint: str
    p256dh: str
    created_at: datetime
    updated_at: datetime


class VapidPublicKey(BaseModel):
    public_key: str = Field(description="base64url uncompressed P-256 point: `applicationServerKey`")
