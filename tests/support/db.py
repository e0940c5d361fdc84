"""Direct database access for tests that must look under the API (e.g. what is really stored)."""

from __future__ import annotations

from typing import Any

import asyncpg
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
