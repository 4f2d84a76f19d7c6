"""Autoscaling benchmark: the scenario of tests/serve/test_autoscaling.py (closed-loop /v1/mol2cap clients
drive the ingress and the Generator from 1 to 2 replicas, then one client watches them scale back), repeated,
on a private local Ray. Reports time to scale up / down, requests and p95 of the 200s in each transition,
and every failed request. Raw results: benchmarks/results/serve_load_raw/autoscale.json.
``benchmarks/bench_serve_load.py`` runs it too (``--autoscale-reps``), so one run measures issue 12's points 2-4.

    .venv/bin/python benchmarks/bench_serve_autoscale.py --reps 3
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "benchmarks" / "results" / "serve_load_autoscale.md"
RAW = ROOT / "benchmarks" / "results" / "serve_load_raw" / "autoscale.json"


def run_autoscale(reps: int, port: int, clients: int) -> tuple[list[dict], list[str]]:
    """Run the scenario ``reps`` times on a private local Ray; (raw runs, markdown lines of the summary table)."""
    import ray
    from ray import serve

    from ray_icma.data import load_records
    from serve.builder import build_icma_app
    from tests.serve.conftest import wait_ready
    from tests.serve.test_autoscaling import FAST, autoscale_args, scale_scenario

    load_start = os.getloadavg()
    ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port}, proxy_location="HeadOnly")
    smiles = [r.smiles for r in load_records(ROOT / "tests/assets/chebi20_test_200.txt").records[:20]]
    url = f"http://127.0.0.1:{port}/autoscale"
    runs = []
    try:
        for _rep in range(reps):
            serve.run(build_icma_app(autoscale_args(ROOT / "tests/assets/chebi20_validation_300.txt", cpus=0.5)),
                      name="bench-autoscale", route_prefix="/autoscale", blocking=False)
            wait_ready(serve, "bench-autoscale", url)
            out = scale_scenario(serve, url, "bench-autoscale", smiles, busy_clients=clients)
            print(json.dumps(out), flush=True)
            runs.append(out)
            serve.delete("bench-autoscale")
    finally:
        serve.shutdown()
        ray.shutdown()
    RAW.parent.mkdir(parents=True, exist_ok=True)
    RAW.write_text(json.dumps(runs, indent=1))

    def col(key, sub=None):
        vals = [r[key][sub] if sub else r[key] for r in runs]
        vals = [v for v in vals if v is not None]
        if not vals:
            return "n/a"
        return f"{statistics.median(vals):.1f} ({min(vals):.1f}-{max(vals):.1f})"

    lines = [
        f"- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; host {platform.node()}, {os.cpu_count()} cores "
        f"(load average at start {load_start[0]:.1f}, at end {os.getloadavg()[0]:.1f}); Ray {ray.__version__}; private local "
        f"ray.init(num_cpus=4)",
        f"- autoscaling (ingress target 2, Generator target 1 ongoing request): `{json.dumps(FAST)}`; "
        f"{clients} closed-loop /v1/mol2cap clients (tiny-random-llama, 8 new tokens), then 1",
        f"- median (min-max) of {len(runs)} runs; raw: benchmarks/results/serve_load_raw/autoscale.json",
        "",
        "| figure | value |",
        "|---|---|",
        f"| time to scale up (both at 2 replicas), s | {col('scale_up_s')} |",
        f"| time to scale back down (both at 1), s | {col('scale_down_s')} |",
        f"| p95 of 200s while scaling up, ms | {col('p95_ms', 'up')} |",
        f"| p95 of 200s while scaling down, ms | {col('p95_ms', 'down')} |",
        f"| requests during up / down | {[r['requests'] for r in runs]} |",
        f"| failed requests | {sum(len(r['failed']) for r in runs)} {[r['failed'][:3] for r in runs if r['failed']]} |",
        "",
    ]
    return runs, lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--port", type=int, default=8126)
    p.add_argument("--clients", type=int, default=8)
    a = p.parse_args()
    _, lines = run_autoscale(a.reps, a.port, a.clients)
    lines = ["# Ray Serve autoscaling benchmark (ICMA app: ingress + Generator, 1 -> 2 -> 1 replicas)", "",
             f"- command: `.venv/bin/python benchmarks/bench_serve_autoscale.py {' '.join(sys.argv[1:])}`", *lines]
    OUT.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
