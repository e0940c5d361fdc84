"""Liveness of the two stores, and the Prometheus endpoint."""

from __future__ import annotations

import asyncio
import hmac

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from redis.asyncio import RedisCluster
from sqlalchemy import text

from core.metrics import metrics_response

router = APIRouter(tags=["operations"])

STORE_TIMEOUT_S = 2.0


class Healthy(BaseModel):
    status: str
    postgis: str
    redis: str


class StoresDown(BaseModel):
    """503: which stores are down (`down`) and why (`errors`, store -> reason)."""

    status: str
    down: list[str]
    detail: str
    errors: dict[str, str]


async def _postgis_version(request: Request) -> str:
    async with request.app.state.db.engine.connect() as conn:
        return str((await conn.execute(text("SELECT postgis_lib_version()"))).scalar_one())


async def _redis_version(request: Request) -> str:
    """The server's version; on a cluster every primary must answer (each holds a share of the
    slots), and the answer says how many did."""
    redis = request.app.state.redis
    if not isinstance(redis, RedisCluster):
        return str((await redis.info("server"))["redis_version"])
    primaries = redis.get_primaries()
    infos = await asyncio.gather(*(redis.info("server", target_nodes=node) for node in primaries))
    versions = sorted({str(info["redis_version"]) for info in infos})
    return f"{'/'.join(versions)} (cluster, {len(infos)} primaries)"


@router.get("/healthz", responses={200: {"model": Healthy}, 503: {"model": StoresDown}})
async def healthz(request: Request) -> Response:
    """Both store versions, or 503 naming each store that is down and why."""
    body: dict[str, str] = {"status": "ok"}
    errors: dict[str, str] = {}
    for name, probe in (("postgis", _postgis_version), ("redis", _redis_version)):
        try:
            body[name] = await asyncio.wait_for(probe(request), STORE_TIMEOUT_S)
        except Exception as exc:  # any failure means the store is unusable for us
            errors[name] = f"{type(exc).__name__}: {exc}"[:300]
    if errors:
        down = ", ".join(errors)
        return JSONResponse(
            {
                "status": "unavailable",
                "down": sorted(errors),
                "detail": f"store down: {down}",
                "errors": errors,
            },
            status_code=503,
        )
    return JSONResponse(body)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus text; 404 when `metrics_enabled` is off, 401 without `metrics_token` when set."""
    settings = request.app.state.settings
    if not settings.metrics_enabled:
        return JSONResponse({"detail": "metrics are turned off (DISPATCH_METRICS_ENABLED)"}, status_code=404)
    expected = settings.metrics_token
    given = request.headers.get("authorization", "")
    if expected and not hmac.compare_digest(given.encode(), f"Bearer {expected}".encode()):
        return JSONResponse(
            {"detail": "metrics need 'Authorization: Bearer <DISPATCH_METRICS_TOKEN>'"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    return metrics_response()
