"""The planner's job runner: heavy studies in processes of their own, never in the dispatch worker.

A whole-city, 900 s placement once grew the API worker past 6 GB and took dispatch down with it.
Now each study runs in a child process (forkserver: a clean interpreter with the numeric libraries
preloaded, never a fork of the asyncio worker) with an address-space limit (`RLIMIT_AS`) set in
the child, a wall-clock limit after which the worker kills it, and at most `study_workers` at once
per worker (the rest wait, queued). A study that runs out of memory or time fails alone, as a job
with the reason, while the worker keeps serving incidents.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import resource
import time
import uuid
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from typing import Any

import anyio

from simulator import studies
from simulator.job_store import JobStore

log = logging.getLogger(__name__)
_HEARTBEAT_S = 2.0


@dataclass(frozen=True)
class Limits:
    """The bounds every study job runs within (from the settings)."""

    workers: int
    time_limit_s: float
    memory_limit_mb: int
    keep_s: float

    @classmethod
    def from_settings(cls, settings: Any) -> Limits:
        """The `study_*` settings (duck-typed: the planning domain imports no composition)."""
        return cls(
            settings.study_workers, settings.study_time_limit_s, settings.study_memory_limit_mb,
            settings.study_job_keep_s,
        )  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    """How a job ended: the body, or why it failed."""

    media_type: str | None = None
    body: bytes | None = None
    error: str | None = None


def child_main(conn: Connection, spec: studies.StudySpec, memory_limit_mb: int) -> None:
    """Entry point of the study process: cap its memory, run, send progress and then the outcome."""
    limit = memory_limit_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    last = -1

    def progress(done: int, total: int) -> None:
        nonlocal last
        share = done * 100 // max(total, 1)
        if share != last:
            last = share
            conn.send(("progress", done / max(total, 1)))

    try:
        media_type, body = studies.run(spec, progress)
    except MemoryError:
        conn.send(
            ("failed", f"the study needed more memory than its limit of {memory_limit_mb} MB "
             "(DISPATCH_STUDY_MEMORY_LIMIT_MB); try a coarser resolution or a shorter reach_s")
        )  # fmt: skip
    except Exception as exc:  # any failure is the job's, reported to the planner
        conn.send(("failed", f"the study failed: {type(exc).__name__}: {exc}"))
    else:
        conn.send(("done", media_type, body))
    finally:
        conn.close()


def _ready() -> None:
    """A study process that does nothing: starting it starts the fork server."""


class _Child:
    """One study process and the worker's end of its pipe."""

    def __init__(self, ctx: ForkServerContext, spec: studies.StudySpec, memory_limit_mb: int) -> None:
        self.conn, theirs = ctx.Pipe(duplex=False)
        self.proc: BaseProcess = ctx.Process(
            target=child_main, args=(theirs, spec, memory_limit_mb), name="study", daemon=True
        )
        self.proc.start()
        theirs.close()
        self.progress = 0.0

    def wait(self, timeout_s: float) -> Outcome | None:
        """Read what the child says for up to `timeout_s` (in a thread); None while it still runs."""
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            if not self.conn.poll(left):
                return None
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                self.proc.join(5)
                return Outcome(error=f"the study process ended unexpectedly (exit code {self.proc.exitcode})")
            if message[0] == "progress":
                self.progress = float(message[1])
            elif message[0] == "done":
                return Outcome(media_type=message[1], body=message[2])
            else:
                return Outcome(error=message[1])
        return None

    def stop(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)
        self.conn.close()


class StudyRunner:
    """Runs study jobs of one API worker: queue by a semaphore, limits, progress into the job store."""

    def __init__(self, store: JobStore, limits: Limits) -> None:
        self.store = store
        self.limits = limits
        self._slots = asyncio.Semaphore(limits.workers)
        self._ctx = multiprocessing.get_context("forkserver")
        self._ctx.set_forkserver_preload(["simulator.studies", "simulator.render", "simulator.jobs"])
        self._tasks: dict[uuid.UUID, asyncio.Task[Outcome]] = {}
        self._running: set[uuid.UUID] = set()

    def status(self, job_id: uuid.UUID) -> str:
        """queued (waiting for a slot) or running, for a job of this worker not yet finished."""
        return "running" if job_id in self._running else "queued"

    async def warm(self) -> None:
        """Start the fork server now (its preloading takes seconds), not on the first study."""

        def start() -> None:
            proc = self._ctx.Process(target=_ready, name="study-warm-up", daemon=True)
            proc.start()
            proc.join()

        try:
            await anyio.to_thread.run_sync(start)
        except Exception:  # the first study will try again, and report it if it fails
            log.warning("the study fork server did not start", exc_info=True)

    async def keep_alive(self) -> None:
        """Touch this worker's queued and running jobs every few seconds, for as long as it lives."""
        while True:
            await asyncio.sleep(_HEARTBEAT_S)
            try:
                await self.store.touch(list(self._tasks))
            except Exception:  # the database is away: the next beat tries again
                log.warning("study jobs not touched", exc_info=True)

    async def submit(self, spec: studies.StudySpec) -> uuid.UUID:
        """Record a queued job and start it; it runs on whether or not anyone waits for it."""
        job_id = await self.store.create(spec.what, self.limits.keep_s)
        task = asyncio.create_task(self._run(job_id, spec), name=f"study-{job_id}")
        self._tasks[job_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(job_id, None))
        return job_id

    async def wait(self, job_id: uuid.UUID, timeout_s: float) -> Outcome | None:
        """The outcome if the job ends within `timeout_s`, else None (it keeps running)."""
        task = self._tasks.get(job_id)
        if task is None:
            return None
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(asyncio.shield(task), timeout_s)
        return None

    async def _run(self, job_id: uuid.UUID, spec: studies.StudySpec) -> Outcome:
        async with self._slots:
            self._running.add(job_id)
            try:
                await self.store.update(job_id, status="running")
                outcome = await self._supervise(spec, job_id)
            finally:
                self._running.discard(job_id)
        if outcome.error is None:
            await self.store.update(
                job_id, status="done", progress=1.0, media_type=outcome.media_type, result=outcome.body
            )
        else:
            log.warning("study job failed", extra={"job_id": str(job_id), "error": outcome.error})
            await self.store.update(job_id, status="failed", error=outcome.error)
        return outcome

    async def _supervise(self, spec: studies.StudySpec, job_id: uuid.UUID) -> Outcome:
        """Start the child, relay its progress, kill it at the time limit."""
        limits = self.limits
        child = await anyio.to_thread.run_sync(_Child, self._ctx, spec, limits.memory_limit_mb)
        deadline = time.monotonic() + limits.time_limit_s
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return Outcome(
                        error=f"the study ran longer than its limit of {limits.time_limit_s:g} s "
                        "(DISPATCH_STUDY_TIME_LIMIT_S) and was stopped; try a coarser resolution"
                    )
                outcome = await anyio.to_thread.run_sync(child.wait, min(_HEARTBEAT_S, left))
                if outcome is not None:
                    return outcome
                await self.store.update(job_id, progress=round(child.progress, 3))
        finally:
            await anyio.to_thread.run_sync(child.stop)

    async def aclose(self) -> None:
        """On shutdown: stop every study (their children are killed) and mark the jobs failed."""
        tasks = list(self._tasks.items())
        for _, task in tasks:
            task.cancel()
        for job_id, task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            with contextlib.suppress(Exception):
                await self.store.update(job_id, status="failed", error="the service stopped; run it again")
