#!/usr/bin/env bash
# Install the CRDs the manifests in cluster/ use into the control plane in $KUBECONFIG, from the Go
# modules that ship them (scripts/setup.sh downloads them): KubeRay v1.5.0 (RayCluster/RayJob/RayService),
# ECK v3.5.0 (Elasticsearch...), prometheus-operator v0.85.0 (PodMonitor/ServiceMonitor). Waits until
# each is Established. Idempotent (server-side apply).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KUBECTL="${KUBECTL:-$( [ -x "$ROOT/.venv/bin/kubectl" ] && echo "$ROOT/.venv/bin/kubectl" || command -v kubectl)}"
MOD="$(go env GOMODCACHE)"
files=(
  "$MOD/github.com/ray-project/kuberay/ray-operator@v1.5.0/config/crd/bases/ray.io_rayclusters.yaml"
  "$MOD/github.com/ray-project/kuberay/ray-operator@v1.5.0/config/crd/bases/ray.io_rayjobs.yaml"
  "$MOD/github.com/ray-project/kuberay/ray-operator@v1.5.0/config/crd/bases/ray.io_rayservices.yaml"
  "$MOD/github.com/elastic/cloud-on-k8s/v3@v3.5.0/config/crds/v1/all-crds.yaml"
  "$MOD/github.com/prometheus-operator/prometheus-operator@v0.85.0/example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml"
  "$MOD/github.com/prometheus-operator/prometheus-operator@v0.85.0/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml"
)
args=()
for f in "${files[@]}"; do
  [ -f "$f" ] || { echo "$f missing: run scripts/setup.sh" >&2; exit 1; }
  args+=(-f "$f")
done
"$KUBECTL" apply --server-side --force-conflicts "${args[@]}" >/dev/null
"$KUBECTL" wait --for condition=established --timeout=120s crd --all >/dev/null
echo "CRDs established: $("$KUBECTL" get crd -o name | wc -l)"
