#!/usr/bin/env bash
# A Ray cluster of separate hosts on one machine: the head in the root namespace on a bridge,
# each worker node in its own network namespace with its own address (veth to the bridge).
# These are this project's own test hosts (192.168.213.0/24 exists only inside this machine).
#   sudo bash scripts/netns_ray_cluster.sh up [N_WORKERS]    # prints the head address
#   sudo bash scripts/netns_ray_cluster.sh kill-node I       # hard-kill worker node I (all its processes)
#   sudo bash scripts/netns_ray_cluster.sh start-node I      # (re)start worker node I
#   sudo bash scripts/netns_ray_cluster.sh down
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RAY="${RAY_BIN:-$ROOT/.venv/bin/ray}"
BR=icmabr0; NET=192.168.213; PORT="${RAY_ICMA_NETNS_PORT:-6390}"
HEAD="$NET.1:$PORT"
CPUS="${RAY_NODE_CPUS:-2}"
# Its own temp dir: `ray start --head` writes <temp-dir>/ray_current_cluster and session_latest, so the
# default /tmp/ray (what `ray.init()` of other clusters on this machine reads) stays untouched, and
# `down` can find exactly this cluster's processes by that path.
TMP="${RAY_ICMA_NETNS_TMP:-/tmp/ray-icma-netns}"
export RAY_ENABLE_UV_RUN_RUNTIME_ENV=0
# Ray turns token auth on for a new head when ~/.ray/auth_token exists (any local `ray.init()`
# may have written one) while `ray start --address` nodes may not send it: say which mode this
# test cluster uses so every node agrees (a private bridge; set RAY_AUTH_MODE=token to test auth).
export RAY_AUTH_MODE="${RAY_AUTH_MODE:-disabled}"
# On a loaded 2-core box a node's dashboard agent can take longer than the raylet's default wait for
# its ports; give it two minutes instead of failing the node.
export RAY_agent_register_timeout_ms="${RAY_agent_register_timeout_ms:-120000}"

node_up() {  # $1 = index (1..)
  local i=$1 ns="icma-n$1" ip="$NET.$(( $1 + 1 ))"
  if ! ip netns list | grep -qw "$ns"; then
    ip netns add "$ns"
    ip link del "veth-n$i" 2>/dev/null || true   # left over from a namespace deleted while busy
    ip link add "veth-n$i" type veth peer name eth0 netns "$ns"
    ip link set "veth-n$i" master "$BR" up
    ip -n "$ns" addr add "$ip/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
    ip -n "$ns" route add default via "$NET.1"
  fi
  # Per-node temp dir (as on separate hosts: own logs, own log monitor); gloo/NCCL told to use the
  # node's own interface, since the machine's hostname resolves to 127.0.0.1 in every namespace;
  # this cluster's own torch extension cache, so DeepSpeed's JIT-built CPU ops are compiled once
  # for it (like ops baked into a node image) and not rebuilt under a restarted worker's feet
  # when other processes on the machine rebuild the shared ~/.cache/torch_extensions.
  ip netns exec "$ns" env GLOO_SOCKET_IFNAME=eth0 NCCL_SOCKET_IFNAME=eth0 \
    TORCH_EXTENSIONS_DIR="${TORCH_EXTENSIONS_DIR:-$TMP/torch_extensions}" \
    "$RAY" start --address "$HEAD" --node-ip-address "$ip" --num-cpus "$CPUS" \
    --temp-dir "$TMP/n$i" --object-store-memory 300000000 --disable-usage-stats >/dev/null
}

listeners() {  # pids of processes listening on the head's bridge address
  { ss -Htlnp "src $NET.1" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u | tr '\n' ' '; } || true
}

case "${1:-up}" in
  up)
    n="${2:-2}"
    if [ -n "$(listeners)" ]; then
      echo "processes still listen on $NET.1 (pids $(listeners)): a previous netns cluster is up; run '$0 down' first" >&2
      exit 1
    fi
    if ! ip link show "$BR" >/dev/null 2>&1; then
      ip link add "$BR" type bridge
      ip addr add "$NET.1/24" dev "$BR"
      ip link set "$BR" up
    fi
    "$RAY" start --head --node-ip-address "$NET.1" --port "$PORT" --num-cpus "${HEAD_CPUS:-0}" \
      --dashboard-host "$NET.1" --dashboard-port "${RAY_ICMA_NETNS_DASHBOARD:-8275}" \
      --ray-client-server-port 25011 --dashboard-agent-listen-port 52375 \
      --min-worker-port 20000 --max-worker-port 24999 --temp-dir "$TMP" --object-store-memory 300000000 --disable-usage-stats >/dev/null
    for i in $(seq 1 "$n"); do node_up "$i"; done
    for _ in $(seq 1 60); do
      c=$("$RAY" status --address "$HEAD" 2>/dev/null | grep -c ' node_' || true)
      [ "$c" -ge $((n + 1)) ] && { echo "$HEAD"; exit 0; }
      sleep 1
    done
    echo "netns Ray cluster did not reach $((n + 1)) nodes" >&2; exit 1 ;;
  kill-node)
    pids=$(ip netns pids "icma-n$2" || true)
    [ -n "$pids" ] && kill -9 $pids
    echo "killed node $2 ($(echo $pids | wc -w) processes)" ;;
  start-node) node_up "$2" ;;
  down)
    for ns in $(ip netns list | awk '/^icma-n/{print $1}'); do
      pids=$(ip netns pids "$ns" || true); [ -n "$pids" ] && kill -9 $pids || true
      ip link del "veth-${ns#icma-}" 2>/dev/null || true   # the pair goes too; netns del alone is lazy
      ip netns del "$ns"
    done
    for link in $(ip -o link show | awk -F': ' '{print $2}' | grep -o '^veth-n[0-9]*' || true); do
      ip link del "$link" 2>/dev/null || true
    done
    # the head: only the processes of this cluster (never `ray stop`, which would kill every cluster)
    # (only the processes whose command line names this cluster's own temp dir)
    pids=$(pgrep -f -- "$TMP/" || true); [ -n "$pids" ] && kill -9 $pids || true
    # and every process still listening on the head's bridge address: Ray's workers on the head rename
    # themselves (ray::ServeController, ray::JobSupervisor...) and an orphan that inherited a listening
    # socket kept the agent's fixed port, so the next `up` had a head without a job agent
    for _ in $(seq 1 20); do
      pids=$(listeners); [ -z "$pids" ] && break
      kill -9 $pids 2>/dev/null || true; sleep 0.5
    done
    ip link del "$BR" 2>/dev/null || true ;;
esac
