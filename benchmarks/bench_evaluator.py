"""Time the MolT5-exact evaluator on MolT5-small's ChEBI-20 test predictions (both tasks).

Baseline, measured in the same run: a literal transcription of MolT5's scripts
(tests/ray_icma/evaluate/molt5_reference.py: per-sentence tokenization, un-memoised METEOR on
nltk's global WordNet loader, parsing every SMILES twice). Both must give identical numbers.

Same work on both sides: WordNet is loaded for BOTH before any timing (charged to neither side:
earlier versions charged it to the baseline only), and the SciBERT tokenizer load, which the
baseline repeats inside every call, is timed on its own and added to ours per repetition. Each
side runs ``--reps`` times, alternating; the table gives median [min-max] CPU seconds and the
speed-up of the medians with the per-rep ratios' range.

    .venv/bin/python benchmarks/bench_evaluator.py [--reps 3] [--rows N] | tee benchmarks/results/evaluator_<date>.txt

Needs ../shared (reference predictions, SciBERT vocabulary); skips with a message without it.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import time  # noqa: E402

from _timing import Timer, peak_rss_mb  # noqa: E402


class CpuTimer(Timer):
    """Wall clock plus this process's CPU seconds: on a shared, busy box the CPU time is the fair figure."""

    def __enter__(self) -> "CpuTimer":
        self.cpu_start = time.process_time()
        return super().__enter__()

    def __exit__(self, *exc) -> None:
        super().__exit__(*exc)
        self.cpu = time.process_time() - self.cpu_start

    def __str__(self) -> str:
        return f"{self.seconds:.2f} s wall / {self.cpu:.2f} s CPU"

SHARED = Path(os.environ.get("RAY_ICMA_SHARED", ROOT.parent / "shared"))
MOL2CAP = SHARED / "reference/molt5/molt5-small-smiles2caption.txt"
CAP2MOL = SHARED / "reference/molt5/molt5-small-caption2smiles.txt"
SCIBERT = SHARED / "tokenizers/scibert_scivocab_uncased"


def _subset(path: Path, rows: int | None, out_dir: Path) -> Path:
    """The first ``rows`` predictions of a MolT5 file (header kept), or the file itself."""
    if rows is None:
        return path
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    out = out_dir / path.name
    out.write_text("".join(lines[: rows + 1]), encoding="utf-8")
    return out


def main() -> int:
    import statistics
    import tempfile

    from _timing import machine_load, spread

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="repetitions of each side")
    parser.add_argument("--rows", type=int, default=None, help="first N rows of each file (default: all 3,300)")
    args = parser.parse_args()
    if not (MOL2CAP.is_file() and CAP2MOL.is_file() and SCIBERT.is_dir()):
        print(f"skipped: {SHARED} with reference/molt5/ and tokenizers/ is not present")
        return 0

    from nltk.corpus import wordnet
    from transformers import BertTokenizerFast

    from ray_icma.evaluate import cap2mol_metrics, mol2cap_metrics, read_predictions
    from ray_icma.evaluate.tokenizer import load_tokenizer
    from ray_icma.evaluate.wordnet import ensure_wordnet, load_wordnet
    from tests.ray_icma.evaluate.molt5_reference import mol_translation_and_fingerprint_metrics, text_translation_metrics

    print(machine_load())
    tmp = Path(tempfile.mkdtemp())
    mol2cap_file, cap2mol_file = _subset(MOL2CAP, args.rows, tmp), _subset(CAP2MOL, args.rows, tmp)
    # WordNet for both sides, untimed: ours (memoised reader) and nltk's global loader (the baseline's)
    load_wordnet()
    ensure_wordnet()
    wordnet.ensure_loaded()
    load_tokenizer(SCIBERT)
    m2c, c2m = read_predictions(mol2cap_file), read_predictions(cap2mol_file)

    ours: dict[str, list[float]] = {"mol2cap": [], "cap2mol": []}
    base: dict[str, list[float]] = {"mol2cap": [], "cap2mol": []}
    same = True
    for rep in range(args.reps):
        with CpuTimer() as t_tok:  # the baseline loads the tokenizer in every call: charge ours the same
            BertTokenizerFast.from_pretrained(str(SCIBERT))
        with CpuTimer() as t:
            ours_m2c = mol2cap_metrics(m2c.references, m2c.predictions, tokenizer=SCIBERT)
        ours["mol2cap"].append(t.cpu + t_tok.cpu)
        with CpuTimer() as t:
            ours_c2m = cap2mol_metrics(c2m.references, c2m.predictions)
        ours["cap2mol"].append(t.cpu)
        with CpuTimer() as t:
            base_m2c = text_translation_metrics(mol2cap_file, str(SCIBERT))
        base["mol2cap"].append(t.cpu)
        with CpuTimer() as t:
            base_c2m = mol_translation_and_fingerprint_metrics(cap2mol_file)
        base["cap2mol"].append(t.cpu)
        same &= ours_m2c == {k: float(v) for k, v in base_m2c.items()} and ours_c2m == {k: float(v) for k, v in base_c2m.items()}
        print(f"rep {rep + 1}: ours mol2cap {ours['mol2cap'][-1]:.2f} CPU-s (tokenizer load {t_tok.cpu:.2f}), cap2mol "
              f"{ours['cap2mol'][-1]:.2f}; literal MolT5 mol2cap {base['mol2cap'][-1]:.2f}, cap2mol {base['cap2mol'][-1]:.2f}")
    n = {"mol2cap": len(m2c), "cap2mol": len(c2m)}
    print(f"\nrows: {n['mol2cap']} mol2cap, {n['cap2mol']} cap2mol; WordNet loaded for both sides before timing")
    for task in ("mol2cap", "cap2mol", "both"):
        o = ours[task] if task != "both" else [a + b for a, b in zip(ours["mol2cap"], ours["cap2mol"])]
        b = base[task] if task != "both" else [a + b for a, b in zip(base["mol2cap"], base["cap2mol"])]
        ratios = [y / x for x, y in zip(o, b)]
        rows = n.get(task, n["mol2cap"] + n["cap2mol"])
        print(f"{task:8s} ours {spread(o)} CPU-s ({rows / statistics.median(o):,.0f} rows/s), literal MolT5 {spread(b)} CPU-s; "
              f"speed-up {statistics.median(b) / statistics.median(o):.2f}x (per-rep {min(ratios):.2f}-{max(ratios):.2f}x)")
    print(f"identical numbers to the baseline in every rep: {same}; peak RSS {peak_rss_mb():.0f} MiB; {machine_load()}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
