"""Request body size limits per route, enforced before the body is read (413 naming the limit).

Without a limit, a 1,000 MB body to `POST /v1/tokens` was read and parsed whole (RSS 1.8 GB)
before the handler said 401. Starlette's `RequestBodyLimitMiddleware` does the counting the way
it must be done: a `Content-Length` above the limit is refused without reading a byte, and a
chunked body is counted as it streams and cut off at the limit. This module only chooses the
limit by path (a gateway batch and an import need more than an incident) and words the 413.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import body_limit
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY, RequestBodyLimitMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

# Starlette's signal that the limit was passed has no public name (FastAPI looks it up the same way).
_TOO_LARGE: type[Exception] = getattr(
    body_limit, "_RequestBodyTooLarge", type("_NeverRaised", (Exception,), {})
)


def too_large(limit: int, path: str) -> JSONResponse:
    """The uniform 4xx body of a 413 that names the limit and the path it applies to."""
    rule = f"larger than {limit} bytes, the limit for {path}"
    return JSONResponse(
        {"detail": f"body: {rule}", "errors": [{"field": "body", "rule": rule}]}, status_code=413
    )


class BodyLimitMiddleware:
    """Pure ASGI: the limit for `scope["path"]` from `by_path`, else `default_bytes`.

    A `Content-Length` over the limit is answered here; a chunked body is handed to Starlette's
    counter, whose signal the app's 413 handler (`too_large_body`) words the same way.
    """

    def __init__(self, app: ASGIApp, default_bytes: int, by_path: Mapping[str, int]) -> None:
        self.app = app
        self.limits = {**by_path}
        self.default_bytes = default_bytes
        self.counters = {n: RequestBodyLimitMiddleware(app, n) for n in {default_bytes, *by_path.values()}}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.get(scope["path"], self.default_bytes)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await too_large(limit, scope["path"])(scope, receive, send)
            return
        await self.counters[limit](scope, receive, send)


def too_large_body(request: Request, exc: HTTPException) -> JSONResponse:
    """The app's 413 handler: Starlette's counter passed the limit while a chunked body streamed."""
    limit = request.scope.get(MAX_BODY_SIZE_SCOPE_KEY)
    if not isinstance(exc, _TOO_LARGE) or limit is None:  # a handler's own 413 already says why
        return JSONResponse({"detail": exc.detail}, status_code=413, headers=exc.headers)
    return too_large(limit, request.url.path)
