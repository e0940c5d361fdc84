"""Direct database access for tests that must look under the API (e.g. what is really stored)."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
from alembic import command
from sqlalchemy.engine import make_url


def plain_dsn(url: str, database: str | None = None) -> str:
    """An asyncpg DSN from the service's SQLAlchemy URL, optionally for another database."""
    u = make_url(url).set(drivername="postgresql")
    if database is not None:
        u = u.set(database=database)
    return u.render_as_string(hide_password=False)


async def fetch(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(plain_dsn(url))
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def revoke_unannounced(url: str, responder_id: str) -> None:
    """Revoke a responder's tokens straight in PostgreSQL, as a hand edit would: no worker is told,
    so only the re-checks and expiries can find out."""
    await fetch(
        url, "UPDATE api_tokens SET revoked_at = now() WHERE responder_id = $1", uuid.UUID(responder_id)
    )


async def execute(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@functools.cache
def _migrated_template(url: str) -> str:
    """A database migrated to head once per test process, for `fresh_database` to copy.

    Copying a database (`CREATE DATABASE … TEMPLATE`) takes well under a second; running the
    migrations takes about 9 s on the loaded 2-core machine, and a dozen servers of the suite need
    stores of their own. Nobody connects to the template (a copy needs it idle); it is dropped when
    the test process ends."""
    from dispatch.cli import _alembic_config

    name = f"template_{secrets.token_hex(4)}"
    admin_dsn = plain_dsn(url, "postgres")
    asyncio.run(execute(admin_dsn, f"CREATE DATABASE {name}"))
    atexit.register(_drop_quietly, admin_dsn, name)
    cfg = _alembic_config()
    cfg.attributes["database_url"] = make_url(url).set(database=name).render_as_string(hide_password=False)
    command.upgrade(cfg, "head")
    return name


def _drop_quietly(admin_dsn: str, name: str) -> None:
    """Drop a database at exit; the stores may already be stopped, and a test cluster is thrown
    away anyway, so a failure here is no test's concern."""
    with contextlib.suppress(OSError, asyncpg.PostgresError):
        asyncio.run(execute(admin_dsn, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@contextmanager
def fresh_database(url: str, label: str) -> Iterator[str]:
    """A new, migrated database on the suite's server, dropped afterwards: for a server whose
    background work (the dispatch clock, the ladder) must neither step other tests' alerts nor have
    its own stepped by the session's server, or that fills the registries with generated data."""
    name = f"{label}_{secrets.token_hex(4)}"
    admin_dsn = plain_dsn(url, "postgres")
    asyncio.run(execute(admin_dsn, f"CREATE DATABASE {name} TEMPLATE {_migrated_template(url)}"))
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(execute(admin_dsn, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@contextmanager
def stores_of_its_own(url: str, label: str) -> Iterator[dict[str, str]]:
    """Environment for a server whose dispatch clock must see only its own incidents: a fresh
    database and a Redis prefix nobody else uses.

    Every server on a database runs the clock over every open incident, with its own settings: the
    session's server (alert cap 20, default acceptance) would otherwise now and then take a step of
    an incident opened by a server configured otherwise, and decide it differently."""
    with fresh_database(url, label) as fresh:
        yield {"DATABASE_URL": fresh, "DISPATCH_REDIS_PREFIX": f"{label}{secrets.token_hex(3)}"}
