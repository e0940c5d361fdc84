"""The service's VAPID key pair (RFC 8292): given by the settings, or made once and kept in PostgreSQL.

A browser's subscription is bound to the public key the page gave it, so every worker must sign
with the same key, across restarts: the first worker to start inserts a fresh key if the table has
none (`ON CONFLICT DO NOTHING`), then every worker reads the one row. Several workers starting at
once race only on the insert, and the loser's key is simply never used.
"""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from core.db import Database
from dispatch.channels.push_models import VapidKey


def b64url(raw: bytes) -> str:
    """Unpadded base64url, the encoding of every key in Web Push."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """Inverse of `b64url`, padding optional; raises `ValueError` on anything else."""
    if not text or any(c not in _B64URL for c in text.rstrip("=")):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def new_private_key() -> str:
    """A fresh P-256 private key as the base64url of its 32-byte scalar."""
    key = ec.generate_private_key(ec.SECP256R1())
    return b64url(key.private_numbers().private_value.to_bytes(32, "big"))


def vapid_from_text(text: str) -> Vapid02:
    """A signer from a key in any of the forms operators have: raw base64url, DER base64 or PEM."""
    text = text.strip()
    if "-----BEGIN" in text:
        return Vapid02.from_pem(text.encode())
    return Vapid02.from_string(text)


def public_key_of(vapid: Vapid02) -> str:
    """The base64url uncompressed P-256 point the browser passes to `pushManager.subscribe`."""
    point = vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64url(point)


async def stored_private_key(db: Database) -> str:
    """The deployment's key from PostgreSQL, inserting one first if there is none yet."""
    async with db.sessions() as session:
        fresh = insert(VapidKey).values(id=1, private_key=new_private_key())
        await session.execute(fresh.on_conflict_do_nothing(index_elements=["id"]))
        await session.commit()
        return (await session.execute(select(VapidKey.private_key).where(VapidKey.id == 1))).scalar_one()


async def load_vapid(configured: str | None, db: Database) -> Vapid02:
    """The signer: the configured key when there is one, else the one kept in PostgreSQL."""
    return vapid_from_text(configured if configured else await stored_private_key(db))
