#!/usr/bin/env bash
# Stop the Elasticsearch started by start_elasticsearch.sh on $RAY_ICMA_ES_PORT (default 9200).
HOME_DIR="${RAY_ICMA_HOME:-$HOME/.cache/ray-icma}"
PORT="${RAY_ICMA_ES_PORT:-9200}"
pidf="$HOME_DIR/es-run-$PORT/es.pid"
if [ -f "$pidf" ]; then
  pid=$(cat "$pidf")
  kill "$pid" 2>/dev/null && for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
fi
rm -f "$pidf"
