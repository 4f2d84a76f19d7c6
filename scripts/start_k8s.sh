#!/usr/bin/env bash
# Start a real Kubernetes control plane on 127.0.0.1 from the binaries scripts/build_k8s.sh cached:
# kine (etcd API on SQLite) -> kube-apiserver (token auth, RBAC, service-account keys, its own
# self-signed serving cert) -> the KubeRay operator out of cluster. No kubelet or controller-manager:
# Pods stay Pending, and namespaces get no `default` ServiceAccount by themselves
# (scripts/k8s_default_sa.sh / the tests create them). Prints the kubeconfig path.
# Idempotent: a control plane already answering with this kubeconfig is reused.
#   KUBECONFIG=$(bash scripts/start_k8s.sh) kubectl get ns
source "$(dirname "${BASH_SOURCE[0]}")/_lib.sh"
K8S_HOME="$ICMA_HOME/k8s"
BIN="$K8S_HOME/bin"
PORT="${RAY_ICMA_K8S_PORT:-6444}"
RUN="$K8S_HOME/run-$PORT"
KINE_PORT=$((PORT + 1000))            # 7444: etcd API; +1 its metrics
OP_METRICS=$((PORT + 1002)); OP_HEALTH=$((PORT + 1003))
KUBECONFIG_FILE="$RUN/kubeconfig"
log() { icma_log "$@"; }
ready() { [ -f "$KUBECONFIG_FILE" ] && curl -ksf -m 3 -H "Authorization: Bearer $(cat "$RUN/token")" "https://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; }
op_ready() { curl -sf -m 2 "http://127.0.0.1:$OP_HEALTH/readyz" >/dev/null 2>&1; }
alive() { icma_alive "$RUN/$1.pid"; }
up() { ready && op_ready; }
icma_reuse "$KUBECONFIG_FILE" up
for b in kube-apiserver kine ray-operator; do
  [ -x "$BIN/$b" ] || { log "$BIN/$b missing: run scripts/build_k8s.sh (or scripts/setup.sh)"; exit 1; }
done
t0=$(date +%s)
mkdir -p "$RUN/certs" "$RUN/logs"

# ---- credentials: admin token, service-account signing key ---------------------------------------
[ -f "$RUN/token" ] || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$RUN/token"
printf '%s,icma-admin,icma-admin,system:masters\n' "$(cat "$RUN/token")" > "$RUN/tokens.csv"
[ -f "$RUN/sa.key" ] || openssl genrsa -out "$RUN/sa.key" 2048 2>/dev/null
[ -f "$RUN/sa.pub" ] || openssl rsa -in "$RUN/sa.key" -pubout -out "$RUN/sa.pub" 2>/dev/null
chmod 600 "$RUN/token" "$RUN/tokens.csv" "$RUN/sa.key"

# ---- kine (SQLite) --------------------------------------------------------------------------------
if ! alive kine; then
  rm -f "$RUN"/state.db*          # a fresh control plane: nothing left from an earlier run
  icma_spawn "$RUN/kine.pid" "$RUN/logs/kine.log" \
    "$BIN/kine" --listen-address "tcp://127.0.0.1:$KINE_PORT" \
    --metrics-bind-address "127.0.0.1:$((KINE_PORT + 1))" \
    --endpoint "sqlite://$RUN/state.db?_journal=WAL&cache=shared&_busy_timeout=30000"
fi

# ---- kube-apiserver -------------------------------------------------------------------------------
if ! alive kube-apiserver; then
  icma_spawn "$RUN/kube-apiserver.pid" "$RUN/logs/kube-apiserver.log" \
    "$BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$KINE_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$PORT" \
    --cert-dir "$RUN/certs" \
    --token-auth-file "$RUN/tokens.csv" \
    --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$RUN/sa.pub" --service-account-signing-key-file "$RUN/sa.key" \
    --service-cluster-ip-range 10.96.0.0/16 \
    --enable-priority-and-fairness=false --profiling=false \
    --endpoint-reconciler-type none
fi
cat > "$KUBECONFIG_FILE" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: icma-local
  cluster: {server: "https://127.0.0.1:$PORT", insecure-skip-tls-verify: true}
users:
- name: icma-admin
  user: {token: "$(cat "$RUN/token")"}
contexts:
- name: icma-local
  context: {cluster: icma-local, user: icma-admin}
current-context: icma-local
EOF
chmod 600 "$KUBECONFIG_FILE"
icma_await 120 "kube-apiserver on :$PORT" "$RUN/logs/kube-apiserver.log" ready alive kube-apiserver
log "kube-apiserver ready in $(( $(date +%s) - t0 )) s"

# ---- KubeRay operator (out of cluster, its own ports, no leader election) -------------------------
if ! alive ray-operator; then
  # its CRDs must exist before it starts watching them
  KUBECONFIG="$KUBECONFIG_FILE" bash "$ICMA_ROOT/scripts/k8s_crds.sh" >&2
  KUBECONFIG="$KUBECONFIG_FILE" icma_spawn "$RUN/ray-operator.pid" "$RUN/logs/ray-operator.log" \
    "$BIN/ray-operator" --enable-leader-election=false \
    --metrics-addr "127.0.0.1:$OP_METRICS" --health-probe-bind-address "127.0.0.1:$OP_HEALTH" \
    --log-stdout-encoder console
fi
icma_await 90 "ray-operator" "$RUN/logs/ray-operator.log" op_ready alive ray-operator
log "control plane up in $(( $(date +%s) - t0 )) s (logs: $RUN/logs)"
echo "$KUBECONFIG_FILE"
