"""Run the real service (uvicorn, real HTTP and websockets) in a child process for a test."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from core.worker_header import WORKER_HEADER

ROOT = Path(__file__).resolve().parents[2]

# A test so marked runs on the session's app on the single Redis, then on its app on the cluster
# (tests/conftest.py `live_server`): the answers must be the same on both.
on_single_and_cluster = pytest.mark.parametrize("live_server", ["single", "cluster"], indirect=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    """One uvicorn server of the app (`workers` processes behind one port); `url` is its address.

    With several workers, `start` waits until each of them has answered `/healthz` (each new
    connection goes to one worker, chosen by the kernel), and `pids` are the workers seen."""

    env: dict[str, str]
    port: int = field(default_factory=free_port)
    workers: int = 1
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    log_level: str = "warning"  # "info" writes uvicorn's access log and socket handshakes too
    pids: set[str] = field(default_factory=set)

    @property
    def database_url(self) -> str:
        return self.env["DATABASE_URL"]

    @property
    def redis_url(self) -> str:
        return self.env["REDIS_URL"]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 90.0, wait_healthy: bool = True) -> ServerProcess:
        """Start and wait until every worker answered `/healthz`. The default wait is long: on a
        shared, loaded 2-core machine importing the app alone took over 30 s."""
        env = {**os.environ, **self.env}
        logs = ROOT / "test-artifacts" / "server-logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.log_path = logs / f"server-{self.port}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "dispatch.app:create_app", "--factory",
             "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers),
             "--log-level", self.log_level],
            cwd=ROOT, env=env, stdout=self.log_path.open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()[-3000:]}")
            try:
                r = httpx.get(f"{self.url}/healthz", timeout=1.0)
                if r.status_code == 200 or (not wait_healthy and r.status_code == 503):
                    self.pids.add(r.headers[WORKER_HEADER])
                    if len(self.pids) >= self.workers:
                        return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not become healthy:\n{self.log_path.read_text()[-3000:]}")

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        """Stopped however the block ends: `with a.start(), b.start():` stops `a` if `b` never
        came up, rather than leaving it running on the shared stores after the session."""
        self.stop()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
