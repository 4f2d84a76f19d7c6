#!/usr/bin/env bash
# Stop the control plane scripts/start_k8s.sh started on $RAY_ICMA_K8S_PORT (operator, apiserver,
# kine), by the pids it recorded. Keeps its SQLite state unless --wipe.
K8S_HOME="${RAY_ICMA_HOME:-$HOME/.cache/ray-icma}/k8s"
PORT="${RAY_ICMA_K8S_PORT:-6444}"
RUN="$K8S_HOME/run-$PORT"
for name in ray-operator kube-apiserver kine; do
  pidf="$RUN/$name.pid"
  [ -f "$pidf" ] || continue
  pid=$(cat "$pidf")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidf"
done
[ "${1:-}" = --wipe ] && rm -f "$RUN"/state.db* || true
