#!/usr/bin/env bash
# Builds a real Kubernetes control plane for tests/cluster from the Go module proxy and caches
# the binaries under ${RAY_ICMA_HOME:-~/.cache/ray-icma}/k8s/bin (one file per version, so a
# second run only checks they exist):
#   kube-apiserver  v1.34.2  (k8s.io/kubernetes' cmd/kube-apiserver, built from a module of our own
#                            that points the staging modules at their published v0.34.2 releases)
#   kine            v0.17.5  (etcd API on SQLite: the apiserver's storage)
#   ray-operator    v1.5.0   (KubeRay, runs out of cluster against the apiserver)
# Times on 2 cores: apiserver ~3 min, kine ~1.5 min, operator ~1.2 min (first build).
#   bash scripts/build_k8s.sh          # prints the bin dir on stdout
set -euo pipefail
K8S_VERSION="${RAY_ICMA_K8S_VERSION:-v1.34.2}"
KINE_VERSION="${RAY_ICMA_KINE_VERSION:-v0.17.5}"
KUBERAY_VERSION="${RAY_ICMA_KUBERAY_VERSION:-v1.5.0}"
K8S_HOME="${RAY_ICMA_HOME:-$HOME/.cache/ray-icma}/k8s"
BIN="$K8S_HOME/bin"
mkdir -p "$BIN" "$K8S_HOME/src"
log() { printf '\033[1;34m[build_k8s]\033[0m %s\n' "$*" >&2; }
command -v go >/dev/null || { log "go not found"; exit 1; }
export GOFLAGS=-mod=mod
timed() { local t0; t0=$(date +%s); "$@"; log "$1 ${2:-} took $(( $(date +%s) - t0 )) s"; }

link() {  # link NAME VERSIONED: stable name -> versioned binary
  ln -sfn "$(basename "$2")" "$BIN/$1"
}

build_apiserver() {
  local out="$BIN/kube-apiserver-$K8S_VERSION"
  [ -x "$out" ] && { link kube-apiserver "$out"; return 0; }
  log "kube-apiserver $K8S_VERSION: go mod download k8s.io/kubernetes"
  local kdir
  kdir=$(cd /tmp && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  [ -d "$kdir" ] || { log "k8s.io/kubernetes@$K8S_VERSION not downloaded"; return 1; }
  local staging="v0.${K8S_VERSION#v1.}"         # v1.34.2 -> v0.34.2
  local src="$K8S_HOME/src/kube-apiserver-$K8S_VERSION"
  rm -rf "$src"; mkdir -p "$src"
  cp "$kdir/cmd/kube-apiserver/apiserver.go" "$src/"
  chmod u+w "$src/apiserver.go"
  {
    echo "module ray-icma.local/kube-apiserver"
    echo
    echo "go $(sed -n 's/^go //p' "$kdir/go.mod" | head -n1)"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    # every `k8s.io/x => ./staging/src/k8s.io/x` of kubernetes' go.mod -> the published release
    sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\) => \./staging/.*#\t\1 => \1 '"$staging"'#p' "$kdir/go.mod"
    echo ")"
  } > "$src/go.mod"
  (cd "$src" && go mod tidy >&2 \
    && go build -o "$out.tmp" \
         -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)" . >&2)
  mv "$out.tmp" "$out"
  link kube-apiserver "$out"
}

go_install() {  # go_install NAME MODULE@VERSION
  local name=$1 mod=$2 out="$BIN/$1-${2##*@}"
  [ -x "$out" ] && { link "$name" "$out"; return 0; }
  local gopath_bin; gopath_bin="$(go env GOPATH)/bin/$name"
  # already installed by a plain `go install` of the same version: reuse it
  if [ -x "$gopath_bin" ] && go version -m "$gopath_bin" | grep -Eq "^[[:space:]]+mod[[:space:]]+${mod%@*}[[:space:]]+${mod##*@}"; then
    cp "$gopath_bin" "$out"; link "$name" "$out"; return 0
  fi
  local tmp="$K8S_HOME/src/gobin-$name"
  rm -rf "$tmp"; mkdir -p "$tmp"
  (cd /tmp && GOBIN="$tmp" go install "$mod" >&2)
  mv "$tmp/$name" "$out"
  rm -rf "$tmp"
  link "$name" "$out"
}

timed build_apiserver
timed go_install kine "github.com/k3s-io/kine@$KINE_VERSION"
timed go_install ray-operator "github.com/ray-project/kuberay/ray-operator@$KUBERAY_VERSION"
echo "$BIN"
