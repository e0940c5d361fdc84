"""Uniform 4xx bodies: every validation error names the field and the rule that failed."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from core.body_limit import too_large_body
from core.outage import unavailable_store
from core.redis import REDIS_DOWN

STORE_RETRY_AFTER_S = 2
log = logging.getLogger(__name__)


def _field(loc: tuple[object, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {"field": _field(tuple(e.get("loc", ()))), "rule": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    detail = "; ".join(f"{e['field']}: {e['rule']}" for e in errors)
    return JSONResponse({"detail": detail, "errors": errors}, status_code=422)


async def store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """A store out of reach is a 503 naming it, with `Retry-After`; any other error stays a 500."""
    store = unavailable_store(exc)
    if store is None:
        raise exc
    log.warning("%s unavailable: %s %s answered 503", store, request.method, request.url.path, exc_info=exc)
    return JSONResponse(
        {"detail": f"{store} unavailable; try again shortly", "store": store},
        status_code=503,
        headers={"Retry-After": str(STORE_RETRY_AFTER_S)},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(413, too_large_body)  # type: ignore[arg-type]
    for kind in (*REDIS_DOWN, DBAPIError, PoolTimeout, ConnectionRefusedError):
        app.add_exception_handler(kind, store_unavailable)
