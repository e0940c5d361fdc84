"""Rate limits per client address and per token, counted in Redis so every worker shares them.

The `limits` library keeps fixed-window counters in Redis (one Lua `INCR`+`EXPIRE` per check, on
one key); a request over a limit gets 429 with `Retry-After`. On a single server it goes through the
app's own redis-py pool; on a cluster through a cluster client of its own (`limits` cannot take
ours), each counter on the shard of its key. Both
checks of a request run concurrently, so a request pays one Redis round trip (~0.1 ms) whatever
its size: a 5,000-fix gateway batch pays it once. When Redis does not answer the check is skipped
(fail open): dispatch must keep working without Redis, and the limits only guard capacity. The
same on a single server and on a cluster, at a cold start too (workers up before Redis, the
cluster client not knowing the slots yet): each check fails open, and counting starts with the
first check after Redis answers (tested).

Guessed tokens are refused cheaply (`FailedLookups`): a token PostgreSQL did not know is
remembered for a minute in the worker, and an address whose failed lookups pass
`auth_failures_per_address` (counted in Redis across workers) gets 429 without any lookup until
its window ends. A flood of 2,000 wrong tokens costs about `auth_failures_per_address` lookups.

A token that was valid lately in this worker is never refused for its address: neither by the
address's failed lookups nor by the per-address limit (it is counted per token). Phones reach us
through carrier-grade NAT, thousands behind one address, and a dispatch centre sits behind one
gateway: one stale phone retrying with a revoked token, or one busy neighbour, must not lock every
valid responder and dispatcher at that address out of dispatch. Revocation is unaffected: whether
a token is valid is for PostgreSQL and the token cache (`core.token_cache`), which revocations
reach at once; this memory only spares lookups and limits.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import time
from collections import OrderedDict
from urllib.parse import urlsplit

from limits import RateLimitItem, parse
from limits.aio.storage import RedisClusterStorage, RedisStorage
from limits.aio.strategies import FixedWindowRateLimiter
from redis.asyncio import RedisCluster
from starlette.types import ASGIApp, Receive, Scope, Send

from core.metrics import AUTH_REJECTED_CHEAPLY, RATE_LIMIT_ERRORS, RATE_LIMITED
from core.redis import COMMAND_TIMEOUT_S, Keys, RedisClient

log = logging.getLogger(__name__)
CHECK_TIMEOUT_S = 0.5  # a hung Redis must not hold requests: past this the check is skipped
UNLIMITED_PATHS = frozenset({"/healthz"})  # load balancers' probes


class Limited(Exception):
    """Over a limit: the name of the limit and the seconds until its window ends."""

    def __init__(self, limit: str, retry_after_s: int) -> None:
        super().__init__(f"rate limit exceeded: {limit}; retry after {retry_after_s} s")
        self.limit, self.retry_after_s = limit, retry_after_s


def counter_storage(redis: RedisClient, redis_url: str, prefix: str) -> RedisStorage:
    """Where `limits` keeps the counters: over our pool on a single server; on a cluster, a
    cluster client of its own seeded by the node in `redis_url` (same credentials)."""
    if not isinstance(redis, RedisCluster):
        return RedisStorage(
            "async+redis://",
            implementation="redispy",
            key_prefix=prefix,
            connection_pool=redis.connection_pool,
        )
    parts = urlsplit(redis_url)
    tls: dict[str, bool] = {"ssl": True} if parts.scheme == "rediss" else {}
    return RedisClusterStorage(
        f"async+redis+cluster://{parts.netloc}",
        implementation="redispy",
        key_prefix=prefix,
        socket_connect_timeout=COMMAND_TIMEOUT_S,
        socket_timeout=COMMAND_TIMEOUT_S,
        **tls,
    )


class RateLimits:
    """The limits of the settings over a Redis store shared by all workers."""

    def __init__(
        self,
        redis: RedisClient,
        keys: Keys,
        *,
        redis_url: str,
        per_address: str,
        per_token: str,
        auth_failures: str,
    ) -> None:
        self.storage = counter_storage(redis, redis_url, keys("limits"))
        self.limiter = FixedWindowRateLimiter(self.storage)
        self.per_address: RateLimitItem = parse(per_address)
        self.per_token: RateLimitItem = parse(per_token)
        self.auth_failures: RateLimitItem = parse(auth_failures)

    async def aclose(self) -> None:
        """Close the cluster client that `limits` made (our own pool is closed with the app)."""
        client = self.storage.bridge.get_connection()
        if isinstance(client, RedisCluster):
            await client.aclose()

    async def _hit(self, name: str, item: RateLimitItem, key: str) -> Limited | None:
        if await self.limiter.hit(item, name, key):
            return None
        stats = await self.limiter.get_window_stats(item, name, key)
        return Limited(f"{item} per {name}", max(1, math.ceil(stats.reset_time - time.time())))

    async def check(
        self, address: str, token_key: str | None, *, token_valid: bool = False
    ) -> Limited | None:
        """Count one request; the first limit it exceeds, or None (also when Redis fails). A token
        known to be valid is counted per token only, not against its (shared) address."""
        checks = (
            [] if token_valid and token_key is not None else [self._hit("address", self.per_address, address)]
        )
        if token_key is not None:
            checks.append(self._hit("token", self.per_token, token_key))
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                results = await asyncio.gather(*checks)
        except Exception as exc:  # Redis down or slow: let the request through
            RATE_LIMIT_ERRORS.inc()
            log.debug("rate limit not checked: %s", exc)
            return None
        return next((r for r in results if r is not None), None)

    async def failed_lookup(self, address: str) -> Limited | None:
        """Count a lookup that found no token; a Limited when the address is now over its limit."""
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                return await self._hit("auth_failures", self.auth_failures, address)
        except Exception:
            RATE_LIMIT_ERRORS.inc()
            return None


class FailedLookups:
    """This worker's memory of unknown tokens, of addresses that guessed too many, and of tokens
    that were valid lately (exempt from their address's limits)."""

    def __init__(
        self,
        limits: RateLimits | None,
        remember_s: float = 60.0,
        capacity: int = 10_000,
        valid_remember_s: float = 3600.0,
        valid_capacity: int = 200_000,
    ) -> None:
        self.limits, self.remember_s, self.capacity = limits, remember_s, capacity
        self.valid_remember_s, self.valid_capacity = valid_remember_s, valid_capacity
        self.unknown: OrderedDict[str, float] = OrderedDict()  # token hash -> until (monotonic)
        self.valid: OrderedDict[str, float] = OrderedDict()  # token hash -> until (monotonic)
        self.blocked: dict[str, tuple[float, str]] = {}  # address -> (until, limit)

    def known_valid(self, digest: str) -> bool:
        """True when this token was found valid within `valid_remember_s`."""
        until = self.valid.get(digest)
        return until is not None and until > time.monotonic()

    def record_valid(self, digest: str) -> None:
        self.valid[digest] = time.monotonic() + self.valid_remember_s
        self.valid.move_to_end(digest)
        while len(self.valid) > self.valid_capacity:
            self.valid.popitem(last=False)

    def refuse_without_lookup(self, digest: str, address: str) -> Limited | bool:
        """Limited when the address is blocked (unless the token was valid lately), True when the
        token was unknown a moment ago."""
        now = time.monotonic()
        blocked = None if self.known_valid(digest) else self.blocked.get(address)
        if blocked is not None:
            if blocked[0] > now:
                AUTH_REJECTED_CHEAPLY.labels("address_limited").inc()
                return Limited(blocked[1], max(1, math.ceil(blocked[0] - now)))
            del self.blocked[address]
        until = self.unknown.get(digest)
        if until is not None:
            if until > now:
                AUTH_REJECTED_CHEAPLY.labels("known_unknown").inc()
                return True
            del self.unknown[digest]
        return False

    async def record_failure(self, digest: str, address: str) -> Limited | None:
        """Remember the unknown token; count the failure for the address (Limited when over)."""
        self.valid.pop(digest, None)  # revoked since
        self.unknown[digest] = time.monotonic() + self.remember_s
        self.unknown.move_to_end(digest)
        while len(self.unknown) > self.capacity:
            self.unknown.popitem(last=False)
        if self.limits is None:
            return None
        limited = await self.limits.failed_lookup(address)
        if limited is not None:
            self.blocked[address] = (time.monotonic() + limited.retry_after_s, limited.limit)
        return limited


def token_key(scope: Scope) -> str | None:
    """A key for the bearer token of an HTTP request: its SHA-256, as `core.auth.hash_token` makes
    it (Redis never sees a token)."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, plain = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and plain.strip():
                return hashlib.sha256(plain.strip().encode()).hexdigest()
    return None


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


async def send_limited(send: Send, limited: Limited) -> None:
    """429 with `Retry-After` and the uniform error body naming the limit."""
    body = json.dumps({"detail": str(limited), "errors": [{"field": "rate", "rule": str(limited)}]}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"application/json"),
                (b"retry-after", str(limited.retry_after_s).encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RateLimitMiddleware:
    """Checks every request (and socket handshake) against `app.state.rate_limits` before the app.

    Plain ASGI, like `MetricsMiddleware`: no extra task or body copy per request. The limits are
    built in the lifespan (they need Redis); before that, and when disabled, nothing is checked.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limits: RateLimits | None = None
        if scope["type"] in ("http", "websocket") and scope.get("path") not in UNLIMITED_PATHS:
            limits = getattr(scope["app"].state, "rate_limits", None)
        if limits is None:
            await self.app(scope, receive, send)
            return
        is_http = scope["type"] == "http"
        key = token_key(scope) if is_http else None
        memory: FailedLookups | None = getattr(scope["app"].state, "failed_lookups", None)
        valid = key is not None and memory is not None and memory.known_valid(key)
        limited = await limits.check(client_address(scope), key, token_valid=valid)
        if limited is None:
            await self.app(scope, receive, send)
            return
        RATE_LIMITED.labels(limited.limit).inc()
        if is_http:
            await send_limited(send, limited)
        else:  # refuse the handshake (the client sees HTTP 403)
            await send({"type": "websocket.close", "code": 1013, "reason": str(limited)})
