"""Telling a store outage apart from a bug, so callers can answer "try again" instead of failing.

Redis or PostgreSQL going away (restart, failover, network) raises errors from three libraries;
this module names the store such an error means is out of reach. HTTP answers it with 503 and
`Retry-After`, websockets with an `error` frame, and neither drops what was already committed.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from core.redis import REDIS_DOWN

REDIS = "live store (Redis)"
POSTGRES = "database (PostgreSQL)"


def unavailable_store(exc: BaseException) -> str | None:
    """The store `exc` says cannot be reached (`REDIS` or `POSTGRES`), or None for any other error."""
    if isinstance(exc, REDIS_DOWN):
        return REDIS
    if isinstance(exc, PoolTimeout):
        return POSTGRES
    if isinstance(exc, DBAPIError):
        # a dropped connection (server restarted), refused connects, "the database system is
        # starting up / shutting down": all surface as invalidated connections or these classes
        if exc.connection_invalidated or type(exc).__name__ in ("OperationalError", "InterfaceError"):
            return POSTGRES
        text = str(exc.orig).lower()  # e.g. "terminating connection due to administrator command"
        if type(exc).__name__ in ("DBAPIError", "InternalError") and (
            "connection" in text or "shutting down" in text or "starting up" in text
        ):
            return POSTGRES
    if isinstance(exc, ConnectionRefusedError | ConnectionResetError):
        return POSTGRES  # asyncpg's connect, before SQLAlchemy wraps anything
    return None


def log_failed_round(log: logging.Logger, loop: str, exc: BaseException) -> None:
    """A background loop's failed round: during a store outage one warning line naming the store
    (expected, every tick until it returns), otherwise the traceback of a bug."""
    store = unavailable_store(exc)
    if store is None:
        log.error("%s: round failed; retrying", loop, exc_info=exc)
    else:
        log.warning("%s waits for the %s", loop, store)
