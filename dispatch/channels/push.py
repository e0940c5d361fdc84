"""The Web Push channel: wake every device of a responder through its browser vendor's push service.

RFC 8030 (the push protocol), RFC 8291 (`aes128gcm` encryption for the browser's keys, done by
`pywebpush`/`http_ece`) and RFC 8292 (VAPID: we sign a JWT per push-service origin, with `py_vapid`).
Each request says `Urgency: high` (the phone wakes even in power saving), a `TTL` of the alert's
remaining life (a push delivered after the alert ended is noise), and a `Topic` derived from the
alert id, so a resend of the same alert replaces the undelivered one instead of stacking.

A push service answers 201 when it has taken the message; 404/410 mean the subscription is gone for
good (the browser unsubscribed, the app was uninstalled), so the row is deleted; 429 and 5xx are
passing trouble and are retried (429 after its `Retry-After`, 5xx with doubling backoff), a bounded
number of times and never past the alert's expiry. The channel never marks an alert delivered: only
the receipt sent by the service worker does.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import random
import re
import time
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import cast
from urllib.parse import urlsplit

import aiohttp
from py_vapid import Vapid02
from pywebpush import WebPusher, WebPushException
from sqlalchemy import delete, select
from sqlalchemy.exc import DBAPIError

from core.config import Settings
from core.db import Database
from dispatch.channels import push_service
from dispatch.channels.base import Attempt, AttemptResult, Outcome
from dispatch.channels.push_keys import load_vapid, public_key_of
from dispatch.channels.push_models import PushSubscription
from dispatch.frames import alert_frame

log = logging.getLogger(__name__)

ACCEPTED = frozenset({200, 201, 202})
GONE = frozenset({404, 410})
VAPID_LIFE_S = 12 * 3600  # RFC 8292: `exp` at most 24 h ahead; a token is re-signed with 1 h left
VAPID_RENEW_S = 3600
DETAIL_MAX = 200
SUBJECT = re.compile(r"^(mailto:[^@\s]+@[^@\s]+|https://[^\s/]+\S*)$")


def topic_of(alert_id: str) -> str:
    """A `Topic` (RFC 8030 §5.4: at most 32 base64url characters) naming this alert: the 22-character
    base64url of its UUID, or of a hash for any other id."""
    try:
        raw = uuid.UUID(alert_id).bytes
    except ValueError:
        raw = hashlib.sha256(alert_id.encode()).digest()[:16]
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def origin_of(endpoint: str) -> str:
    """The VAPID `aud`: scheme, host and port of the push service."""
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}"


def retry_after_s(value: str | None, default: float) -> float:
    """Seconds from a `Retry-After` header (seconds or an HTTP date); `default` when absent or bad."""
    if not value:
        return default
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return default


@dataclass(frozen=True, slots=True)
class Delivery:
    """What one subscription's push service made of the alert, after any retries."""

    status: int | None  # the last HTTP status; None when the service was not reached
    tries: int
    detail: str = ""
    location: str | None = None  # the push service's message URL (its id for the message)

    @property
    def accepted(self) -> bool:
        return self.status in ACCEPTED

    @property
    def gone(self) -> bool:
        return self.status in GONE


