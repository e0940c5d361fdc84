#!/usr/bin/env bash
# Runs a command with the stores of ENV up and migrated, then stops the stores this call started,
# whether the command succeeds, fails or is interrupted (Ctrl-C, or SIGTERM, which is passed on).
#   scripts/with-stores.sh ENV COMMAND...
set -euo pipefail
cd "$(dirname "$0")/.."
envname=$1; shift
scripts/setup.sh
# Stores named in the inherited DATABASE_URL/REDIS_URL are used as they are; others are started.
eval "$(scripts/stores.sh start "$envname")"
export DATABASE_URL REDIS_URL
[ -n "${REDIS_CLUSTER_URL:-}" ] && export REDIS_CLUSTER_URL
started=$STORES_STARTED
cleanup() { scripts/stores.sh stop "$envname" "$started"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
.venv/bin/alembic upgrade head >/dev/null
# bash runs a trap only once a foreground child has returned, so a SIGTERM used to wait for the
# command to end by itself: run it in the background and wait, which a signal interrupts. Ctrl-C
# reaches the command directly (same process group; `trap - INT` undoes bash's ignoring of SIGINT
# in background children); SIGTERM is passed on to it.
( trap - INT QUIT; exec "$@" ) &
child=$!
trap 'kill -TERM "$child" 2>/dev/null || true' TERM
trap ':' INT
set +e
rc=0
while kill -0 "$child" 2>/dev/null; do wait "$child"; rc=$?; done
exit $rc
