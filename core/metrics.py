"""Prometheus metrics: request counts and latency by route template, garbage-collection pauses, and
the `/metrics` body."""

from __future__ import annotations

import gc
import logging
import time

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter("http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


class MetricsMiddleware:
    """Counts and times every request under its route template (not the raw path: ids would explode).

    Plain ASGI: Starlette's `BaseHTTPMiddleware` ran each request in an extra task and passed the
    body through memory streams, a cost every 500 KB gateway batch paid.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500  # 500 unless the app answers

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            template = getattr(scope.get("route"), "path", "unmatched")  # set by the router on a match
            LATENCY.labels(scope["method"], template).observe(time.perf_counter() - start)
            REQUESTS.labels(scope["method"], template, str(status)).inc()


def metrics_response() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


GC_PAUSE = Histogram(
    "python_gc_pause_seconds",
    "Time the cyclic garbage collector stopped the process, by generation",
    ["generation"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
_gc_started: list[float] = []


def _time_gc(phase: str, info: dict[str, int]) -> None:
    """A collection stops every request and socket of the worker: time it, and say so when long."""
    if phase == "start":
        _gc_started[:] = [time.perf_counter()]
    elif _gc_started:
        pause = time.perf_counter() - _gc_started[0]
        GC_PAUSE.labels(str(info["generation"])).observe(pause)
        if pause > 0.1:
            logging.getLogger(__name__).warning(
                "garbage collection (generation %d) paused the worker for %d ms",
                info["generation"],
                round(pause * 1e3),
            )


def watch_gc() -> None:
    """Time every collection of the cyclic garbage collector (once per process)."""
    if _time_gc not in gc.callbacks:
        gc.callbacks.append(_time_gc)


SOCKETS_CLOSED_REVOKED = Counter(
    "ws_sockets_closed_revoked_total", "Sockets closed because their token was revoked"
)
TOKEN_LOOKUPS = Counter("auth_token_lookups_total", "Token lookups in PostgreSQL, by outcome", ["result"])
TOKEN_CACHE_HITS = Counter(
    "auth_token_cache_hits_total", "Requests authenticated from this worker's token cache, without PostgreSQL"
)
REVOCATION_RESUBSCRIBED = Counter(
    "revocation_feed_resubscribed_total",
    "Times the revocation feed subscribed again after a gap (the token cache was cleared each time)",
)
AUTH_REJECTED_CHEAPLY = Counter(
    "auth_rejected_without_lookup_total",
    "Tokens refused without a database lookup: a recently unknown token, or an address over its"
    " failed-lookup limit",
    ["reason"],
)
RATE_LIMITED = Counter("http_rate_limited_total", "Requests answered 429, by limit", ["limit"])
RATE_LIMIT_ERRORS = Counter(
    "rate_limit_store_errors_total", "Rate-limit checks skipped because Redis did not answer (fail open)"
)
