"""A local push service playing a browser vendor's (FCM, Mozilla autopush), and the browsers behind it.

It checks what a real one checks (RFC 8030 headers; RFC 8292 VAPID: an ES256 JWT in
`Authorization: vapid t=<jwt>, k=<key>`, signed by `k`, `k` the key the subscription was made
with, `aud` its own origin, `exp` in the future and at most 24 h ahead) and then does what the
browser would (RFC 8291): decrypts the `aes128gcm` body with the subscription's private key and
auth secret, which each fake browser subscription makes for itself like a browser does (a P-256
key pair and 16 random bytes). Each subscription answers 201 unless the test queued other answers
(404, 410, 429 with `Retry-After`, 500, ...).

It runs in a thread with its own event loop, as an outside service would, so sync and async tests
and benchmarks can all use it; every request is recorded, accepted or not, with its arrival time.
"""

from __future__ import annotations

import asyncio
import base64
import json
import multiprocessing
import queue
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import http_ece
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from multidict import CIMultiDict
from py_vapid import jwt as vapid_jwt

from tests.support.server import free_port

MAX_EXP_AHEAD_S = 24 * 3600
URGENCIES = frozenset({"very-low", "low", "normal", "high"})
TOPIC_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Browser:
    """One browser's push subscription: its endpoint and the keys only the browser holds."""

    token: str
    endpoint: str
    application_server_key: str  # the VAPID public key the page subscribed with
    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: secrets.token_bytes(16))
    answers: deque[tuple[int, dict[str, str]]] = field(default_factory=deque)

    @property
    def p256dh(self) -> str:
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return b64url(point)

    def subscription(self) -> dict[str, Any]:
        """What `PushSubscription.toJSON()` gives the page."""
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": self.p256dh, "auth": b64url(self.auth)},
        }


@dataclass(frozen=True)
class Request:
    """One request that reached the service: what it answered, and why when it refused."""

    token: str
    status: int
    reason: str
    headers: CIMultiDict[str]
    claims: dict[str, Any] | None
    payload: dict[str, Any] | None  # the decrypted JSON (None when refused before decrypting)
    arrived: float  # time.time() when the request arrived (comparable across processes)


