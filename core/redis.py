"""Redis plumbing: one asyncio connection pool per process, and key naming."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

MAX_CONNECTIONS = 64


def connect_redis(url: str, max_connections: int = MAX_CONNECTIONS) -> Redis:
    """A client over a shared, bounded pool; responses decoded to `str`.

    The pool blocks (up to 5 s) when every connection is busy instead of failing: a burst of
    websocket frames must queue for Redis, not lose updates to "too many connections".
    """
    pool = BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=5, decode_responses=True, health_check_interval=30
    )
    return Redis(connection_pool=pool)


class Keys:
    """Builds namespaced Redis keys and channels so deployments (and test runs) never collide."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __call__(self, *parts: object) -> str:
        return ":".join([self.prefix, *(str(p) for p in parts)])
