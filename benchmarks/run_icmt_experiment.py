"""ICMA's central claim at this machine's scale: in-context molecule tuning (ICMT, n-shot prompts
in training and generation) vs plain fine-tuning (0-shot prompts), same model, data and steps.

Runs the pipeline once per (task, arm), task by task so both arms of a task finish together,
then prints a markdown table of every metric (plus the retrieval top-1 copy baseline) and
writes it as JSON. Resumable: finished (task, arm) runs are read back, not redone.

    python benchmarks/run_icmt_experiment.py                          # config defaults
    python benchmarks/run_icmt_experiment.py --steps 24 --queries 40 --max-new-tokens 64 \
        --out benchmarks/results/icmt_vs_finetune.json

Needs ../shared/data/chebi20/{validation,test}.txt (skips with a message when absent).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "pipeline" / "icmt_vs_finetune.yaml"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(CONFIG))
    parser.add_argument("--tasks", default="mol2cap,cap2mol")
    parser.add_argument("--arms", default="icmt,zeroshot", help="which arms to run (icmt, zeroshot)")
    parser.add_argument("--n-shot", type=int, default=2, help="ICMT arm's examples per prompt")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps per (task, arm)")
    parser.add_argument("--queries", type=int, default=None, help="test queries (seeded sample)")
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument("--root", default=None, help="run dirs go under this folder")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "icmt_vs_finetune.json"))
    parser.add_argument("overrides", nargs="*", help="extra dotted.key=value pipeline overrides for both arms")
    args = parser.parse_args()

    from ray_icma.pipeline import load_pipeline_config, run_pipeline

    common = list(args.overrides)
    if args.steps:
        common.append(f"train.optim.max_steps={args.steps}")
    if args.queries:
        common.append(f"data.n_queries={args.queries}")
    if args.max_new_tokens:
        common.append(f"generate.max_new_tokens={args.max_new_tokens}")
    if args.root:
        common.append(f"run.root={args.root}")
    probe = load_pipeline_config(args.config, common)
    for path in (probe.data.queries, probe.data.pool):
        if not Path(path).is_file():
            print(f"skip: {path} not found (this experiment reads ../shared/data/chebi20)")
            return 0

    results: dict[str, dict] = {}
    out = Path(args.out)
    for task in args.tasks.split(","):
        for arm, shots in (("icmt", args.n_shot), ("zeroshot", 0)):
            if arm not in args.arms.split(","):
                continue
            overrides = common + [f"run.name={arm}-{task}", f"tasks=[{task}]", f"train.n_shot.{task}={shots}"]
            cfg = load_pipeline_config(args.config, overrides)
            print(f"=== {task} / {arm} ({shots}-shot): {cfg.run_dir}", flush=True)
            start = time.perf_counter()
            result = run_pipeline(cfg, say=lambda line: print(line, flush=True))
            seconds = time.perf_counter() - start
            copy = cfg.run_dir / "metrics" / f"{task}_retrieval_copy.json"
            train = json.loads((cfg.run_dir / "train" / task / "result.json").read_text())
            meta = json.loads((cfg.run_dir / "predictions" / f"{task}.jsonl.meta.json").read_text())
            results[f"{task}/{arm}"] = {
                "task": task, "arm": arm, "n_shot": shots, "metrics": result.metrics[task],
                "retrieval_copy": json.loads(copy.read_text())["metrics"] if copy.is_file() else None,
                "final_loss": train["loss_history"][-1]["loss"] if train["loss_history"] else None,
                "steps": train["steps"], "generation": meta, "stages": result.stages, "seconds_this_invocation": round(seconds, 1),
                "config": cfg.model_dump(),
            }
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(results, indent=2, default=str) + "\n")
            print(table(results), flush=True)
    return 0


def table(results: dict[str, dict]) -> str:
    """Markdown: one row per (task, arm) plus the retrieval copy baseline, every metric."""
    lines = []
    for task in dict.fromkeys(r["task"] for r in results.values()):
        rows = [r for r in results.values() if r["task"] == task]
        names = list(rows[0]["metrics"])
        lines.append(f"\n**{task}**\n")
        lines.append("| arm | final train loss | " + " | ".join(names) + " |")
        lines.append("|---" * (len(names) + 2) + "|")
        for r in rows:
            loss = f"{r['final_loss']:.3f}" if r["final_loss"] is not None else "-"
            lines.append(f"| {r['arm']} ({r['n_shot']}-shot) | {loss} | " + " | ".join(_fmt(r["metrics"].get(m)) for m in names) + " |")
        if rows[0].get("retrieval_copy"):
            lines.append("| retrieval top-1 copy | - | " + " | ".join(_fmt(rows[0]["retrieval_copy"].get(m)) for m in names) + " |")
    return "\n".join(lines)


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    sys.exit(main())
