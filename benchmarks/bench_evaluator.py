"""Time the MolT5-exact evaluator on MolT5-small's 3,300 ChEBI-20 test predictions (both tasks).

Baseline, measured in the same run: a literal transcription of MolT5's scripts
(tests/ray_icma/evaluate/molt5_reference.py: per-sentence tokenization, un-memoised METEOR on
nltk's global WordNet loader, parsing every SMILES twice). Both must give identical numbers;
the script checks that and prints rows/s and the speed-up.

    .venv/bin/python benchmarks/bench_evaluator.py [--no-baseline]

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-baseline", action="store_true", help="skip the literal MolT5 transcription")
    args = parser.parse_args()
    if not (MOL2CAP.is_file() and CAP2MOL.is_file() and SCIBERT.is_dir()):
        print(f"skipped: {SHARED} with reference/molt5/ and tokenizers/ is not present")
        return 0

    from ray_icma.evaluate import cap2mol_metrics, mol2cap_metrics, read_predictions
    from ray_icma.evaluate.tokenizer import load_tokenizer
    from ray_icma.evaluate.wordnet import load_wordnet

    with CpuTimer() as t_setup:  # one-off per process: WordNet index + tokenizer
        load_wordnet()
        load_tokenizer(SCIBERT)
    m2c, c2m = read_predictions(MOL2CAP), read_predictions(CAP2MOL)
    with CpuTimer() as t_m2c:
        ours_m2c = mol2cap_metrics(m2c.references, m2c.predictions, tokenizer=SCIBERT)
    with CpuTimer() as t_c2m:
        ours_c2m = cap2mol_metrics(c2m.references, c2m.predictions)
    print(f"setup (WordNet + tokenizer load): {t_setup}")
    for name, n, t, m in (("mol2cap", len(m2c), t_m2c, ours_m2c), ("cap2mol", len(c2m), t_c2m, ours_c2m)):
        print(f"{name}: {n} rows in {t} = {n / t.seconds:,.0f} rows/s wall, {n / t.cpu:,.0f} rows/s CPU  {m}")
    wall = t_setup.seconds + t_m2c.seconds + t_c2m.seconds
    cpu = t_setup.cpu + t_m2c.cpu + t_c2m.cpu
    print(f"both tasks, setup included: {wall:.2f} s wall / {cpu:.2f} s CPU; peak RSS {peak_rss_mb():.0f} MiB")

    if not args.no_baseline:
        from tests.ray_icma.evaluate.molt5_reference import (
            mol_translation_and_fingerprint_metrics,
            text_translation_metrics,
        )

        with CpuTimer() as b_m2c:
            base_m2c = text_translation_metrics(MOL2CAP, str(SCIBERT))
        with CpuTimer() as b_c2m:
            base_c2m = mol_translation_and_fingerprint_metrics(CAP2MOL)
        same = ours_m2c == {k: float(v) for k, v in base_m2c.items()} and ours_c2m == {
            k: float(v) for k, v in base_c2m.items()
        }
        for name, n, ours, base in (("mol2cap", len(m2c), t_m2c, b_m2c), ("cap2mol", len(c2m), t_c2m, b_c2m)):
            print(f"baseline {name} (literal MolT5): {base} = {n / base.cpu:,.0f} rows/s CPU; "
                  f"speed-up {base.cpu / ours.cpu:.2f}x CPU, {base.seconds / ours.seconds:.2f}x wall")
        print("(the mol2cap baseline includes its own WordNet load; ours is in `setup` above)")
        print(f"identical numbers to the baseline: {same}")
        if not same:
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
