"""Redis plumbing: one asyncio connection pool per process, and key naming."""

from __future__ import annotations

from redis.asyncio import Redis


def connect_redis(url: str) -> Redis:
    """A client over a shared pool; responses decoded to `str`."""
    return Redis.from_url(url, decode_responses=True, health_check_interval=30)


class Keys:
    """Builds namespaced Redis keys and channels so deployments (and test runs) never collide."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __call__(self, *parts: object) -> str:
        return ":".join([self.prefix, *(str(p) for p in parts)])
