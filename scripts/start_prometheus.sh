#!/usr/bin/env bash
# Start a real Prometheus (Debian's `prometheus` package) on 127.0.0.1 that scrapes the local Ray cluster's
# metrics (every node's metrics agent, found through the service-discovery file Ray's head writes) and loads
# the recording/alerting rules of cluster/monitoring/. Prints the URL. Idempotent: a Prometheus already
# answering on the port is reused.
#   bash scripts/start_prometheus.sh        # -> http://127.0.0.1:9091
source "$(dirname "${BASH_SOURCE[0]}")/_lib.sh"
PORT="${RAY_ICMA_PROMETHEUS_PORT:-9091}"
URL="http://127.0.0.1:$PORT"
SD_FILE="${RAY_ICMA_RAY_SD_FILE:-/tmp/ray/prom_metrics_service_discovery.json}"
ready() { curl -fsS -m 2 "$URL/-/ready" >/dev/null 2>&1; }
icma_reuse "$URL" ready
PROM="$(command -v prometheus || true)"
[ -n "$PROM" ] || { echo "prometheus is not installed: run scripts/setup.sh (apt-get install prometheus)" >&2; exit 1; }
RUN="$ICMA_HOME/prometheus-$PORT"; mkdir -p "$RUN/data"
cat > "$RUN/prometheus.yml" <<YAML
global:
  scrape_interval: 2s          # test setting: series show up within seconds (production: 15s)
  evaluation_interval: 2s
rule_files:
  - $ICMA_ROOT/cluster/monitoring/rules.yml
scrape_configs:
  - job_name: ray
    file_sd_configs:
      - files: ['$SD_FILE']
        refresh_interval: 5s
YAML
icma_spawn "$RUN/prometheus.pid" "$RUN/prometheus.log" \
  "$PROM" --config.file="$RUN/prometheus.yml" --storage.tsdb.path="$RUN/data" \
  --storage.tsdb.retention.time=1d --web.listen-address="127.0.0.1:$PORT"
icma_await 60 "Prometheus on $URL" "$RUN/prometheus.log" ready icma_alive "$RUN/prometheus.pid"
echo "$URL"
