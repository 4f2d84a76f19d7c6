#!/usr/bin/env bash
# Start the Elasticsearch that install_elasticsearch.sh unpacked, single node on 127.0.0.1,
# security off, 512 MB heap, and wait until cluster health is yellow or green.
# Prints the URL. Idempotent: an ES already answering on the port is reused.
set -euo pipefail
HOME_DIR="${RAY_ICMA_HOME:-$HOME/.cache/ray-icma}"
PORT="${RAY_ICMA_ES_PORT:-9200}"
URL="http://127.0.0.1:$PORT"
health() { curl -fsS -m 2 "$URL/_cluster/health?wait_for_status=yellow&timeout=1s" >/dev/null 2>&1; }
if health; then echo "$URL"; exit 0; fi
[ -f "$HOME_DIR/elasticsearch.env" ] || { echo "Elasticsearch is not installed: run scripts/setup.sh" >&2; exit 1; }
# shellcheck disable=SC1091
source "$HOME_DIR/elasticsearch.env"
DATA="$HOME_DIR/es-data-$PORT"; LOGS="$HOME_DIR/es-logs-$PORT"; RUN="$HOME_DIR/es-run-$PORT"
mkdir -p "$DATA" "$LOGS" "$RUN"; chown "$ES_USER" "$DATA" "$LOGS" "$RUN"
su -s /bin/bash "$ES_USER" -c "ES_JAVA_HOME='$ES_JAVA_HOME' ES_JAVA_OPTS='-Xms512m -Xmx512m' \
  '$ES_DIR/bin/elasticsearch' -d -p '$RUN/es.pid' \
  -E discovery.type=single-node -E xpack.security.enabled=false \
  -E network.host=127.0.0.1 -E http.port=$PORT -E transport.port=$((PORT + 100)) \
  -E path.data='$DATA' -E path.logs='$LOGS' -E cluster.routing.allocation.disk.threshold_enabled=false" \
  >"$LOGS/stdout.log" 2>&1 || { cat "$LOGS/stdout.log" >&2; exit 1; }
for _ in $(seq 1 90); do
  if health; then echo "$URL"; exit 0; fi
  sleep 1
done
echo "Elasticsearch did not become healthy on $URL within 90 s; logs in $LOGS" >&2
tail -n 30 "$LOGS"/*.log >&2 || true
exit 1
