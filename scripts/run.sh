#!/usr/bin/env bash
# `make run`: serve the API; unless DEMO=0, load the demo city first (idempotent: a second run
# changes nothing) and keep it alive with a mover streaming positions through the real ingest path.
#   PORT (8000), DEMO (1), DEMO_SEED (0)
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-8000}
DEMO=${DEMO:-1}
SEED=${DEMO_SEED:-0}
if [ "$DEMO" != "0" ]; then
  echo "loading the demo city (seed $SEED)…"
  .venv/bin/dispatch sim load-demo --seed "$SEED"
fi
.venv/bin/dispatch serve --port "$PORT" &
server=$!
mover=
stop() { kill $server $mover 2>/dev/null || true; wait 2>/dev/null || true; }
trap stop EXIT
trap 'exit 130' INT TERM
if [ "$DEMO" != "0" ]; then
  .venv/bin/dispatch sim live --url "http://127.0.0.1:$PORT" --seed "$SEED" &
  mover=$!
fi
if [ "$DEMO" != "0" ]; then  # sign-in tokens for the demo's screens (only hashes are stored)
  echo "demo tokens: dispatcher $(.venv/bin/dispatch token create --role dispatcher --label 'make run')"
  echo "             planner    $(.venv/bin/dispatch token create --role planner --label 'make run')"
  echo "             admin      $(.venv/bin/dispatch token create --role admin --label 'make run')"
fi
echo "serving on http://127.0.0.1:$PORT (console /, responder app /responder, planner /planner)"
wait $server
