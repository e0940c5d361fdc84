"""A small process supervisor: keeps long-running children alive and takes them all down together.

`make run` used to be bash: a worker killed with `kill -9` stayed dead, and a SIGTERM or SIGKILL to
`make` alone left the app, the mover and both stores running with nobody to stop them. Here each
child runs in its own process group (so whatever it forks goes with it); a child that dies is
restarted after a growing pause, and every death and restart is logged; SIGTERM, SIGINT or SIGHUP
stops the children in reverse order of start, as does the death of a watched process (the `make`
that started us), so nothing outlives the command that launched it. Children also get SIGTERM from
the kernel should the supervisor itself be killed outright (Linux's parent-death signal).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

log = logging.getLogger("dispatch.supervisor")

_PR_SET_PDEATHSIG = 1


class Shutdown(Exception):
    """Raised out of a wait when the supervisor must stop (a signal, or the watched process died)."""


@dataclass(frozen=True)
class Backoff:
    """Pause before a restart: `first`, doubling per quick death up to `longest`; a child that
    stayed up for `stable_s` is healthy again and its next restart is quick."""

    first_s: float = 1.0
    longest_s: float = 30.0
    stable_s: float = 30.0

    def next_delay(self, previous_s: float | None, uptime_s: float) -> float:
        if previous_s is None or uptime_s >= self.stable_s:
            return self.first_s
        return min(previous_s * 2, self.longest_s)


@dataclass
class Child:
    """One supervised program; `argv` is started again each time it dies."""

    name: str
    argv: Sequence[str]
    grace_s: float = 10.0
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    delay_s: float | None = None
    restart_at: float | None = None
    restarts: int = 0

    def start(self, cwd: Path) -> None:
        self.proc = subprocess.Popen(
            list(self.argv),
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self.started_at = time.monotonic()
        self.restart_at = None
        log.info("%s started (pid %d)", self.name, self.proc.pid)

    def stop(self) -> None:
        """SIGTERM to the child's group, SIGKILL to whatever is left after `grace_s`."""
        if self.proc is None:
            return
        _signal_group(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(self.grace_s)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %.0f s: killing it", self.name, self.grace_s)
        _signal_group(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        log.info("%s stopped", self.name)
        self.proc = None


def _die_with_parent() -> None:  # runs in the child between fork and exec
    """Ask the kernel for SIGTERM when the supervisor dies, even by SIGKILL (Linux only)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group is already empty
        os.killpg(pgid, sig)


def _describe(returncode: int) -> str:
    if returncode < 0:
        return f"was killed by {signal.Signals(-returncode).name}"
    return f"exited with code {returncode}"


@dataclass
class Watched:
    """A process whose end means ours (pid and start time, so a reused pid is not mistaken)."""

    pid: int
    created: float = field(init=False)

    def __post_init__(self) -> None:
        self.created = psutil.Process(self.pid).create_time()

    def alive(self) -> bool:
        try:
            proc = psutil.Process(self.pid)
            return proc.create_time() == self.created and proc.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False


class Supervisor:
    """Starts helper steps and long-running children, keeps the children alive, stops everything.

    A signal only marks the supervisor as stopping; every wait (a start-up step, the watch loop)
    checks the mark each `poll_s` and raises `Shutdown`, so a Ctrl-C during a long demo load stops
    as promptly as one while serving, and never half-way through starting a process.
    """

    def __init__(
        self,
        cwd: Path,
        watch_pid: int | None = None,
        backoff: Backoff | None = None,
        poll_s: float = 0.25,
    ) -> None:
        self.cwd = cwd
        self.watched = Watched(watch_pid) if watch_pid else None
        self.backoff = backoff or Backoff()
        self.poll_s = poll_s
        self.children: list[Child] = []
        self.signum: int | None = None

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, _frame: object) -> None:
        # Only noted: a second Ctrl-C while stopping must not cut the clean-up short.
        self.signum = self.signum or signum

    def check(self) -> None:
        """Raise `Shutdown` on a signal, or when the watched process is gone."""
        if self.signum is not None:
            log.info("received %s: stopping", signal.Signals(self.signum).name)
            raise Shutdown
        if self.watched is not None and not self.watched.alive():
            log.warning("process %d that started us is gone: stopping", self.watched.pid)
            self.watched = None
            raise Shutdown

    def step(self, name: str, argv: Sequence[str], capture: bool = False) -> str:
        """Run a start-up step to its end (watching as we wait); its output if `capture`."""
        log.info("%s…", name)
        proc = subprocess.Popen(
            list(argv), cwd=self.cwd, stdout=subprocess.PIPE if capture else None, text=True
        )
        try:
            while True:
                try:
                    out, _ = proc.communicate(timeout=self.poll_s)
                    break
                except subprocess.TimeoutExpired:
                    self.check()
        except BaseException:
            proc.terminate()
            proc.wait()
            raise
        if proc.returncode != 0:
            raise RuntimeError(f"{name} failed ({_describe(proc.returncode)})")
        return out or ""

    def add(self, child: Child) -> None:
        child.start(self.cwd)
        self.children.append(child)

    def keep_alive(self) -> None:
        """Restart dead children (each after its backoff) until a signal or the watchdog says stop."""
        while True:
            self.tend()
            time.sleep(self.poll_s)

    def tend(self) -> None:
        """One round of keeping alive: stop on a signal, restart what died. Whatever waits on the
        children after they started (the start-up block waits for the server) calls it between
        its polls: a server killed meanwhile must not wait for a wait that waits for it."""
        self.check()
        now = time.monotonic()
        for child in self.children:
            self._tend(child, now)

    def _tend(self, child: Child, now: float) -> None:
        if child.restart_at is not None:
            if now >= child.restart_at:
                child.restarts += 1
                child.start(self.cwd)
            return
        assert child.proc is not None
        code = child.proc.poll()
        if code is None:
            return
        _signal_group(child.proc.pid, signal.SIGKILL)  # what it forked (uvicorn's workers) goes too
        child.delay_s = self.backoff.next_delay(child.delay_s, now - child.started_at)
        child.restart_at = now + child.delay_s
        log.error(
            "%s (pid %d) %s: restarting in %.0f s",
            *(child.name, child.proc.pid, _describe(code), child.delay_s),
        )
        child.proc = None

    def stop(self) -> None:
        """Stop the children, last started first."""
        for child in reversed(self.children):
            child.stop()
