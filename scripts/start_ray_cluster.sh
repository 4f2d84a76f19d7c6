#!/usr/bin/env bash
# A real local multi-process Ray cluster: one head and N worker nodes, each its own `ray start`
# (separate raylets, object stores and node ids), on 127.0.0.1. Prints the address.
#   N_WORKERS=2 bash scripts/start_ray_cluster.sh
source "$(dirname "${BASH_SOURCE[0]}")/_lib.sh"
RAY="${RAY_BIN:-$ICMA_ROOT/.venv/bin/ray}"
PORT="${RAY_ICMA_RAY_PORT:-6380}"
N_WORKERS="${N_WORKERS:-1}"
CPUS="${RAY_NODE_CPUS:-2}"
ADDR="127.0.0.1:$PORT"
export RAY_ENABLE_UV_RUN_RUNTIME_ENV=0
# A local test cluster on 127.0.0.1: no token auth, explicitly, so a stray ~/.ray/auth_token left by an
# earlier ray.init() cannot turn it on for the head but not for the joining nodes.
export RAY_AUTH_MODE="${RAY_AUTH_MODE:-disabled}"
cluster_up() { "$RAY" status --address "$ADDR" >/dev/null 2>&1; }
all_nodes_up() {
  local n
  n=$("$RAY" status --address "$ADDR" 2>/dev/null | grep -c 'node_' || true)
  [ "$n" -ge $((N_WORKERS + 1)) ]
}
icma_reuse "$ADDR" cluster_up
"$RAY" start --head --node-ip-address 127.0.0.1 --port "$PORT" --num-cpus "$CPUS" \
  --dashboard-host 127.0.0.1 --include-dashboard=true --disable-usage-stats \
  --object-store-memory 1000000000 >/dev/null
for i in $(seq 1 "$N_WORKERS"); do
  "$RAY" start --address "$ADDR" --node-ip-address 127.0.0.1 --num-cpus "$CPUS" \
    --object-store-memory 500000000 --disable-usage-stats >/dev/null
done
icma_await 60 "Ray cluster at $ADDR (reaching $((N_WORKERS + 1)) nodes)" - all_nodes_up
echo "$ADDR"
