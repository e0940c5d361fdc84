"""`make run` supervises what it starts (real processes, real stores on ports of the test's own).

The run script is started under a shell that stands in for `make` (`sh -c '…; exit'`, like make's
recipe shell). A killed worker comes back; a SIGTERM to the run script or the death of `make`
takes down the app and both stores, whose PostgreSQL keeps fsync on (the run environment holds
real incidents).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest
from redis import Redis

from core.worker_header import WORKER_HEADER
from tests.support.server import ROOT, free_port

pytestmark = pytest.mark.integration


def _wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Seconds until `condition()` held; fails the test after `timeout_s`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            pytest.fail(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(0.2)
    return time.monotonic() - started


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@dataclass
class RunScript:
    """`scripts/run.sh` (DEMO=0) under a stand-in for `make`, on its own ports and data directory."""

    name: str
    pg_port: int = field(default_factory=free_port)
    redis_port: int = field(default_factory=free_port)
    port: int = field(default_factory=free_port)
    workers: int = 1
    make: subprocess.Popen[bytes] | None = None
    env_dir: Path | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        logs = ROOT / "test-artifacts" / "server-logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.log = logs / f"make-run-{self.name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "WATCH_PID")}
        env.update(
            DEMO="0", PORT=str(self.port), PG_PORT=str(self.pg_port), REDIS_PORT=str(self.redis_port),
            STORES_ENV=f"run-{self.name}", WORKERS=str(self.workers),
        )  # fmt: skip
        self.make = subprocess.Popen(
            ["sh", "-c", "scripts/run.sh; exit $?"], cwd=ROOT, env=env, start_new_session=True,
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        _wait_for(self.healthy, 90, f"make run serving (log: {self.log})")
        redis_pidfile = Redis(port=self.redis_port).config_get("pidfile")["pidfile"]
        self.env_dir = Path(redis_pidfile).parent.parent

    def supervisor(self) -> psutil.Process:
        assert self.make is not None
        (runner,) = psutil.Process(self.make.pid).children()
        return runner

    def app(self) -> psutil.Process:
        (app,) = [p for p in self.supervisor().children() if "serve" in p.cmdline()]
        return app

    async def fsync(self) -> str:
        conn = await asyncpg.connect(host="127.0.0.1", port=self.pg_port, user="rescue", database="rescue")
        try:
            return str(await conn.fetchval("SHOW fsync"))
        finally:
            await conn.close()

    def processes(self) -> dict[str, int]:
        """Everything the run started: supervisor, its children, and the two store servers."""
        assert self.env_dir is not None
        found = {"supervisor": self.supervisor().pid}
        found.update({f"child {p.pid}": p.pid for p in self.supervisor().children(recursive=True)})
        found["redis"] = int((self.env_dir / "redis" / "redis.pid").read_text())
        found["postgres"] = int((self.env_dir / "pg" / "postmaster.pid").read_text().split()[0])
        return found

    def assert_all_gone(self, processes: dict[str, int], timeout_s: float) -> float:
        def everything_stopped() -> bool:
            ports = (self.port, self.pg_port, self.redis_port)
            return all(_gone(pid) for pid in processes.values()) and not any(map(_port_open, ports))

        return _wait_for(everything_stopped, timeout_s, f"everything stopped (log: {self.log})")

    def clean_up(self) -> None:
        """Whatever a failed test left behind: the process group, the stores, the data."""
        if self.make is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.make.pid, signal.SIGKILL)
            self.make.wait()
        env = {**os.environ, "PG_PORT": str(self.pg_port), "REDIS_PORT": str(self.redis_port)}
        env.pop("DATABASE_URL", None)
        env.pop("REDIS_URL", None)
        subprocess.run(["scripts/stores.sh", "stop", f"run-{self.name}"], cwd=ROOT, env=env, check=False)
        if self.env_dir is not None:
            shutil.rmtree(self.env_dir, ignore_errors=True)


@pytest.fixture
def run_script(request: pytest.FixtureRequest) -> Iterator[RunScript]:
    script = RunScript(name=f"t{os.getpid()}-{request.node.name[-12:]}".replace("_", "-"))
    try:
        yield script
    finally:
        script.clean_up()


async def test_a_killed_worker_comes_back_and_sigterm_stops_everything(run_script: RunScript) -> None:
    run_script.start()
    assert await run_script.fsync() == "on"  # the run environment is durable; only tests skip fsync

    worker = run_script.app()
    worker.kill()
    _wait_for(lambda: not run_script.healthy(), 10, "the killed worker stops answering")
    back_s = _wait_for(run_script.healthy, 30, "/healthz back after kill -9 of the worker")
    assert run_script.app().pid != worker.pid
    print(f"/healthz back {back_s:.1f} s after the worker was killed")

    processes = run_script.processes()
    run_script.supervisor().send_signal(signal.SIGTERM)
    gone_s = run_script.assert_all_gone(processes, 60)
    assert run_script.make is not None and run_script.make.wait(10) == 128 + signal.SIGTERM
    print(f"app, stores and helpers gone {gone_s:.1f} s after SIGTERM")


def test_when_make_is_killed_the_rest_stops_by_itself(run_script: RunScript) -> None:
    run_script.start()
    processes = run_script.processes()
    assert run_script.make is not None
    run_script.make.kill()
    run_script.make.wait()
    gone_s = run_script.assert_all_gone(processes, 60)
    print(f"app, stores and helpers gone {gone_s:.1f} s after make was killed")


def test_make_passes_workers_and_the_run_serves_with_that_many(run_script: RunScript) -> None:
    recipe = subprocess.run(
        ["make", "-n", "--no-print-directory", "run", "WORKERS=3"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    run_line = [line for line in recipe.splitlines() if "scripts/run.sh" in line]
    assert run_line and "WORKERS=3 " in run_line[0], recipe  # the run line, not only setup's
    run_script.workers = 2
    run_script.start()
    seen: set[str] = set()

    def both_answer() -> bool:
        seen.add(httpx.get(f"{run_script.url}/healthz", timeout=5).headers[WORKER_HEADER])
        return len(seen) == 2

    _wait_for(both_answer, 60, "two workers answering /healthz")
    # the start-up block is printed once the server answers, and is what the terminal shows last
    _wait_for(lambda: "Ctrl-C" in run_script.log.read_text(), 30, "the start-up block")
    block = run_script.log.read_text().split("The 5-minute rescue circle is running")[-1]
    for path in ("/", "/responder", "/planner", "/coordinator"):
        assert f"{run_script.url}{path}\n" in block, block
    assert "(2 API workers)" in block and "token create --role dispatcher" in block, block
    children = {str(p.pid) for p in run_script.app().children()}
    assert seen <= children  # uvicorn's two worker processes, under the supervised `serve`
    processes = run_script.processes()
    run_script.supervisor().send_signal(signal.SIGTERM)
    run_script.assert_all_gone(processes, 60)
