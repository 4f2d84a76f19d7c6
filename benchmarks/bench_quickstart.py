"""README command 1 (the quickstart pipeline), today's code against the code before the fast path, one run.

Both sides run their own ``configs/pipeline/quickstart.yaml`` (same data, 12 LoRA steps per task,
24 queries, the same stages) as a fresh run each repetition, alternating old/new so both see the
same machine load; each side runs from its own source tree (``--baseline-ref``, default 8f009ea,
extracted with ``git archive``; the new side is this checkout) in a child process with a local Ray,
so nothing is shared but the machine and the SmolLM2 cache (not warmed by this script: run the
quickstart once first, or the first side pays the ~30 s de-quantisation).

Prints wall seconds per side (median [min-max] over ``--reps``), the per-rep ratio old/new, each
stage's seconds from the run's ``stages.json``, and the metrics of both runs (the same data and
steps: a check that the fast path did not make the model worse).

    python benchmarks/bench_quickstart.py --reps 2

Raw output: benchmarks/results/quickstart_<UTC time>.json (+ the printed table in .txt).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
RESULTS = ROOT / "benchmarks" / "results"
from _timing import write_results  # noqa: E402


def _run_side(tree: Path, work: Path, name: str) -> dict:
    """One quickstart, from ``tree`` (its code and its config), into ``work/runs/<name>``."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "PYTHONPATH")}
    env["PYTHONPATH"] = str(tree)
    cmd = [sys.executable, "-c", "from ray_icma.cli.app import main; main()", "pipeline",
           str(tree / "configs" / "pipeline" / "quickstart.yaml"), f"run.name={name}", f"run.root={work / 'runs'}"]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    run_dir = work / "runs" / name
    out = {"wall_s": round(wall, 1), "rc": done.returncode, "log_tail": (done.stdout + done.stderr)[-3000:]}
    stages = run_dir / "stages.json"
    if stages.exists():
        out["stages"] = json.loads(stages.read_text())
    metrics = sorted((run_dir / "metrics").glob("*.json"))
    out["metrics"] = {str(p.relative_to(run_dir)): json.loads(p.read_text()) for p in metrics}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline-ref", default="8f009ea", help="git commit of the code before the fast path")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    from benchmarks._baseline import extract_tree
    from benchmarks._timing import machine_load, spread

    stamp = datetime.now(timezone.utc).strftime("%Y%m%d_%H%M%S")
    out_path = Path(args.out) if args.out else RESULTS / f"quickstart_{stamp}.json"
    report: dict = {"started": stamp, "baseline_ref": args.baseline_ref, "load_before": machine_load(), "runs": []}
    with tempfile.TemporaryDirectory(prefix="bench-quickstart-") as tmp:
        tmp_path = Path(tmp)
        # the new side is this checkout itself (uncommitted changes count as new)
        trees = {"old": extract_tree(args.baseline_ref, tmp_path / "old"), "new": ROOT}
        for rep in range(args.reps):
            order = ("old", "new") if rep % 2 == 0 else ("new", "old")
            for side in order:
                print(f"rep {rep} {side} ...", flush=True)
                res = _run_side(trees[side], tmp_path / f"work-{side}-{rep}", f"bench-{side}-{rep}")
                res.update(side=side, rep=rep, load=machine_load())
                report["runs"].append(res)
                print(f"  {side}: {res['wall_s']} s (rc {res['rc']}) {res['load']}", flush=True)
                out_path.write_text(json.dumps(report, indent=1))
                if res["rc"] != 0:
                    print(res["log_tail"], file=sys.stderr)
    ok = [r for r in report["runs"] if r["rc"] == 0]
    walls = {s: [r["wall_s"] for r in ok if r["side"] == s] for s in ("old", "new")}
    ratios = []
    for rep in range(args.reps):
        pair = {r["side"]: r["wall_s"] for r in ok if r["rep"] == rep}
        if len(pair) == 2:
            ratios.append(pair["old"] / pair["new"])
    lines = [f"# bench_quickstart {stamp} UTC, baseline {args.baseline_ref}, {report['load_before']}", ""]
    for side in ("old", "new"):
        if walls[side]:
            lines.append(f"{side}: quickstart wall s {spread(walls[side])}")
    if ratios:
        lines.append(f"speed-up old/new (per rep): {', '.join(f'{r:.2f}x' for r in ratios)}; "
                     f"median {statistics.median(ratios):.2f}x (goal >= 2x)")
    for r in ok:
        stage_s = {s["name"]: round(s["seconds"], 1) for s in r.get("stages", [])}
        lines.append(f"rep {r['rep']} {r['side']}: stages {stage_s}")
    for r in ok:
        for name, m in r["metrics"].items():
            lines.append(f"rep {r['rep']} {r['side']} {name}: {json.dumps(m)[:400]}")
    text = "\n".join(lines)
    print(text)
    report["summary"] = text
    write_results(out_path, report, text)
    return 0 if len(ok) == len(report["runs"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
