"""A private Redis Cluster with a replica per primary (scripts/redis-cluster.sh), whose primaries a
failover test may kill. The session's cluster (no replicas) serves every other test."""

from __future__ import annotations

import random
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.server import ROOT

SCRIPT = ROOT / "scripts" / "redis-cluster.sh"


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_run(count: int) -> int:
    """The first of `count` consecutive free ports whose cluster-bus ports (+10000) are free too."""
    for _ in range(200):
        first = random.randrange(30000, 45000)
        ports = range(first, first + count)
        if all(_free(p) and _free(p + 10000) for p in ports):
            return first
    raise RuntimeError("no run of free ports for a private cluster")


@dataclass
class ReplicatedCluster:
    data_dir: Path
    primaries: int = 3
    replicas: int = 1
    first_port: int = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.first_port}/0"

    def _script(self, action: str) -> str:
        args = [str(self.data_dir), str(self.first_port), str(self.primaries), str(self.replicas)]
        done = subprocess.run(
            ["bash", str(SCRIPT), action, *args], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            raise RuntimeError(f"redis-cluster.sh {action} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout.strip()

    def start(self) -> ReplicatedCluster:
        self.first_port = self.first_port or free_run(self.primaries * (1 + self.replicas))
        self._script("start")
        return self

    def stop(self) -> None:
        self._script("stop")

    @staticmethod
    def kill(port: int) -> None:
        """Stop one node at once, its data lost (as a crashed machine)."""
        subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], capture_output=True, timeout=10)
