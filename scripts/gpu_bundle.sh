#!/usr/bin/env bash
# Packs, here, what a lent GPU machine (this workplace's `device` tool) needs for the GPU checks and
# `benchmarks/paper_experiments.py --device cuda --size gpu`, into .device/ (git-ignored):
#   .device/a/common.tar.gz  wheels the machine lacks (pydantic, gguf, peft at the tested versions), the
#                   SmolLM2 tokenizer converted here, the records + retrieval caches (--prepare-only: the
#                   machine has no RDKit, NLTK, bm25s or FAISS)
#   .device/a/gguf.part-a, .device/b/gguf.part-b (+ its sha256): the SmolLM2 GGUF (94 MB) in two parts,
#                   since one call carries at most 64 MiB with the working tree
# scripts/gpu_run.sh is what runs there (first `stage` carrying .device/a, then `run` carrying .device/b).
# The working tree travels too: run the calls from a checkout without benchmarks/results (31 MB).
#
#   bash scripts/gpu_bundle.sh                 # main table
#   EXP_GROUPS=main,nshot bash scripts/gpu_bundle.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PY:-$ROOT/.venv/bin/python}"
EXP_GROUPS="${EXP_GROUPS:-main}"
SIZE="${SIZE:-gpu}"  # quick: the CPU rehearsal of the whole path
D=.device
grep -qx '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >> .git/info/exclude
rm -rf "$D"
mkdir -p "$D/common/whl" "$D/common/home" "$D/common/work" "$D/a" "$D/b"

pins=$("$PY" - <<'PY'
import importlib.metadata as md
print(" ".join(f"{n}=={md.version(n)}" for n in ("pydantic", "pydantic-core", "annotated-types", "typing-inspection", "gguf", "peft")))
PY
)
echo "[gpu_bundle] wheels: $pins"
# shellcheck disable=SC2086
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d "$D/common/whl" $pins

echo "[gpu_bundle] SmolLM2 tokenizer"
tok=$("$PY" -c "from ray_icma.models import smollm2_tokenizer, cache_dir; smollm2_tokenizer(); print(cache_dir() / 'smollm2-135m-tokenizer')")
cp -r "$tok" "$D/common/home/"

echo "[gpu_bundle] records + retrieval (groups $EXP_GROUPS)"
"$PY" benchmarks/paper_experiments.py --size "$SIZE" --groups "$EXP_GROUPS" --prepare-only
FOLDERS=$("$PY" benchmarks/paper_experiments.py --size "$SIZE" --folders)  # set -e: stops here if it fails
read -r _ WORK <<< "$FOLDERS"
cp -r "$WORK/records" "$WORK/contexts" "$D/common/work/"

gguf=$("$PY" -c "import os; from ray_icma.models import smollm2_gguf; print(os.path.join(*smollm2_gguf()))")
( cd "$(dirname "$gguf")" && sha256sum "$(basename "$gguf")" ) > "$D/common/gguf.sha256"
cp "$D/common/gguf.sha256" "$D/b/"
tar czf "$D/a/common.tar.gz" -C "$D" common
common=$(stat -c %s "$D/a/common.tar.gz")
tree=$(git ls-files -z -- . ':!benchmarks/results' | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
size=$(stat -c %s "$gguf")
# part a rides with the common files in call 1, part b alone in call 2
limit=$((64 * 1024 * 1024 - 3 * 1024 * 1024))  # 3 MiB for untracked files and slack
part_a=$((limit - common - tree))
[ "$part_a" -gt 0 ] && [ $((size - part_a)) -lt $((limit - tree)) ] || { echo "[gpu_bundle] does not fit: tree $tree + common $common + gguf $size in two calls of $limit" >&2; exit 1; }
head -c "$part_a" "$gguf" > "$D/a/gguf.part-a"
tail -c +$((part_a + 1)) "$gguf" > "$D/b/gguf.part-b"
echo "[gpu_bundle] tree $tree B, common $common B, part a $part_a B, part b $((size - part_a)) B (limit per call $limit B)"
