# Shared by scripts/start_ray_cluster.sh, start_prometheus.sh and start_k8s.sh: sourced, never run.
#   source "$(dirname "${BASH_SOURCE[0]}")/_lib.sh"
# The contract of every start script (scripts/test.sh reads it): stdout carries exactly one line, the
# address / URL / path a caller uses, printed once the service answers; everything else goes to stderr.
# A service already answering is reused (the line is printed and the script exits 0).
set -euo pipefail
ICMA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ICMA_HOME="${RAY_ICMA_HOME:-$HOME/.cache/ray-icma}"   # cache root of ray-icma (ray_icma/env.py)
ICMA_SCRIPT="$(basename "$0" .sh)"

# icma_log MESSAGE...: one "[script] message" line on stderr.
icma_log() { printf '[%s] %s\n' "$ICMA_SCRIPT" "$*" >&2; }

# icma_reuse LINE CHECK...: when the command CHECK succeeds, the service is up: print LINE and exit 0.
icma_reuse() {
  local line="$1"; shift
  if "$@"; then echo "$line"; exit 0; fi
}

# icma_spawn PID_FILE LOG_FILE CMD...: run CMD detached (nohup, output to LOG_FILE), its pid in PID_FILE.
icma_spawn() {
  local pid_file="$1" log_file="$2"; shift 2
  nohup "$@" >"$log_file" 2>&1 &
  echo $! >"$pid_file"
}

# icma_alive PID_FILE: the process recorded in PID_FILE is running.
icma_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# icma_await SECONDS WHAT LOG_FILE READY [ALIVE...]: run the command READY once a second until it
# succeeds (return 0). When the optional command ALIVE fails (the process died), or after SECONDS tries,
# say so on stderr with the tail of LOG_FILE (when it is a file; "-" for none) and exit 1.
icma_await() {
  local seconds="$1" what="$2" log_file="$3" ready="$4" why
  shift 4
  why="not ready within $seconds s"
  for _ in $(seq 1 "$seconds"); do
    "$ready" && return 0
    if [ "$#" -gt 0 ] && ! "$@"; then why="exited"; break; fi
    sleep 1
  done
  if [ -f "$log_file" ]; then
    icma_log "$what $why; log: $log_file"
    tail -n 20 "$log_file" >&2 || true
  else
    icma_log "$what $why"
  fi
  exit 1
}
