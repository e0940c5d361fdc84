#!/usr/bin/env bash
# `make run`: start the stores, migrate, serve the API; unless DEMO=0, load the demo city first
# (idempotent: a second run changes nothing) and keep it alive with a mover streaming positions
# through the real ingest path. `dispatch run` supervises all of it: a dead server or mover is
# restarted, and a stop (Ctrl-C, SIGTERM, or the end of WATCH_PID, the `make` that started us)
# takes down everything it started, the stores included.
#   PORT (8000), WORKERS (1), DEMO (1), DEMO_SEED (0), STORES_ENV (run), WATCH_PID (our parent)
set -euo pipefail
cd "$(dirname "$0")/.."
export WATCH_PID=${WATCH_PID:-$PPID}
exec .venv/bin/python -m dispatch.cli run
