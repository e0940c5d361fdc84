"""Private PostgreSQL and Redis servers that a test may stop and restart (scripts/stores.sh `fault`).

The session's shared stores serve every other test; faults are injected only into these, which
live on their own free ports with their own data directory (the worktree's `.data/fault`).
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field

from redis.asyncio import RedisCluster

from core.redis import RedisClient
from tests.support.server import ROOT, free_port

SCRIPT = ROOT / "scripts" / "stores.sh"


@dataclass
class PrivateStores:
    pg_port: int = field(default_factory=free_port)
    redis_port: int = field(default_factory=free_port)

    @property
    def database_url(self) -> str:
        return f"postgresql+asyncpg://rescue@127.0.0.1:{self.pg_port}/rescue_fault"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def _script(self, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        env |= {"PG_PORT": str(self.pg_port), "REDIS_PORT": str(self.redis_port)}
        done = subprocess.run(
            ["bash", str(SCRIPT), *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            raise RuntimeError(f"stores.sh {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")

    def start(self) -> PrivateStores:
        """Start whichever of the two is not running (both, the first time), then migrate."""
        self.stop("pg redis")  # a cluster left running by an interrupted run listens on another port
        self._script("start", "fault")
        env = {**os.environ, "DATABASE_URL": self.database_url}
        subprocess.run(
            [str(ROOT / ".venv" / "bin" / "alembic"), "upgrade", "head"],
            env=env, cwd=ROOT, check=True, capture_output=True, timeout=300,
        )  # fmt: skip
        return self

    def stop(self, which: str) -> None:
        """Stop "pg", "redis" or both ("pg redis"); a stopped Redis loses its data (no snapshot)."""
        self._script("stop", "fault", which)

    def restart(self) -> float:
        """Start what was stopped; returns the monotonic time at which it answers again."""
        self._script("start", "fault")
        return time.monotonic()


async def cut_subscriptions(redis: RedisClient) -> None:
    """Close every subscriber connection on the server (on a cluster, on every node), as a
    network cut or a restarted proxy would."""
    if isinstance(redis, RedisCluster):
        await redis.execute_command("CLIENT KILL", "TYPE", "pubsub", target_nodes=RedisCluster.ALL_NODES)
    else:
        await redis.execute_command("CLIENT KILL", "TYPE", "pubsub")
