#!/usr/bin/env bash
# Starts or stops a real Redis Cluster of local nodes (Debian's redis-server and redis-cli), each
# node a `redis-server --cluster-enabled yes` on its own port with its own directory.
#   scripts/redis-cluster.sh start DIR FIRST_PORT [PRIMARIES=3] [REPLICAS=0]   prints the seed URL
#   scripts/redis-cluster.sh stop  DIR FIRST_PORT [PRIMARIES=3] [REPLICAS=0]
# Ports (at most 55535: each node also listens on its port + 10000 for the cluster bus) FIRST_PORT .. FIRST_PORT + PRIMARIES * (1 + REPLICAS) - 1 are used; `redis-cli --cluster
# create` assigns the first PRIMARIES nodes the 16,384 slots and the others as their replicas.
# Starting a cluster that already answers (every slot served) does nothing but print its URL.
# No persistence: like the single Redis of `make test`, a stopped node comes back empty.
set -euo pipefail
action=${1:?start|stop}
dir=${2:?data directory}
first=${3:?first port}
primaries=${4:-3}
replicas=${5:-0}
count=$((primaries * (1 + replicas)))
ports=$(seq "$first" $((first + count - 1)))

node_up() { redis-cli -p "$1" ping >/dev/null 2>&1; }

start_node() {
  local port=$1 d="$dir/$1"
  mkdir -p "$d"
  node_up "$port" && return
  rm -f "$d/nodes.conf"  # a node that lost its data must not remember slots it no longer holds
  redis-server --port "$port" --bind 127.0.0.1 --dir "$d" --daemonize yes \
    --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 2000 \
    --cluster-replica-validity-factor 0 --cluster-require-full-coverage no \
    --pidfile "$d/redis.pid" --logfile "$d/redis.log" --save "" --appendonly no >/dev/null
  for _ in $(seq 50); do node_up "$port" && return; sleep 0.1; done
  echo "redis-cluster: node $port did not start (see $d/redis.log)" >&2
  exit 1
}

cluster_ok() { redis-cli -p "$first" cluster info 2>/dev/null | grep -q "cluster_state:ok"; }

case "$action" in
  start)
    if ! cluster_ok; then
      for port in $ports; do start_node "$port"; done
      # nodes left from an interrupted run hold half a cluster: reset them all and create anew
      for port in $ports; do redis-cli -p "$port" flushall >/dev/null 2>&1 || true; done
      for port in $ports; do redis-cli -p "$port" cluster reset hard >/dev/null; done
      nodes=(); for port in $ports; do nodes+=("127.0.0.1:$port"); done
      redis-cli --cluster create "${nodes[@]}" --cluster-replicas "$replicas" --cluster-yes >/dev/null
      for _ in $(seq 100); do cluster_ok && break; sleep 0.1; done
      cluster_ok || { echo "redis-cluster: cluster on $first did not become ok" >&2; exit 1; }
    fi
    echo "redis://127.0.0.1:$first/0"
    ;;
  stop)
    for port in $ports; do redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; done
    ;;
  *) echo "redis-cluster: unknown action $action" >&2; exit 2 ;;
esac
