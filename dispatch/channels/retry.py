"""Bounded retries of a provider call, never past the alert's expiry.

A 5xx, a timeout or a dropped connection is usually passing, and an SMS that arrives two seconds
later still helps; one that arrives after the alert expired only misleads. So: a few tries with a
doubling wait, each request's timeout cut to the alert's remaining life, and no wait that would
end past it. A retry may make the provider send twice (SendSms has no idempotency key; the webhook
has one): for an alert, a duplicate beats none.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from dispatch.channels.base import AttemptResult, Outcome


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int = 2  # further tries after the first
    backoff_s: float = 0.5  # wait before the first retry, doubled for each further one
    timeout_s: float = 5.0  # one request's timeout (cut to the alert's remaining life)


class TryAgain(Exception):
    """The provider's answer says the same request may succeed later (5xx, its internal error)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _now() -> datetime:
    return datetime.now(UTC)


async def with_retries(
    call: Callable[[float], Awaitable[AttemptResult]],
    policy: RetryPolicy,
    expires_at: datetime,
    *,
    now: Callable[[], datetime] = _now,
) -> AttemptResult:
    """`call(timeout_s)` until it returns, raises something other than `TryAgain` or a transport
    error, or the tries or the alert's life run out; then a `provider_error` naming the last cause."""
    detail = "alert expired before the first try"
    tries = 0
    for attempt in range(policy.retries + 1):
        remaining = (expires_at - now()).total_seconds()
        if remaining <= 0:
            break
        tries += 1
        try:
            return await call(min(policy.timeout_s, remaining))
        except TryAgain as exc:
            detail = exc.detail
        except httpx.TimeoutException:
            detail = "timeout"
        except httpx.TransportError as exc:
            detail = f"connection failed: {type(exc).__name__}"
        delay = policy.backoff_s * 2**attempt
        if attempt == policy.retries or (expires_at - now()).total_seconds() <= delay:
            break
        await asyncio.sleep(delay)
    return AttemptResult(Outcome.provider_error, f"{detail} ({tries} {'try' if tries == 1 else 'tries'})")
