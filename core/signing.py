"""Signed webhooks: the `X-Rescue-Signature` header on every request we send to a receiver that
is not ours (the SMS/voice webhook gateway now, an emergency centre's CAD callbacks later).

`t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`: the receiver recomputes the
HMAC over the exact bytes it read, so a body changed on the way fails, and it rejects an old `t`, so
a request recorded on the way cannot be played again later. The scheme is Stripe's, which gateway
developers already know; `verify` is here too, for stand-ins in tests and for our own receivers.
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "X-Rescue-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
TOLERANCE_S = 300  # how old a `t` a receiver accepts (and how far in the future, for clock skew)


class SignatureError(ValueError):
    """A signature that does not prove the request came from the holder of the secret, now."""


def _mac(secret: str, t: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, t: int | None = None) -> str:
    """The header value for `body` sent at `t` (default now)."""
    t = int(time.time()) if t is None else t
    return f"t={t},v1={_mac(secret, t, body)}"


def verify(
    secret: str, body: bytes, header: str | None, *, now: float | None = None, tolerance_s: int = TOLERANCE_S
) -> int:
    """Check a received header against the raw body; returns its `t`, or raises `SignatureError`.

    Several `v1=` entries are allowed (a sender rotating its secret signs with both), one must match.
    """
    if not header:
        raise SignatureError(f"{HEADER} missing")
    parts = [p.strip().partition("=") for p in header.split(",")]
    stamps = [v for k, _, v in parts if k == "t"]
    macs = [v for k, _, v in parts if k == "v1"]
    if len(stamps) != 1 or not stamps[0].isdigit() or not macs:
        raise SignatureError(f"{HEADER} malformed: want t=<unix seconds>,v1=<hex>")
    t = int(stamps[0])
    now = time.time() if now is None else now
    if abs(now - t) > tolerance_s:
        raise SignatureError(f"{HEADER} t is {now - t:.0f} s off (more than {tolerance_s} s)")
    expected = _mac(secret, t, body)
    if not any(hmac.compare_digest(expected, m) for m in macs):
        raise SignatureError(f"{HEADER} does not match the body")
    return t
