"""Training throughput of LoRA in-context tuning on Ray Train: 1 vs 2 workers, same run, --reps times.

Measures, per configuration, each worker's own training tokens/s (non-padding tokens through
forward+backward, timed inside its loop from the first data read) and their *sum* (not rank 0's
rate times the worker count), the wall time of the whole `run_training` call, and rank 0's
peak RSS. 1- and 2-worker runs alternate, --reps times, so both see the same machine load; the
ratio is taken per repetition and printed as median (min, max). Raw rows: --json.

    RAY_ADDRESS=127.0.0.1:6380 python benchmarks/bench_training_throughput.py
    python benchmarks/bench_training_throughput.py --model smollm2-135m --steps 8 --strategy ddp

Needs the `train` extra (ray[train], torch, transformers, peft, deepspeed).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._timing import Timer  # noqa: E402


def run_once(workers: int, args: argparse.Namespace, tmp: Path) -> dict:
    from ray_icma.train import load_train_config, run_training

    name = f"bench-{args.strategy}-{workers}w"
    cfg = load_train_config(
        ROOT / "configs/train/tiny/ci_deepspeed_zero2.yaml",
        [
            f"model.name={args.model}",
            f"data.train={args.data}",
            f"data.max_rows={args.rows}",
            f"optim.max_steps={args.steps}",
            f"optim.micro_batch_size={args.micro_batch}",
            "optim.gradient_accumulation_steps=1",
            f"strategy={args.strategy}",
            f"zero_stage={args.zero_stage}",
            f"scaling.num_workers={workers}",
            f"scaling.cpus_per_worker={args.cpus_per_worker}",
            f"run.name={name}",
            f"run.storage_path={tmp / 'runs'}",
            f"run.output_dir={tmp / name}",
            "run.checkpoint_every=null",
        ],
    )
    with Timer() as t:
        result = run_training(cfg)
    m = result.metrics
    rates = m["tokens_per_s_workers"]
    return {
        "workers": workers,
        "tokens_per_s_workers": rates,
        "tokens_per_s_per_worker": sum(rates) / len(rates),
        "tokens_per_s_total": sum(rates),
        "peak_rss_mb_per_worker": m["peak_rss_mb"],
        "wall_s": t.seconds,
        "final_loss": m["loss"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-random-llama", help="model spec (tiny-random-llama, smollm2-135m, a Hub id)")
    parser.add_argument("--data", default=str(ROOT / "tests/assets/chebi20_validation_300.txt"))
    parser.add_argument("--rows", type=int, default=128)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--micro-batch", type=int, default=2)
    parser.add_argument("--strategy", choices=["deepspeed", "ddp"], default="deepspeed")
    parser.add_argument("--zero-stage", type=int, choices=[2, 3], default=2)
    parser.add_argument("--cpus-per-worker", type=float, default=1.0)
    parser.add_argument("--reps", type=int, default=3, help="alternating 1-/2-worker repetitions")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()

    import os
    import statistics

    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.reps):
            for w in (1, 2):
                row = run_once(w, args, Path(tmp) / f"rep{rep}")
                row["rep"] = rep
                rows.append(row)
    print(f"model={args.model} strategy={args.strategy}{' ZeRO-' + str(args.zero_stage) if args.strategy == 'deepspeed' else ''} "
          f"steps={args.steps} micro_batch={args.micro_batch} reps={args.reps} load {load_before} -> {os.getloadavg()}")
    print(f"{'rep':>3} {'workers':>7} {'tok/s each worker':>22} {'tok/s total':>12} {'peak RSS MiB':>13} {'wall s':>8}")
    for r in rows:
        each = "/".join(f"{x:.0f}" for x in r["tokens_per_s_workers"])
        print(f"{r['rep']:>3} {r['workers']:>7} {each:>22} {r['tokens_per_s_total']:>12.1f} {r['peak_rss_mb_per_worker']:>13.0f} {r['wall_s']:>8.1f}")
    ratios = [two["tokens_per_s_total"] / one["tokens_per_s_total"] for one, two in zip(rows[0::2], rows[1::2])]
    print(f"2 vs 1 worker, total tokens/s (sum of each worker's own rate): median x{statistics.median(ratios):.2f} "
          f"(min {min(ratios):.2f}, max {max(ratios):.2f}, per rep {', '.join(f'{r:.2f}' for r in ratios)})")
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "rows": rows, "ratios": ratios,
                                         "load_before": load_before, "load_after": os.getloadavg()}, indent=2))


if __name__ == "__main__":
    main()
