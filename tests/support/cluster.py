"""A private Redis Cluster with replicas, for a test that kills a primary (scripts/redis-cluster.sh).

The session's 3-primary cluster (`make test`) has no replicas and serves every other test; a
failover is played only on a cluster of the test's own: three primaries and a replica each, on a
free block of ports, with its own directory under the worktree's `.data`. Nodes run with
`cluster-node-timeout 2000`: a killed primary's replica takes over after about 2-5 s, which
`kill_primary` waits for by polling the survivors' view, never by sleeping a fixed time.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.cluster import key_slot

from tests.support.server import ROOT

SCRIPT = ROOT / "scripts" / "redis-cluster.sh"
BUS_OFFSET = 10_000  # Redis listens on port + 10000 for the cluster bus
PORTS = (30_000, 45_000)  # where a block is looked for: below the stores' and the OS's ephemeral ports


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port_block(count: int, span: tuple[int, int] = PORTS) -> int:
    """The first of `count` consecutive ports that are free, their bus ports (+10000) too."""
    for _ in range(200):
        first = random.randrange(span[0], span[1] - count)
        if all(_bindable(p) and _bindable(p + BUS_OFFSET) for p in range(first, first + count)):
            return first
    raise RuntimeError(f"no {count} free consecutive ports in {span}")


@dataclass(frozen=True)
class Failover:
    """What `kill_primary` did: the node killed, the replica that took its slots, and when."""

    killed_port: int
    promoted_port: int
    killed_at: float  # time.monotonic()
    promoted_at: float  # time.monotonic(): the first poll that saw the cluster whole again

    @property
    def took_s(self) -> float:
        return self.promoted_at - self.killed_at


@dataclass
class ReplicatedCluster:
    """`primaries` primaries with `replicas` replicas each, started by `start()`; `url` is a seed
    node's address (any node serves: clients learn the rest)."""

    data_dir: Path = field(default_factory=lambda: ROOT / ".data" / f"cluster-{os.getpid()}")
    primaries: int = 3
    replicas: int = 1
    first_port: int = 0  # 0: a free block is chosen
    killed: list[int] = field(default_factory=list)

    @property
    def ports(self) -> list[int]:
        count = self.primaries * (1 + self.replicas)
        return list(range(self.first_port, self.first_port + count))

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.alive_ports()[0]}/0"

    def _script(self, action: str) -> str:
        done = subprocess.run(
            ["bash", str(SCRIPT), action, str(self.data_dir), str(self.first_port),
             str(self.primaries), str(self.replicas)],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"redis-cluster.sh {action} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout.strip()

    def start(self) -> ReplicatedCluster:
        if not self.first_port:
            self.first_port = free_port_block(len(self.ports))
        self._script("start")
        return self

    def stop(self) -> None:
        """Shut every node down (a killed one is already gone) and delete the cluster's directory."""
        self._script("stop")
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def alive_ports(self) -> list[int]:
        return [p for p in self.ports if p not in self.killed]

    def _node(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1, decode_responses=True)

    def primary_of(self, key_or_slot: str | int) -> int:
        """The port of the primary serving a key's slot (or a slot), as the cluster sees it now."""
        return self._serving(self.alive_ports()[0], key_or_slot)

    def _serving(self, asked: int, key_or_slot: str | int) -> int:
        """The port of the primary serving the slot, in the view of the node on port `asked`."""
        slot = key_or_slot if isinstance(key_or_slot, int) else key_slot(key_or_slot.encode())
        with self._node(asked) as node:
            for first, last, primary, *_ in node.execute_command("CLUSTER SLOTS"):
                if first <= slot <= last:
                    return int(primary[1])
        raise LookupError(f"no node serves slot {slot}")

    def keys_on(self, port: int, pattern: str) -> list[str]:
        """The keys matching `pattern` held by the node on `port`."""
        with self._node(port) as node:
            return list(node.scan_iter(match=pattern, count=1000))

    def wait_replicas_listed(self, timeout_s: float = 60.0) -> None:
        """Wait until the slot map lists every replica. `CLUSTER SLOTS` omits a replica until its
        first sync is done (seconds after `start()`), and a client learns the replicas it may read
        from only from the map it reads when it starts (or refreshes after an error)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._node(self.alive_ports()[0]) as node:
                ranges = node.execute_command("CLUSTER SLOTS")
            if ranges and all(len(r) - 2 >= 1 + self.replicas for r in ranges):
                return
            time.sleep(0.2)
        raise TimeoutError(f"the replicas were not all in the slot map within {timeout_s} s")

    def replicas_of(self, primary_port: int) -> list[int]:
        with self._node(primary_port) as node:
            info = node.info("replication")
        return [int(v["port"]) for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]

    @staticmethod
    def kill(port: int) -> None:
        """Stop one node at once, its data lost (as a crashed machine), without waiting for anything."""
        subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], capture_output=True, timeout=10)

    def kill_primary(self, key_or_slot: str | int, timeout_s: float = 30.0) -> Failover:
        """SIGKILL the primary serving a key's slot (a crash: no goodbye to its peers, nothing
        saved), then wait until one of its replicas serves the slot and the cluster is whole."""
        port = self.primary_of(key_or_slot)
        standby = set(self.replicas_of(port))
        assert standby, f"the primary on {port} has no replica to take over"
        pid = int((self.data_dir / str(port) / "redis.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        self.killed.append(port)
        deadline = killed_at + timeout_s
        while time.monotonic() < deadline:
            promoted = self._promoted(key_or_slot, standby)
            if promoted:
                return Failover(port, promoted, killed_at, time.monotonic())
            time.sleep(0.05)
        raise TimeoutError(f"no replica of {port} took over within {timeout_s} s")

    def _promoted(self, key_or_slot: str | int, standby: set[int]) -> int | None:
        """The replica that took over, once it calls itself primary and the other nodes route the
        slot to it (a client refreshing its map from any of them then finds it)."""
        try:
            for port in sorted(standby):
                with self._node(port) as node:
                    if node.execute_command("ROLE")[0] != "master":
                        continue
                views = {self._serving(other, key_or_slot) for other in self.alive_ports()}
                return port if views == {port} else None
        except (redis.ConnectionError, redis.TimeoutError, LookupError):
            return None
        return None
