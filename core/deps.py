"""FastAPI dependencies that reach the stores held on `app.state` by the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from core.config import Settings
from core.redis import Keys


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One database session per request, committed by the handler (services call `commit`)."""
    async with request.app.state.db.sessions() as session:
        yield session


def get_redis(request: Request) -> Redis:
    return request.app.state.redis


def get_keys(request: Request) -> Keys:
    return request.app.state.keys


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings
