#!/usr/bin/env bash
# Runs a command with the stores of ENV up and migrated, then stops the stores this call started,
# whether the command succeeds, fails or is interrupted (Ctrl-C).
#   scripts/with-stores.sh ENV COMMAND...
set -euo pipefail
cd "$(dirname "$0")/.."
envname=$1; shift
scripts/setup.sh
# Stores named in the inherited DATABASE_URL/REDIS_URL are used as they are; others are started.
eval "$(scripts/stores.sh start "$envname")"
export DATABASE_URL REDIS_URL
started=$STORES_STARTED
cleanup() { scripts/stores.sh stop "$envname" "$started"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
.venv/bin/alembic upgrade head >/dev/null
set +e
"$@"
rc=$?
set -e
exit $rc
