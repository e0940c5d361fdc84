"""Uniform 4xx bodies: every validation error names the field and the rule that failed."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from core.body_limit import too_large_body


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


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(413, too_large_body)  # type: ignore[arg-type]
