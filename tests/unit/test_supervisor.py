"""The supervisor behind `make run`: restart pauses, and children (with what they fork) kept alive
and taken down together. Real but tiny child processes; no stores, no server."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import psutil
import pytest

from dispatch.run import _exports
from dispatch.supervisor import Backoff, Child, Shutdown, Supervisor

# A child that forks a grandchild (as uvicorn forks its workers), prints its pid, then waits.
FORKS = (
    "import subprocess, sys, time\n"
    "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
    "print(g.pid, flush=True)\n"
    "time.sleep(60)\n"
)


def test_restart_pauses_double_on_quick_deaths_and_reset_after_a_stable_run() -> None:
    backoff = Backoff(first_s=1, longest_s=8, stable_s=30)
    delays: list[float] = []
    delay = None
    for _ in range(6):
        delay = backoff.next_delay(delay, uptime_s=2)
        delays.append(delay)
    assert delays == [1, 2, 4, 8, 8, 8]
    assert backoff.next_delay(8, uptime_s=31) == 1


def test_the_store_urls_are_read_from_the_export_lines() -> None:
    printed = (
        "export STORES_STARTED='pg redis'\n"
        "export DATABASE_URL=postgresql+asyncpg://rescue@127.0.0.1:55432/rescue\n"
        "export REDIS_URL=redis://127.0.0.1:56379/0\n"
    )
    assert _exports(printed) == {
        "STORES_STARTED": "pg redis",
        "DATABASE_URL": "postgresql+asyncpg://rescue@127.0.0.1:55432/rescue",
        "REDIS_URL": "redis://127.0.0.1:56379/0",
    }


def _wait(condition, timeout_s: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _dead(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _grandchild(path: Path) -> int:
    _wait(lambda: path.exists() and path.read_text().strip() != "")
    return int(path.read_text().split()[0])


def test_a_killed_child_is_restarted_after_its_pause_and_its_forks_go_with_it(tmp_path: Path) -> None:
    out = tmp_path / "grandchild.pid"
    sup = Supervisor(tmp_path, backoff=Backoff(first_s=0.2), poll_s=0.05)
    child = Child("worker", ["sh", "-c", f'exec {sys.executable} -c "$0" > {out}', FORKS])
    sup.add(child)
    try:
        assert child.proc is not None
        first, grandchild = child.proc.pid, _grandchild(out)
        out.unlink()
        child.proc.send_signal(signal.SIGKILL)
        for _ in range(40):  # the watch loop, a step at a time
            sup._tend(child, time.monotonic())
            if child.proc is not None and child.proc.pid != first:
                break
            time.sleep(0.05)
        assert child.restarts == 1 and child.proc is not None and child.proc.pid != first
        _wait(lambda: _dead(grandchild))  # the dead child's fork did not linger
        second_grandchild = _grandchild(out)
    finally:
        sup.stop()
    assert child.proc is None
    _wait(lambda: _dead(second_grandchild))


def test_a_signal_stops_the_watch_loop(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path, poll_s=0.05)
    sup.add(Child("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"]))
    sup._on_signal(signal.SIGTERM, None)
    with pytest.raises(Shutdown):
        sup.keep_alive()
    sup.stop()
    assert sup.signum == signal.SIGTERM


def test_the_end_of_the_watched_process_stops_the_watch_loop(tmp_path: Path) -> None:
    make = psutil.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    sup = Supervisor(tmp_path, watch_pid=make.pid, poll_s=0.05)
    sleeper = Child("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"])
    sup.add(sleeper)
    make.kill()  # left unreaped on purpose: a zombie counts as gone
    with pytest.raises(Shutdown):
        sup.keep_alive()
    assert sleeper.proc is not None
    pid = sleeper.proc.pid
    sup.stop()
    make.wait()
    assert _dead(pid)


def test_a_step_returns_its_output_names_its_failure_and_yields_to_a_stop(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path, poll_s=0.05)
    assert sup.step("echo", ["sh", "-c", "echo export A=1"], capture=True) == "export A=1\n"
    with pytest.raises(RuntimeError, match=r"migrating failed \(exited with code 3\)"):
        sup.step("migrating", ["sh", "-c", "exit 3"])
    sup._on_signal(signal.SIGINT, None)
    started = time.monotonic()
    with pytest.raises(Shutdown):
        sup.step("a long demo load", [sys.executable, "-c", "import time; time.sleep(60)"])
    assert time.monotonic() - started < 10


def test_a_child_killed_while_the_start_up_block_waits_is_restarted_during_the_wait(tmp_path: Path) -> None:
    """`make run` waits for the server before printing its start-up block; the server dying in that
    wait must be restarted then, not after it (it once waited 90 s for a server nobody restarted)."""
    from dispatch import welcome
    from tests.support.server import free_port

    sup = Supervisor(tmp_path, backoff=Backoff(first_s=0.1), poll_s=0.05)
    child = Child("app", [sys.executable, "-c", "import time; time.sleep(60)"])
    sup.add(child)
    try:
        assert child.proc is not None
        first = child.proc.pid
        child.proc.send_signal(signal.SIGKILL)
        nobody = f"http://127.0.0.1:{free_port()}"  # the server that never answers
        assert not welcome.wait_until_serving(nobody, 2.0, between=sup.tend)
        assert child.restarts == 1 and child.proc is not None and child.proc.pid != first
        sup._on_signal(signal.SIGTERM, None)  # and a stop in that wait stops it
        with pytest.raises(Shutdown):
            welcome.wait_until_serving(nobody, 30.0, between=sup.tend)
    finally:
        sup.stop()
