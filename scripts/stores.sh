#!/usr/bin/env bash
# Starts or stops the project's own PostgreSQL+PostGIS cluster and Redis server.
#   scripts/stores.sh start ENV    (ENV = run | test | fault | run-NAME | test-NAME) prints the export lines
#   scripts/stores.sh stop ENV     for the URLs
#   scripts/stores.sh hold ENV STARTED   waits; on SIGTERM, SIGINT or SIGHUP stops the stores named
#                                        in STARTED (what `start` printed), then ends
# Each ENV has its own data directory and ports, never the machine's defaults nor a system service.
# A named ENV (run-NAME, test-NAME: a test of `make run` itself, say) behaves as run or test with
# a data directory of its own, on the PG_PORT and REDIS_PORT it must be given.
# When DATABASE_URL / REDIS_URL are set, that store is not started: the given server is used.
# A test env also has a real 3-primary Redis Cluster (scripts/redis-cluster.sh) on REDIS_CLUSTER_PORT
# and the two ports after it, printed as REDIS_CLUSTER_URL (unless REDIS_CLUSTER_URL is set): the
# live store and dispatch tests run against both the single server and the cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
action=${1:?start|stop|status}
envname=${2:-run}

case "$envname" in
  run)  PG_PORT=${PG_PORT:-55432}; REDIS_PORT=${REDIS_PORT:-56379} ;;
  test) PG_PORT=${PG_PORT:-55442}; REDIS_PORT=${REDIS_PORT:-56389}; REDIS_CLUSTER_PORT=${REDIS_CLUSTER_PORT:-53800} ;;
  fault) PG_PORT=${PG_PORT:-55452}; REDIS_PORT=${REDIS_PORT:-56399} ;;  # stopped and restarted by tests/integration/test_faults.py
  run-?*)
    : "${PG_PORT:?a named env needs PG_PORT}" "${REDIS_PORT:?a named env needs REDIS_PORT}" ;;
  test-?*)
    : "${PG_PORT:?a named env needs PG_PORT}" "${REDIS_PORT:?a named env needs REDIS_PORT}"
    : "${REDIS_CLUSTER_PORT:?a named test env needs REDIS_CLUSTER_PORT (3 ports from it, at most 55533)}" ;;
  *) echo "stores: unknown env $envname" >&2; exit 2 ;;
esac
kind=${envname%%-*}
# fsync=off makes the test suite's many small commits cheap, and a crash there loses nothing of
# value; the run cluster holds real incidents, so it keeps PostgreSQL's durability (fsync on).
case "$kind" in
  run)  DB=rescue; PG_DURABILITY= ;;
  test) DB=rescue_test; PG_DURABILITY="-c fsync=off" ;;
  fault) DB=rescue_fault; PG_DURABILITY="-c fsync=off" ;;
esac
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)

# PostgreSQL refuses to run as root, so the cluster belongs to the 'postgres' user, which must be
# able to reach the data directory. A checkout under a root-only path (/root) is not reachable:
# then the data lives under /var/tmp instead, keyed by the checkout's path.
data_root() {
  local here; here=$(pwd)
  local d="$here/.data"
  if [ "$(id -u)" = "0" ] && ! runuser -u postgres -- test -x "$here" 2>/dev/null; then
    d="/var/tmp/rescue-circle-$(echo -n "$here" | sha256sum | cut -c1-12)"
  fi
  echo "$d"
}
DATA=$(data_root)/$envname
PGDATA=$DATA/pg
REDIS_DIR=$DATA/redis

as_pg() { if [ "$(id -u)" = "0" ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

start_pg() {
  if [ -n "${DATABASE_URL:-}" ]; then return; fi
  mkdir -p "$DATA"
  if [ "$(id -u)" = "0" ]; then chown postgres: "$DATA" "$(dirname "$DATA")"; chmod 755 "$(dirname "$DATA")"; fi
  if [ ! -f "$PGDATA/PG_VERSION" ]; then
    as_pg "$PG_BIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  if ! as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w -t 60 \
      -o "-p $PG_PORT -k $PGDATA -c listen_addresses=127.0.0.1 $PG_DURABILITY -c max_connections=300" start >/dev/null
    STARTED+=(pg)
  fi
  local psql=("$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qtA)
  as_pg "${psql[@]}" -d postgres -c "SELECT 1 FROM pg_roles WHERE rolname='rescue'" | grep -q 1 \
    || as_pg "${psql[@]}" -d postgres -c "CREATE ROLE rescue LOGIN SUPERUSER" >/dev/null
  as_pg "${psql[@]}" -d postgres -c "SELECT 1 FROM pg_database WHERE datname='$DB'" | grep -q 1 \
    || as_pg "${psql[@]}" -d postgres -c "CREATE DATABASE $DB OWNER rescue" >/dev/null
  as_pg "${psql[@]}" -d "$DB" -c "SET client_min_messages=warning; CREATE EXTENSION IF NOT EXISTS postgis" >/dev/null
}

start_redis() {
  if [ -n "${REDIS_URL:-}" ]; then return; fi
  mkdir -p "$REDIS_DIR"
  if ! redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$REDIS_DIR" --daemonize yes \
      --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" --save "" --appendonly no >/dev/null
    STARTED+=(redis)
    for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  fi
}

# The test env's cluster: three primaries, no replicas (the failover test starts one of its own).
start_cluster() {
  if [ "$kind" != test ] || [ -n "${REDIS_CLUSTER_URL:-}" ]; then return; fi
  if ! redis-cli -p "$REDIS_CLUSTER_PORT" ping >/dev/null 2>&1; then STARTED+=(cluster); fi
  REDIS_CLUSTER_URL=$(scripts/redis-cluster.sh start "$DATA/cluster" "$REDIS_CLUSTER_PORT" 3 0)
}

STARTED=()
case "$action" in
  start)
    start_pg; start_redis; start_cluster
    echo "export STORES_STARTED='${STARTED[*]:-}'"
    echo "export DATABASE_URL=${DATABASE_URL:-postgresql+asyncpg://rescue@127.0.0.1:$PG_PORT/$DB}"
    echo "export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/0}"
    if [ -n "${REDIS_CLUSTER_URL:-}" ]; then echo "export REDIS_CLUSTER_URL=$REDIS_CLUSTER_URL"; fi
    ;;
  stop)
    # With a third argument, stop exactly the stores named in it (what one invocation started);
    # without, stop whichever of our stores the environment does not point elsewhere.
    if [ $# -ge 3 ]; then only=$3; else
      only=""
      [ -z "${DATABASE_URL:-}" ] && only+=" pg"
      [ -z "${REDIS_URL:-}" ] && only+=" redis"
      [ -z "${REDIS_CLUSTER_URL:-}" ] && only+=" cluster"
    fi
    if [[ " $only " == *" pg "* ]] && [ -f "$PGDATA/PG_VERSION" ]; then
      as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1 || true
    fi
    if [[ " $only " == *" redis "* ]]; then redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true; fi
    if [[ " $only " == *" cluster "* ]] && [ "$kind" = test ]; then
      scripts/redis-cluster.sh stop "$DATA/cluster" "$REDIS_CLUSTER_PORT" 3 0
    fi
    ;;
  hold)
    # `make run`'s supervisor starts this as a child that the kernel signals when the supervisor
    # dies, however it dies: the stores are stopped on a clean stop and after a SIGKILL alike.
    trap 'exec scripts/stores.sh stop "$envname" "${3:-}"' TERM INT HUP
    while :; do sleep 1 & wait $! || true; done
    ;;
  status)
    as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" status || true
    redis-cli -p "$REDIS_PORT" ping || true
    ;;
esac