class PushChannel:
    """Sends an alert to every push subscription of its responder (see the module docstring)."""

    name = "push"

    def __init__(self, settings: Settings, db: Database, vapid: Vapid02 | None = None) -> None:
        self.settings = settings
        self.db = db
        self._vapid = vapid
        self._vapid_lock = asyncio.Lock()
        self._tokens: dict[str, tuple[float, dict[str, str]]] = {}  # origin -> (exp, headers)
        self._http: aiohttp.ClientSession | None = None

    async def vapid(self) -> Vapid02:
        """The signing key; loaded at start, or at first use when PostgreSQL was down at start."""
        if self._vapid is None:
            async with self._vapid_lock:
                if self._vapid is None:
                    self._vapid = await load_vapid(self.settings.vapid_private_key, self.db)
        return self._vapid

    async def public_key(self) -> str:
        return public_key_of(await self.vapid())

    async def subscribed(self, responder_ids: Collection[str]) -> set[str]:
        """Who has a device to push to: the ladder logs a skip for the others instead of an
        attempt bound to come back `unreachable` (`service.KnowsSubscribers`)."""
        async with self.db.sessions() as session:
            found = await push_service.with_devices(session, [uuid.UUID(r) for r in responder_ids])
        return {str(r) for r in found}

    def _client(self) -> aiohttp.ClientSession:
        """One pool of connections to the push services (they are few: FCM, Mozilla, Apple...)."""
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.settings.push_connections)
            )
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()

    def _authorization(self, vapid: Vapid02, origin: str) -> dict[str, str]:
        """VAPID headers for one push service, signed once per origin and reused until an hour
        before they expire (an ES256 signature per push would cost more than the encryption)."""
        now = time.time()
        cached = self._tokens.get(origin)
        if cached is not None and cached[0] - now > VAPID_RENEW_S:
            return cached[1]
        exp = int(now) + VAPID_LIFE_S
        headers = vapid.sign({"aud": origin, "exp": exp, "sub": self.settings.vapid_subject})
        self._tokens[origin] = (exp, headers)
        return headers

    async def send(self, attempt: Attempt) -> AttemptResult:
        alert = attempt.alert
        deadline = alert.expires_at.timestamp()
        if deadline <= time.time():
            return AttemptResult(Outcome.unreachable, "the alert expired before the push")
        subscriptions = await self._subscriptions(alert.responder_id)
        if not subscriptions:
            return AttemptResult(Outcome.unreachable, "no push subscription")
        vapid = await self.vapid()
        payload = json.dumps(alert_frame(alert), separators=(",", ":"))
        topic = topic_of(alert.alert_id)
        deliveries = await asyncio.gather(
            *(self._deliver(vapid, s, payload, topic, deadline) for s in subscriptions)
        )
        gone = [s.id for s, d in zip(subscriptions, deliveries, strict=True) if d.gone]
        if gone:
            await self._forget(gone)
        return summarise(deliveries)

    async def _subscriptions(self, responder_id: str) -> Sequence[PushSubscription]:
        async with self.db.sessions() as session:
            query = select(PushSubscription).where(PushSubscription.responder_id == uuid.UUID(responder_id))
            return (await session.execute(query)).scalars().all()

    async def _forget(self, ids: list[uuid.UUID]) -> None:
        """Delete subscriptions the push service said are gone (404/410): never push to them again."""
        try:
            async with self.db.sessions() as session:
                await session.execute(delete(PushSubscription).where(PushSubscription.id.in_(ids)))
                await session.commit()
        except (DBAPIError, OSError):  # they will answer 410 again next time, and be removed then
            log.warning("gone push subscriptions not removed", exc_info=True)

    async def _deliver(
        self, vapid: Vapid02, sub: PushSubscription, payload: str, topic: str, deadline: float
    ) -> Delivery:
        """One subscription: encrypt, sign, post; retry 429/5xx/no answer while tries and life last."""
        info = {"endpoint": sub.endpoint, "keys": {"p256dh": sub.p256dh, "auth": sub.auth}}
        status: int | None = None
        detail = ""
        for tries in range(1, self.settings.push_tries + 1):
            ttl = int(deadline - time.time())
            if ttl <= 0:
                return Delivery(status, tries - 1, f"{detail}; the alert expired".lstrip("; "))
            origin = origin_of(sub.endpoint)
            vapid_headers = self._authorization(vapid, origin)
            headers = {"Urgency": "high", "Topic": topic, **vapid_headers}
            wait = self.settings.push_backoff_s * 2 ** (tries - 1) * random.uniform(0.8, 1.2)
            # no request outlives the alert: a push service answering late is one that did not answer
            timeout = aiohttp.ClientTimeout(total=min(self.settings.push_timeout_s, deadline - time.time()))
            try:
                response = await WebPusher(info, aiohttp_session=self._client()).send_async(
                    payload, headers, ttl=ttl, content_encoding="aes128gcm", timeout=timeout
                )
            except (aiohttp.ClientError, TimeoutError) as exc:
                status, detail = None, f"no answer ({type(exc).__name__})"
            except (WebPushException, ValueError) as exc:  # keys stored before a check existed
                return Delivery(None, tries, f"unusable subscription keys ({exc})"[:80])
            else:
                response = cast(aiohttp.ClientResponse, response)  # a str only when asked for curl
                status, detail = response.status, f"{response.status} {response.reason or ''}".strip()
                if status in ACCEPTED:
                    return Delivery(status, tries, detail, response.headers.get("Location"))
                if status in GONE:
                    return Delivery(status, tries, detail)
                if status == 429:
                    wait = retry_after_s(response.headers.get("Retry-After"), wait)
                elif status < 500:  # 400, 401, 403, 413: the same request will fail the same way
                    if status in (401, 403):  # the next alert signs afresh (a rotated key, a clock jump)
                        self._tokens.pop(origin, None)
                    return Delivery(status, tries, detail)
            if tries == self.settings.push_tries:
                break
            if time.time() + wait >= deadline:
                return Delivery(status, tries, f"{detail}; a retry would land after the alert expires")
            await asyncio.sleep(wait)
        return Delivery(status, self.settings.push_tries, f"{detail} after {self.settings.push_tries} tries")


def summarise(deliveries: Sequence[Delivery]) -> AttemptResult:
    """One outcome for the alert: sent when any push service took it, unreachable when every
    subscription turned out gone, else the providers' errors in a few words."""
    accepted = [d for d in deliveries if d.accepted]
    gone = sum(d.gone for d in deliveries)
    removed = f"; {gone} gone subscription(s) removed" if gone else ""
    if accepted:
        detail = f"{len(accepted)} of {len(deliveries)} push service(s) accepted{removed}"
        return AttemptResult(Outcome.sent, detail[:DETAIL_MAX], accepted[0].location)
    if gone == len(deliveries):
        return AttemptResult(Outcome.unreachable, f"every push subscription was gone (404/410){removed}")
    failures = sorted({d.detail for d in deliveries if not d.gone})
    return AttemptResult(Outcome.provider_error, ("; ".join(failures) + removed)[:DETAIL_MAX])


async def build_push(settings: Settings, db: Database) -> PushChannel:
    """The push channel of a worker; its VAPID key comes from the settings or PostgreSQL (made at
    the first start). With PostgreSQL down at start the key is read at first use instead."""
    if not SUBJECT.match(settings.vapid_subject):
        raise ValueError("DISPATCH_VAPID_SUBJECT: must be a mailto: address or an https:// URL (RFC 8292)")
    channel = PushChannel(settings, db)
    try:
        await channel.vapid()
    except (DBAPIError, OSError):
        log.warning("VAPID key not loaded at start: PostgreSQL unreachable; it is read at first use")
    return channel