class PushService:
    """`with PushService() as service:`; `service.subscribe(public_key)` makes a fake browser."""

    def __init__(self, on_request: Callable[[Request], None] | None = None) -> None:
        self.on_request = on_request  # called in the service's thread with each request, as recorded
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.browsers: dict[str, Browser] = {}
        self.requests: list[Request] = []
        self.pending: dict[str, dict[str, dict[str, Any]]] = {}  # token -> topic -> last payload
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="push-service")
        self._runner: web.AppRunner | None = None

    # --- the test's side ------------------------------------------------------------------------
    def subscribe(self, application_server_key: str) -> Browser:
        token = secrets.token_urlsafe(16)
        browser = Browser(token, f"{self.origin}/push/{token}", application_server_key)
        self.browsers[token] = browser
        return browser

    def answer(self, browser: Browser, *statuses: int, retry_after: str | None = None) -> None:
        """Queue the next answers for this subscription (then 201 again)."""
        for code in statuses:
            browser.answers.append(
                (code, {"Retry-After": retry_after} if retry_after and code == 429 else {})
            )

    def received(self, browser: Browser | None = None) -> list[Request]:
        """Requests accepted (201), optionally for one browser."""
        return [
            r
            for r in list(self.requests)
            if r.status == 201 and (browser is None or r.token == browser.token)
        ]

    def of(self, browser: Browser) -> list[Request]:
        return [r for r in list(self.requests) if r.token == browser.token]

    # --- lifecycle --------------------------------------------------------------------------------
    def __enter__(self) -> PushService:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *_: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/push/{token}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # --- the push service's side -----------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.Response:
        arrived = time.time()
        token = request.match_info["token"]
        body = await request.read()
        headers = CIMultiDict(request.headers)  # header names are case-insensitive
        browser = self.browsers.get(token)
        if browser is None:
            return self._record(token, 404, "no such subscription", headers, arrived)
        status, reason, claims, payload = self.check(browser, request.headers, body)
        if status != 201:
            return self._record(token, status, reason, headers, arrived, claims)
        code, extra = browser.answers.popleft() if browser.answers else (201, {})
        if code == 201:
            topic = request.headers.get("Topic") or secrets.token_hex(4)
            self.pending.setdefault(token, {})[topic] = payload  # a message with the same topic replaces
            extra = {"Location": f"{self.origin}/message/{secrets.token_urlsafe(8)}"}
        return self._record(
            token, code, "as told" if code != 201 else "", headers, arrived, claims, payload, extra
        )

    def _record(
        self,
        token: str,
        status: int,
        reason: str,
        headers: CIMultiDict[str],
        arrived: float,
        claims: dict[str, Any] | None = None,
        payload: dict[str, Any] | None = None,
        extra: dict[str, str] | None = None,
    ) -> web.Response:
        request = Request(token, status, reason, headers, claims, payload, arrived)
        self.requests.append(request)
        if self.on_request is not None:
            self.on_request(request)
        return web.Response(status=status, text=reason, headers=extra or {})

    def check(
        self, browser: Browser, headers: Any, body: bytes
    ) -> tuple[int, str, dict[str, Any] | None, dict[str, Any] | None]:
        """(status, reason, claims, payload): 201 with the decrypted payload, or the refusal."""
        claims, problem = self.check_vapid(browser, headers.get("Authorization", ""))
        if problem is not None:
            return (401 if claims is None else 403), problem, claims, None
        ttl = headers.get("TTL", "")
        if not ttl.isdigit():
            return 400, "TTL header missing or not a number", claims, None
        if headers.get("Urgency", "normal") not in URGENCIES:
            return 400, "bad Urgency", claims, None
        topic = headers.get("Topic")
        if topic is not None and (len(topic) > 32 or not set(topic) <= TOPIC_CHARS):
            return 400, "Topic must be at most 32 base64url characters", claims, None
        if headers.get("Content-Encoding") != "aes128gcm":
            return 415, "Content-Encoding must be aes128gcm", claims, None
        try:
            plain = http_ece.decrypt(
                body, private_key=browser.private_key, auth_secret=browser.auth, version="aes128gcm"
            )
            payload = json.loads(plain)
        except Exception as exc:  # what the browser would drop: undecryptable or not JSON
            return 400, f"cannot decrypt the body: {exc}", claims, None
        return 201, "", claims, payload

    def check_vapid(self, browser: Browser, authorization: str) -> tuple[dict[str, Any] | None, str | None]:
        """(claims, problem): claims None when the token is missing or its signature is bad."""
        scheme, _, rest = authorization.partition(" ")
        if scheme.lower() != "vapid":
            return None, "Authorization must be 'vapid t=..., k=...'"
        parts = dict(p.strip().split("=", 1) for p in rest.split(",") if "=" in p)
        token, key = parts.get("t", ""), parts.get("k", "")
        try:
            header = json.loads(b64url_decode(token.split(".", 1)[0]))
            if header.get("alg") != "ES256":
                return None, "JWT alg must be ES256"
            claims = vapid_jwt.decode(token, key)
        except (InvalidSignature, ValueError):
            return None, "JWT signature does not verify against k"
        if key != browser.application_server_key:
            return claims, "k is not the key this subscription was made with"
        # …and against the published key itself (a k that merely matches as text proves nothing).
        try:
            vapid_jwt.decode(token, browser.application_server_key)
        except InvalidSignature:
            return claims, "JWT signature does not verify against the subscription's key"
        if claims.get("aud") != self.origin:
            return claims, f"aud {claims.get('aud')!r} is not {self.origin}"
        exp, now = claims.get("exp"), time.time()
        if not isinstance(exp, int) or not now < exp <= now + MAX_EXP_AHEAD_S:
            return claims, "exp must be in the future and at most 24 h ahead"
        if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
            return claims, "sub must be a mailto: or https: contact"
        return claims, None


class PushServiceProcess:
    """The local push service in a process of its own, for benchmarks: a real push service does not
    share the measured process's interpreter lock. `subscribe` makes a fake browser there and gives
    its `PushSubscription` JSON; `arrivals()` drains (alert_id, status, arrived) of new requests."""

    def __enter__(self) -> PushServiceProcess:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._arrivals: multiprocessing.Queue[tuple[str | None, int, float]] = context.Queue()
        self._process = context.Process(target=_serve, args=(child, self._arrivals), daemon=True)
        self._process.start()
        self.origin: str = self._conn.recv()
        return self

    def __exit__(self, *_: object) -> None:
        self._conn.send(("stop",))
        self._process.join(10)

    def subscribe(self, application_server_key: str) -> dict[str, Any]:
        self._conn.send(("subscribe", application_server_key))
        return self._conn.recv()

    def arrivals(self) -> list[tuple[str | None, int, float]]:
        out = []
        while True:
            try:
                out.append(self._arrivals.get_nowait())
            except queue.Empty:
                return out


def _serve(conn: Any, arrivals: Any) -> None:
    def note(request: Request) -> None:
        arrivals.put(
            (request.payload.get("alert_id") if request.payload else None, request.status, request.arrived)
        )

    with PushService(on_request=note) as service:
        conn.send(service.origin)
        while (command := conn.recv())[0] != "stop":
            conn.send(service.subscribe(command[1]).subscription())
