"""Alembic environment: runs migrations over the async engine named by the settings."""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import aed_registry.models  # noqa: F401  (every table registers on the shared metadata)
import cad.models
import cad.outbox_models  # noqa: F401
import core.auth  # noqa: F401
import debriefs.models  # noqa: F401
import dispatch.channels.models
import dispatch.channels.push_models
import dispatch.models  # noqa: F401
import outcomes.models  # noqa: F401
import responders.models  # noqa: F401
import simulator.models  # noqa: F401
from core.config import Settings
from core.db import Base

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)
target_metadata = Base.metadata


def _url() -> str:
    return config.attributes.get("database_url") or Settings().database_url


def _include_object(obj, name, type_, reflected, compare_to) -> bool:  # type: ignore[no-untyped-def]
    # PostGIS owns these; never autogenerate drops for them.
    return not (type_ == "table" and name in {"spatial_ref_sys"})


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, include_object=_include_object)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(_url())
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    connectable = config.attributes.get("connection")
    if connectable is None:
        asyncio.run(_run_async())
    else:
        _run(connectable)
