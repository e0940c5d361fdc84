"""Alembic migrations upgrade an empty database to head, downgrade back to empty, and up again.

Runs in a database of its own so that downgrading never disturbs the suite's shared database.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import asyncpg
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from dispatch.cli import _alembic_config
from tests.support.db import plain_dsn


async def _tables(dsn: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r["tablename"] for r in rows} - {"spatial_ref_sys"}
    finally:
        await conn.close()


@pytest.fixture
def scratch_db(store_env: dict[str, str]) -> Iterator[str]:
    """An empty database on the test cluster, dropped afterwards; yields its SQLAlchemy URL."""
    import asyncio

    name = "migrations_" + secrets.token_hex(4)
    admin_dsn = plain_dsn(store_env["DATABASE_URL"], "postgres")

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f"CREATE DATABASE {name}"))
    yield make_url(store_env["DATABASE_URL"]).set(database=name).render_as_string(hide_password=False)
    asyncio.run(run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def _config(url: str) -> Config:
    cfg = _alembic_config()
    cfg.attributes["database_url"] = url
    return cfg


def test_upgrade_from_empty_downgrade_to_empty_and_up_again(scratch_db: str) -> None:
    import asyncio

    dsn = plain_dsn(scratch_db, make_url(scratch_db).database or "")
    assert asyncio.run(_tables(dsn)) == set()

    command.upgrade(_config(scratch_db), "head")
    created = asyncio.run(_tables(dsn))
    assert {"alembic_version", "api_tokens"} <= created

    command.downgrade(_config(scratch_db), "base")
    assert asyncio.run(_tables(dsn)) == {"alembic_version"}

    command.upgrade(_config(scratch_db), "head")
    assert asyncio.run(_tables(dsn)) == created
