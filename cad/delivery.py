"""Delivering the outbox to the centres: at least once, in order per incident, with backoff.

Each worker process runs `run_delivery`. One round claims the due rows that head their stream (no
earlier `seq` of the same subscription and incident is undelivered) with `FOR UPDATE SKIP LOCKED`,
so several workers share the work without sending one row twice and without ever sending `seq`
n+1 before n is delivered; the rows of one round are of different streams and go out at once. A
row's lock is held while it is POSTed (bounded by the timeout), so a worker that dies mid-POST
releases it and another sends it again: at least once, and the `Idempotency-Key` (the same on every
try of a row, and on a re-send) lets the centre drop the duplicate.

Any answer but a 2xx, a timeout or a refused connection is tried again after a doubling wait (up
to a cap); after `cad_max_attempts` the row is `failed`, the stream waits behind it, and an admin
sees it (`GET /v1/cad/deliveries?status=failed`) and can re-send it once the centre is fixed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from prometheus_client import Counter
from sqlalchemy import exists, func, select
from sqlalchemy.orm import aliased

from cad.outbox_models import CadOutbox, CadSubscription
from core import signing
from core.config import Settings
from core.db import Database

log = logging.getLogger(__name__)
FEEDBACK_SENT = Counter(
    "cad_feedback_deliveries_total",
    "Feedback POSTs to emergency centres, by outcome (delivered, retry, failed)",
    ["outcome"],
)


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    timeout_s: float = 5.0
    backoff_s: float = 1.0
    backoff_max_s: float = 300.0
    max_attempts: int = 10
    batch: int = 100

    @classmethod
    def from_settings(cls, s: Settings) -> DeliveryPolicy:
        return cls(s.cad_timeout_s, s.cad_backoff_s, s.cad_backoff_max_s, s.cad_max_attempts, s.cad_batch)

    def wait_s(self, attempts: int) -> float:
        """The wait after the `attempts`-th failed try: doubling from `backoff_s`, at most the cap."""
        return float(min(self.backoff_s * 2 ** max(attempts - 1, 0), self.backoff_max_s))


def idempotency_key(row: CadOutbox) -> str:
    """The same for every try of one feedback event (and its re-sends): the centre de-duplicates."""
    return f"{row.subscription_id}:{row.incident_id}:{row.seq}"


def encode(body: dict[str, object]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


async def post(
    client: httpx.AsyncClient, url: str, secret: str, row: CadOutbox, timeout_s: float
) -> str | None:
    """POST one feedback event, signed; None when the centre took it (2xx), else why not."""
    body = encode(row.body)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        signing.HEADER: signing.sign(secret, body),  # a fresh t on each try
        signing.IDEMPOTENCY_HEADER: idempotency_key(row),
    }
    try:
        r = await client.post(url, content=body, headers=headers, timeout=timeout_s)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__
    return None if r.is_success else f"HTTP {r.status_code}: {r.text[:200]}"


def _due(limit: int) -> object:
    """The due rows that head their stream, oldest first, locked (others' locks skipped)."""
    earlier = aliased(CadOutbox)
    waiting_behind = exists().where(
        earlier.subscription_id == CadOutbox.subscription_id,
        earlier.incident_id == CadOutbox.incident_id,
        earlier.seq < CadOutbox.seq,
        earlier.status != "delivered",
    )
    return (
        select(CadOutbox, CadSubscription.url, CadSubscription.secret)
        .join(CadSubscription, CadSubscription.id == CadOutbox.subscription_id)
        .where(CadOutbox.status == "pending", CadOutbox.next_try_at <= func.now(), ~waiting_behind)
        .order_by(CadOutbox.id)
        .limit(limit)
        .with_for_update(of=CadOutbox, skip_locked=True)
    )


async def deliver_due(db: Database, client: httpx.AsyncClient, policy: DeliveryPolicy) -> int:
    """One round: send what is due and heads its stream; returns how many rows were tried."""
    async with db.sessions() as session:
        claimed = (await session.execute(_due(policy.batch))).all()  # type: ignore[call-overload]
        if not claimed:
            await session.commit()
            return 0
        problems = await asyncio.gather(
            *(post(client, url, secret, row, policy.timeout_s) for row, url, secret in claimed)
        )
        now = datetime.now(UTC)
        for (row, _, _), problem in zip(claimed, problems, strict=True):
            row.attempts += 1
            if problem is None:
                row.status, row.delivered_at, row.last_error = "delivered", now, None
                FEEDBACK_SENT.labels("delivered").inc()
            elif row.attempts >= policy.max_attempts:
                row.status, row.last_error = "failed", problem
                FEEDBACK_SENT.labels("failed").inc()
                log.warning("feedback %s given up after %d tries: %s", row.id, row.attempts, problem)
            else:
                row.last_error = problem
                row.next_try_at = now + timedelta(seconds=policy.wait_s(row.attempts))
                FEEDBACK_SENT.labels("retry").inc()
        await session.commit()
        return len(claimed)


async def run_delivery(db: Database, settings: Settings) -> None:
    """The worker's delivery loop: a round at once after a busy one (the next `seq` of each stream
    is due now), otherwise every `cad_poll_s`."""
    policy = DeliveryPolicy.from_settings(settings)
    async with httpx.AsyncClient(timeout=policy.timeout_s) as client:
        while True:
            try:
                tried = await deliver_due(db, client, policy)
            except Exception:  # a store outage: the rows stay pending, the next round tries again
                log.warning("feedback delivery round failed", exc_info=True)
                tried = 0
            if not tried:
                await asyncio.sleep(settings.cad_poll_s)
