#!/usr/bin/env bash
# Stop the Prometheus that scripts/start_prometheus.sh started on this port (by its pid file only).
set -uo pipefail
PORT="${RAY_ICMA_PROMETHEUS_PORT:-9091}"
PID_FILE="${RAY_ICMA_HOME:-$HOME/.cache/ray-icma}/prometheus-$PORT/prometheus.pid"
[ -f "$PID_FILE" ] || exit 0
pid="$(cat "$PID_FILE")"
kill "$pid" 2>/dev/null && for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
rm -f "$PID_FILE"
