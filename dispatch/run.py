"""`make run` as one supervised process tree: stores, migrations, demo city, API server, mover.

Why Python and not bash traps: bash runs a trap only after the foreground child returns, so a
SIGTERM to the script waited for the server to end by itself, and nothing in bash watched for a
dead worker or a vanished `make`. The supervisor (`dispatch.supervisor`) does those three jobs in
one small loop that a test can drive. uvicorn's own multi-process manager already restarts a dead
worker when `workers > 1` (and pings them for hangs), so it is used for that; the supervisor
restarts the server process as a whole, which with one worker is the worker itself.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from dispatch import welcome
from dispatch.supervisor import Child, Shutdown, Supervisor

log = logging.getLogger("dispatch.run")
ROOT = Path(__file__).resolve().parent.parent
CLI = (sys.executable, "-m", "dispatch.cli")
WELCOME_WAIT_S = 90.0  # for the server to answer, then for the mover to have someone on duty


@dataclass(frozen=True)
class RunOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    demo: bool = True
    seed: int = 0
    stores_env: str = "run"
    watch_pid: int | None = None


def _exports(text: str) -> dict[str, str]:
    """The `export NAME=value` lines that `scripts/stores.sh start` prints, as a dict."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, value = words[1].split("=", 1)
            found[name] = value
    return found


def _start_stores(sup: Supervisor, stores_env: str) -> None:
    """Start the stores (unless DATABASE_URL / REDIS_URL point elsewhere) and put their URLs in our
    environment; a keeper child stops what was started when we stop or die."""
    exports = _exports(
        sup.step("starting the stores", ["scripts/stores.sh", "start", stores_env], capture=True)
    )
    started = exports.pop("STORES_STARTED", "")
    os.environ.update(exports)
    sup.add(Child("stores", ["scripts/stores.sh", "hold", stores_env, started], grace_s=60.0))


def _welcome(sup: Supervisor, options: RunOptions, url: str) -> None:
    """Print the start-up block once the server answers: with the demo, tokens for every role (an
    admin token from the CLI, the rest through the API with it)."""
    if not welcome.wait_until_serving(url, WELCOME_WAIT_S, between=sup.tend):
        log.warning("%s did not answer /healthz within %.0f s", url, WELCOME_WAIT_S)
        return
    tokens: dict[str, str] = {}
    responder = None
    if options.demo:
        create = [*CLI, "token", "create", "--role", "admin", "--label", "make run"]
        admin = sup.step("creating the admin token", create, capture=True).strip()
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin}"}, timeout=30) as http:
            tokens = welcome.staff_tokens(http, "make run")
            responder = welcome.demo_responder(http, wait_s=WELCOME_WAIT_S, between=sup.tend)
        tokens["admin"] = admin
    block = welcome.startup_block(url, tokens, responder, demo=options.demo, workers=options.workers)
    print(block, flush=True)


def run(options: RunOptions) -> int:
    """Bring everything up, keep it up until told to stop, then take it all down; the exit code."""
    sup = Supervisor(ROOT, watch_pid=options.watch_pid)
    sup.install_signal_handlers()
    code = 0
    try:
        _start_stores(sup, options.stores_env)
        sup.step("migrating the database", [sys.executable, "-m", "alembic", "upgrade", "head"])
        if options.demo:
            load = [*CLI, "sim", "load-demo", "--seed", str(options.seed)]
            sup.step(f"loading the demo city (seed {options.seed})", load)
        url = f"http://{options.host}:{options.port}"
        serve = [*CLI, "serve", "--host", options.host, "--port", str(options.port)]
        sup.add(Child("app", [*serve, "--workers", str(options.workers)]))
        if options.demo:
            sup.add(Child("mover", [*CLI, "sim", "live", "--url", url, "--seed", str(options.seed)]))
        _welcome(sup, options, url)
        sup.keep_alive()
    except Shutdown:
        code = 128 + sup.signum if sup.signum else 0
    except RuntimeError as exc:  # a start-up step failed; its own output said why
        log.error("%s", exc)
        code = 1
    finally:
        sup.stop()
    return code
