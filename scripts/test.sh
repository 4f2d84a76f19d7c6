#!/usr/bin/env bash
# The test command (README command 2): installs what is missing, starts the real services
# (Elasticsearch, a local multi-process Ray cluster), runs pytest, and stops what it started.
# Under CI=true a service that does not come up fails the run instead of skipping its tests.
#   bash scripts/test.sh                 # whole suite
#   bash scripts/test.sh tests/retrieval -k bm25
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh || exit 1
export RAY_AUTH_MODE="${RAY_AUTH_MODE:-disabled}"   # same mode as the test clusters
in_ci=0; case "${CI:-}" in 1|true|TRUE|yes) in_ci=1;; esac
started_es=0; started_ray=0; started_prom=0; started_k8s=0
cleanup() {
  [ $started_ray = 1 ] && .venv/bin/ray stop --force >/dev/null 2>&1
  [ $started_es = 1 ] && bash scripts/stop_elasticsearch.sh
  [ $started_prom = 1 ] && bash scripts/stop_prometheus.sh
  [ $started_k8s = 1 ] && bash scripts/stop_k8s.sh
}
trap cleanup EXIT
es_up() { curl -fsS -m 2 "http://127.0.0.1:${RAY_ICMA_ES_PORT:-9200}/_cluster/health" >/dev/null 2>&1; }
ray_up() { .venv/bin/ray status --address "127.0.0.1:${RAY_ICMA_RAY_PORT:-6380}" >/dev/null 2>&1; }
if [ -z "${RAY_ICMA_ES_URL:-}" ]; then
  es_up && es_was_up=1 || es_was_up=0
  if url=$(bash scripts/start_elasticsearch.sh); then
    export RAY_ICMA_ES_URL="$url"; [ $es_was_up = 1 ] || started_es=1
  elif [ $in_ci = 1 ]; then echo "FAIL: Elasticsearch did not start under CI" >&2; exit 1
  else echo "warning: Elasticsearch did not start; its tests will skip" >&2; fi
fi
if [ -z "${RAY_ADDRESS:-}" ]; then
  ray_up && ray_was_up=1 || ray_was_up=0
  if addr=$(N_WORKERS="${N_WORKERS:-1}" bash scripts/start_ray_cluster.sh); then
    export RAY_ADDRESS="$addr"; [ $ray_was_up = 1 ] || started_ray=1
  elif [ $in_ci = 1 ]; then echo "FAIL: Ray cluster did not start under CI" >&2; exit 1
  else echo "warning: Ray cluster did not start; Ray tests use a local ray.init()" >&2; fi
fi
if [ -z "${RAY_ICMA_KUBECONFIG:-}" ] && [ "${SKIP_K8S:-0}" != 1 ]; then
  # a real control plane (kube-apiserver + kine + KubeRay operator) for tests/cluster
  k8s_was_up=0; [ -f "${RAY_ICMA_HOME:-$HOME/.cache/ray-icma}/k8s/run-${RAY_ICMA_K8S_PORT:-6444}/kine.pid" ] && k8s_was_up=1
  if kcfg=$(bash scripts/start_k8s.sh); then
    export RAY_ICMA_KUBECONFIG="$kcfg"; [ $k8s_was_up = 1 ] || started_k8s=1
  elif [ $in_ci = 1 ]; then echo "FAIL: Kubernetes control plane did not start under CI" >&2; exit 1
  else echo "warning: Kubernetes control plane did not start; its tests will skip" >&2; fi
fi
if [ -z "${RAY_ICMA_PROMETHEUS_URL:-}" ]; then
  # a real Prometheus scraping the Ray cluster's metrics, with cluster/monitoring/rules.yml (tests/serve/test_monitoring.py)
  prom_was_up=0; curl -fsS -m 2 "http://127.0.0.1:${RAY_ICMA_PROMETHEUS_PORT:-9091}/-/ready" >/dev/null 2>&1 && prom_was_up=1
  if purl=$(bash scripts/start_prometheus.sh); then
    export RAY_ICMA_PROMETHEUS_URL="$purl"; [ $prom_was_up = 1 ] || started_prom=1
  elif [ $in_ci = 1 ]; then echo "FAIL: Prometheus did not start under CI" >&2; exit 1
  else echo "warning: Prometheus did not start; its tests will skip" >&2; fi
fi
echo "Elasticsearch: ${RAY_ICMA_ES_URL:-none}   Ray: ${RAY_ADDRESS:-local}   Kubernetes: ${RAY_ICMA_KUBECONFIG:-none}"
.venv/bin/python -m pytest "$@"
rc=$?
[ $rc = 5 ] && { echo "no tests collected" >&2; rc=1; }
exit $rc
