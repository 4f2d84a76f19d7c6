"""Training throughput of LoRA in-context tuning on Ray Train: 1 vs 2 workers, same run.

Measures, per configuration, training tokens/s per worker (non-padding tokens through
forward+backward, timed inside the worker loop, start-up excluded), the aggregate tokens/s,
the wall time of the whole `run_training` call, and the workers' peak RSS; prints the ratios
of 2 workers against the 1-worker baseline measured in the same run.

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
    return {
        "workers": workers,
        "tokens_per_s_per_worker": m["tokens_per_s_per_worker"],
        "tokens_per_s_total": m["tokens_per_s_per_worker"] * workers,
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
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        rows = [run_once(w, args, Path(tmp)) for w in (1, 2)]
    base, two = rows
    print(f"model={args.model} strategy={args.strategy}{' ZeRO-' + str(args.zero_stage) if args.strategy == 'deepspeed' else ''} "
          f"steps={args.steps} micro_batch={args.micro_batch}")
    print(f"{'workers':>7} {'tok/s/worker':>13} {'tok/s total':>12} {'peak RSS MiB/worker':>20} {'wall s':>8}")
    for r in rows:
        print(f"{r['workers']:>7} {r['tokens_per_s_per_worker']:>13.1f} {r['tokens_per_s_total']:>12.1f} {r['peak_rss_mb_per_worker']:>20.0f} {r['wall_s']:>8.1f}")
    print(
        f"2 vs 1 worker: per-worker throughput x{two['tokens_per_s_per_worker'] / base['tokens_per_s_per_worker']:.2f}, "
        f"total x{two['tokens_per_s_total'] / base['tokens_per_s_total']:.2f}, "
        f"peak RSS/worker x{two['peak_rss_mb_per_worker'] / base['peak_rss_mb_per_worker']:.2f}, wall x{two['wall_s'] / base['wall_s']:.2f}"
    )
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
