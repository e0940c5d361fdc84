"""The application factory: the one place where the service is composed.

The lifespan opens the async engine and the Redis pool, makes `DISPATCH_ADMIN_TOKEN` valid, starts
the background workers (alert fan-out, escalation, the demo city, warming the city's H3 geometry,
the delivery of feedback to emergency centres, the retention of responders' positions) and closes all
of it on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from aed_registry.router import router as aed_router
from cad import outbox as cad_outbox
from cad.delivery import run_delivery
from cad.feed_router import router as cad_feed_router
from cad.feed_socket import router as cad_socket_router
from cad.router import router as cad_router
from core.bearer_gate import BearerGateMiddleware
from core.body_limit import BodyLimitMiddleware
from core.config import Settings, get_settings
from core.db import Database
from core.headers import SecurityHeadersMiddleware
from core.logging import configure_logging
from core.metrics import MetricsMiddleware, watch_gc
from core.openapi import install_openapi
from core.partitions import keep_partitions
from core.ratelimit import FailedLookups, RateLimitMiddleware, RateLimits
from core.redis import Keys, connect_configured
from core.revocation import CacheListener, RevocationFeed, SocketGuard
from core.token_cache import TokenCache
from core.worker_header import WorkerHeaderMiddleware
from debriefs.router import router as debriefs_router
from dispatch import health, tokens, ws
from dispatch import router as incidents
from dispatch.arrival import ArrivalWatcher
from dispatch.channels.base import ClosableChannel
from dispatch.channels.push import build_push
from dispatch.channels.push_router import router as push_router
from dispatch.channels.router import router as alerts_router
from dispatch.channels.sms import build_sms, build_voice
from dispatch.context import DispatchContext
from dispatch.errors import install_error_handlers
from dispatch.escalation import run_dispatch_clock
from dispatch.fanout import Fanout
from dispatch.geofence import Radii
from dispatch.web.router import install_web
from geo.cells import remember_centres_within
from outcomes.router import router as outcomes_router
from privacy.retention import run_retention
from privacy.router import router as privacy_router
from programme.router import router as programme_router
from responders.router import locations_router
from responders.router import router as responders_router
from responders.store import LiveLocationStore
from responders.upkeep import run_upkeep
from service_record.router import router as service_record_router
from simulator.job_store import JobStore
from simulator.jobs import Limits, StudyRunner
from simulator.router import router as planning_router
from simulator.service import NoCity, load_city

log = logging.getLogger(__name__)


async def _warm_cover(db: Database, resolution: int) -> None:
    """Work out the H3 geometry over the stored city once, so the first incidents after a start are
    as fast as the rest (their covers would otherwise make ~1 ms of H3 calls each)."""
    try:
        async with db.sessions() as session:
            city = await load_city(session)
    except NoCity:
        return
    except Exception:  # the database is down at start: the caches warm up with use instead
        log.warning("cell geometry not warmed: the city could not be read", exc_info=True)
        return
    min_lng, min_lat, max_lng, max_lat = city.outline.bounds
    cells = await asyncio.to_thread(remember_centres_within, min_lat, min_lng, max_lat, max_lng, resolution)
    log.info("cell geometry warmed", extra={"city": city.name, "cells": cells})


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _channels(settings: Settings, push: ClosableChannel) -> dict[str, ClosableChannel]:
    """The ladder's ways past the socket: Web Push always (its key is ours), SMS and voice when a
    provider is configured (`build_sms`/`build_voice` refuse to start on half a configuration)."""
    channels: dict[str, ClosableChannel] = {"push": push}
    for name, build in (("sms", build_sms), ("voice", build_voice)):
        channel = build(settings)
        if channel is not None:
            channels[name] = channel
    return channels


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; `settings` defaults to the environment's."""
    settings = settings or get_settings()
    configure_logging(settings.log_json, settings.log_level, routine_requests=settings.log_routine_requests)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.db = Database(settings.database_url)
        app.state.redis = connect_configured(settings)
        app.state.keys = Keys(settings.redis_prefix)
        app.state.live_store = LiveLocationStore(app.state.redis, app.state.keys, settings)
        fanout = Fanout(app.state.redis, app.state.keys)
        app.state.push = await build_push(settings, app.state.db)
        channels = _channels(settings, app.state.push)
        app.state.dispatch = DispatchContext.build(
            settings, app.state.db, app.state.live_store, fanout, channels=channels
        )
        arrivals = ArrivalWatcher(
            app.state.db, fanout, Radii.from_settings(settings), app.state.dispatch.engaged_changed
        )
        app.state.fix_observer = arrivals  # every stored fix passes the arrival geofences
        app.state.studies = StudyRunner(JobStore(app.state.db.sessions), Limits.from_settings(settings))
        async with AsyncExitStack() as stack:
            stack.push_async_callback(app.state.db.dispose)
            stack.push_async_callback(app.state.redis.aclose)
            stack.push_async_callback(app.state.live_store.aclose)
            stack.push_async_callback(app.state.studies.aclose)
            for channel in channels.values():
                stack.push_async_callback(channel.aclose)
            stack.push_async_callback(_cancel, asyncio.create_task(app.state.studies.warm()))
            stack.push_async_callback(_cancel, asyncio.create_task(app.state.studies.keep_alive()))
            stack.push_async_callback(
                _cancel, asyncio.create_task(run_upkeep(app.state.db, app.state.live_store, settings))
            )
            stack.push_async_callback(_cancel, asyncio.create_task(fanout.run()))
            stack.push_async_callback(_cancel, asyncio.create_task(keep_partitions(app.state.db)))
            app.state.rate_limits = (
                RateLimits(
                    app.state.redis,
                    app.state.keys,
                    redis_url=settings.redis_url,
                    per_address=settings.rate_limit_per_address,
                    per_token=settings.rate_limit_per_token,
                    auth_failures=settings.auth_failures_per_address,
                )
                if settings.rate_limit_enabled
                else None
            )
            if app.state.rate_limits is not None:
                stack.push_async_callback(app.state.rate_limits.aclose)
            app.state.failed_lookups = FailedLookups(app.state.rate_limits)
            app.state.token_cache = TokenCache(settings.token_cache_size, settings.token_cache_ttl_s)
            app.state.socket_guard = SocketGuard(app.state.db, settings.ws_token_recheck_s)
            listeners = [app.state.socket_guard, CacheListener(app.state.token_cache)]
            revocations = RevocationFeed(app.state.redis, app.state.keys, listeners)
            stack.push_async_callback(_cancel, asyncio.create_task(revocations.run()))
            stack.push_async_callback(_cancel, asyncio.create_task(app.state.socket_guard.run()))
            stack.push_async_callback(_cancel, asyncio.create_task(run_dispatch_clock(app.state.dispatch)))
            stack.push_async_callback(_cancel, asyncio.create_task(arrivals.run()))
            stack.push_async_callback(_cancel, asyncio.create_task(run_delivery(app.state.db, settings)))
            retention = run_retention(app.state.db, app.state.redis, app.state.keys, settings)
            stack.push_async_callback(_cancel, asyncio.create_task(retention))
            stack.push_async_callback(
                _cancel, asyncio.create_task(_warm_cover(app.state.db, app.state.live_store.page_resolution))
            )
            with contextlib.suppress(TimeoutError):  # Redis down at start: serve anyway, /healthz says so
                await asyncio.wait_for(fanout.ready.wait(), timeout=5)
            log.info("service started", extra={"database": settings.database_url.split("@")[-1]})
            # The ~half-million objects of the loaded libraries never die: moved out of the cyclic
            # collector's view, a full collection no longer stalls a location batch by ~80 ms.
            gc.collect()
            gc.freeze()
            # A gateway batch allocates tens of thousands of objects that live for the request; at
            # the default thresholds (700, 10, 10) the collector re-scanned them dozens of times and
            # took 5-9 % of the worker during batch ingest (2-4 % at these), and full collections
            # come ~60x less often.
            gc.set_threshold(20_000, 20, 10)
            watch_gc()
            yield
        log.info("service stopped")

    app = FastAPI(
        title="5-minute rescue circle",
        version="1.0",
        description="Dispatch of trained city workers as first responders, with AEDs.",
        lifespan=lifespan,
        docs_url="/docs" if settings.docs_enabled else None,
        redoc_url="/redoc" if settings.docs_enabled else None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
    )
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(
        BodyLimitMiddleware, default_bytes=settings.body_limit_bytes, by_path=settings.body_limits
    )
    app.add_middleware(BearerGateMiddleware)  # no token, no body read
    app.add_middleware(RateLimitMiddleware)
    app.add_middleware(SecurityHeadersMiddleware, tile_url=settings.tile_url)  # outermost: 429s too
    app.add_middleware(WorkerHeaderMiddleware)
    install_error_handlers(app)
    cad_outbox.install()  # feedback to emergency centres is written with the incident events
    app.include_router(health.router)
    app.include_router(tokens.router)
    app.include_router(aed_router)
    app.include_router(responders_router)
    app.include_router(locations_router)
    app.include_router(incidents.router)
    app.include_router(alerts_router)
    app.include_router(ws.router)
    app.include_router(planning_router)
    app.include_router(push_router)
    app.include_router(cad_router)
    app.include_router(cad_feed_router)
    app.include_router(cad_socket_router)
    app.include_router(privacy_router)
    app.include_router(service_record_router)
    app.include_router(outcomes_router)
    app.include_router(debriefs_router)
    app.include_router(programme_router)
    install_web(app)
    install_openapi(app)  # after every route is in: the document is completed from them
    return app
