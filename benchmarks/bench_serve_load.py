"""Load benchmark of the ICMA Serve app (/v1/retrieve, cap2mol, bm25s over the 300-row pool) against a
no-op ingress measured in the same run, with a compiled load generator (`oha`, crates.io; its own CPU use
is reported) so the client is not the bottleneck.

    cargo install oha --locked      # once (else Debian `hey` is used: apt-get install hey)
    .venv/bin/python benchmarks/bench_serve_load.py             # private local Ray (4 logical CPUs), ~10 min
    .venv/bin/python benchmarks/bench_serve_load.py --reps 1 --duration 5   # quicker, one repetition

Like for like: the no-op ingress is deployed with exactly the app ingress's options (replicas/autoscaling,
max_ongoing_requests, max_queued_requests, back-pressure, CPUs), taken from `serve.builder.ingress_options`.

1. saturation, closed loop (`oha -c CLIENTS`): no-op ceiling, retrieval in the ingress (the production
   default), composed (ingress -> Retriever -> Reranker handles); req/s of 200s, median and spread of REPS runs;
2. open loop (`oha -q RATE --latency-correction`, enough connections that arrivals never wait for answers)
   on the production default at half its saturation rate: p95 of the 200s;
3. open loop at twice the saturation rate: 200s per second (goal >= 80% of saturation), 503s with
   Retry-After and the p99 of those refusals (goal < 50 ms), p95 of the 200s (goal < 4x the half-rate p95);
4. autoscaling (``--autoscale-reps``, the scenario of benchmarks/bench_serve_autoscale.py): ingress and Generator
   from 1 to 2 replicas under load and back, time to scale and p95 in each transition, failed requests.
Per-request status and latency come from oha's sqlite output (--db-url; latency from the intended send time). Raw oha summaries go to
benchmarks/results/serve_load_raw/, the report to benchmarks/results/serve_load.md.
"""
# No `from __future__ import annotations`: the no-op ingress below needs real annotations for FastAPI.
import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POOL = ROOT / "tests" / "assets" / "chebi20_validation_300.txt"
QUERIES = ROOT / "tests" / "assets" / "chebi20_test_200.txt"
RESULTS = ROOT / "benchmarks" / "results" / "serve_load.md"
RAW = ROOT / "benchmarks" / "results" / "serve_load_raw"


def _pct(values: list, q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


def _find_tool(given: str | None) -> tuple[str, str]:
    """(kind, path): `oha` (crates.io) when built, else `hey` (Debian's package of rakyll/hey, Go)."""
    for cand in (given, shutil.which("oha"), str(Path.home() / ".cargo" / "bin" / "oha"), shutil.which("hey")):
        if cand and Path(cand).is_file():
            return ("hey" if Path(cand).name == "hey" else "oha"), cand
    sys.exit("no load generator: `cargo install oha --locked` (crates.io) or `apt-get install hey`, or pass --tool PATH")


def _load_cmd(kind: str, tool: str, url: str, body: dict, duration_s: float, conns: int, rate: float | None,
              db: Path) -> list[str]:
    if kind == "oha":
        cmd = [tool, "-z", f"{duration_s}s", "-c", str(conns), "-m", "POST", "-T", "application/json",
               "-d", json.dumps(body), "--no-tui", "--output-format", "json", "--db-url", str(db)]
        return cmd + (["-q", f"{rate:.1f}", "--latency-correction"] if rate else []) + [url]
    # hey: -q is per worker, so a total rate R is R/conns per worker with many workers (arrivals rarely wait)
    cmd = [tool, "-z", f"{duration_s}s", "-c", str(conns), "-m", "POST", "-T", "application/json",
           "-d", json.dumps(body), "-t", "60", "-o", "csv"]
    return cmd + (["-q", f"{rate / conns:.3f}"] if rate else []) + [url]


def run_load(kind: str, tool: str, url: str, body: dict, *, duration_s: float, conns: int, rate: float | None,
             label: str, raw_dir: Path) -> dict:
    """One load run; returns counts, req/s of 200s, per-status latency percentiles and the client's own CPU use."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "requests.db"
        cmd = _load_cmd(kind, tool, url, body, duration_s, conns, rate, db)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + 180)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise RuntimeError(f"{kind} failed ({proc.returncode}): {proc.stderr[-2000:]}")
        raw_dir.mkdir(parents=True, exist_ok=True)
        (raw_dir / f"{label}.{'json' if kind == 'oha' else 'csv'}").write_text(proc.stdout)
        errors: dict[str, int] = {}
        if kind == "oha":
            errors = dict(json.loads(proc.stdout).get("errorDistribution") or {})
            with sqlite3.connect(db) as con:
                # latency from the intended send time when --latency-correction is on (no coordinated omission)
                rows = [(int(st), 1e3 * float(sec)) for st, sec in con.execute(
                    "SELECT status, end - COALESCE(start_latency_correction, start) FROM oha")]
        else:  # response-time,DNS+dialup,DNS,Request-write,Response-delay,Response-read,status-code,offset
            rows = []
            for line in proc.stdout.splitlines()[1:]:
                parts = line.split(",")
                if len(parts) >= 7 and parts[6].strip().isdigit():
                    rows.append((int(parts[6]), 1e3 * float(parts[0])))
    by_status: dict[int, list[float]] = {}
    for status, ms in rows:
        by_status.setdefault(status, []).append(ms)
    ok, refused = by_status.get(200, []), by_status.get(503, [])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    shown = [c if not c.startswith("{") else "BODY" for c in cmd[:-1]]
    return {
        "label": label, "cmd": " ".join(shown + ["URL"]), "duration_s": duration_s,
        "sent": len(rows) + sum(errors.values()), "status": {k: len(v) for k, v in sorted(by_status.items())},
        "errors": errors, "ok_rps": len(ok) / duration_s,
        "ok_p50": _pct(ok, 50), "ok_p95": _pct(ok, 95), "ok_p99": _pct(ok, 99),
        "refused_p50": _pct(refused, 50), "refused_p99": _pct(refused, 99),
        "client_cpu_pct": 100 * cpu / wall, "wall_s": wall,
    }


def _noop_app(options: dict):
    from fastapi import FastAPI, Request
    from ray import serve

    api = FastAPI()

    @serve.ingress(api)
    class Noop:
        @api.post("/v1/retrieve")
        async def retrieve(self, request: Request) -> dict:
            body = await request.json()
            return {"task": body.get("task"), "examples": []}

    opts = {k: v for k, v in options.items() if k not in ("user_config", "name")}
    return serve.deployment(Noop, name="Noop", **opts).bind()


def _icma_args(placement: str, max_in_flight: int | None = None) -> dict:
    args: dict = {
        "retriever": {"pool": {"path": str(POOL)}, "text": {"backend": "bm25s"}, "molecule": {"kind": "morgan"},
                      "placement": placement},
        "reranker": {"placement": placement},
        "generator": None,
    }
    if max_in_flight is not None:  # ingress admission limit (else the config default); Serve's limits follow it
        args["ingress"] = {"admission": {"max_in_flight": max_in_flight}}
    return args


def _wait_ok(url: str, body: dict, timeout_s: float = 300) -> None:
    import requests

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if requests.post(url, json=body, timeout=30).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} never answered 200")
        time.sleep(0.5)


def _spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=8125)
    p.add_argument("--clients", type=int, default=12,
                   help="closed-loop concurrency of the saturation runs; keep it below the ingress's admission limit "
                        "(max_in_flight, default 16), else the closed loop measures refusals, not saturation")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per oha run")
    p.add_argument("--reps", type=int, default=3, help="repetitions of every run")
    p.add_argument("--tool", default=None, help="path of the load generator (oha preferred, else hey)")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--max-in-flight", default=None,
                   help="ingress.admission.max_in_flight of the apps (default: the config's default); a comma list "
                        "(e.g. 16,4) adds one in-ingress app per extra value, each with its own saturation, half and 2x runs")
    p.add_argument("--autoscale-reps", type=int, default=3,
                   help="repetitions of the autoscaling scenario (bench_serve_autoscale.py) after the load runs; 0: skip")
    a = p.parse_args()
    kind, tool = _find_tool(a.tool)
    limits = [int(v) for v in a.max_in_flight.split(",")] if a.max_in_flight else [None]

    import ray
    from ray import serve

    from serve.builder import build_icma_app, ingress_options
    from serve.configs import ICMAServingArgs

    load_start = os.getloadavg()
    # 4 logical CPUs for the three apps (one under load at a time); 2 more per extra admission limit, so every app
    # can scale to its 2 replicas while the others idle at 1 (the host has the same 2 cores either way)
    num_cpus = 4 + 2 * (len(limits) - 1)
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": a.port}, proxy_location="HeadOnly")
    base = f"http://127.0.0.1:{a.port}"
    body = {"task": "cap2mol", "query": "The molecule is an amino acid that is L-alanine in which one hydrogen is replaced by a phenyl group."}
    tool_version = (subprocess.run([tool, "--version"], capture_output=True, text=True).stdout.strip()
                    if kind == "oha" else "hey (Debian package " + subprocess.run(
                        ["dpkg-query", "-W", "-f=${Version}", "hey"], capture_output=True, text=True).stdout + ")")
    app_ingress = ingress_options(ICMAServingArgs.model_validate(_icma_args("ingress", limits[0])))
    best = "retrieval in ingress (default)"
    apps = {
        "no-op ingress (ceiling)": ("bench-noop", "/noop", _noop_app(app_ingress)),
        best: ("bench-inproc", "/inproc", build_icma_app(_icma_args("ingress", limits[0]))),
        "composed: ingress->Retriever->Reranker": ("bench-composed", "/composed", build_icma_app(_icma_args("deployment", limits[0]))),
    }
    # clients of each app's closed loop: at most its admission limit, so saturation is not measured as refusals
    clients = {label: a.clients for label in apps}
    variants = [best]
    for limit in limits[1:]:
        label = f"retrieval in ingress, max_in_flight {limit}"
        apps[label] = (f"bench-inproc-{limit}", f"/inproc{limit}", build_icma_app(_icma_args("ingress", limit)))
        clients[label] = min(a.clients, limit)
        variants.append(label)
    runs: list[dict] = []
    sat: dict[str, list[float]] = {}
    try:
        for _label, (name, prefix, app) in apps.items():
            serve.run(app, name=name, route_prefix=prefix, blocking=False)
            _wait_ok(f"{base}{prefix}/v1/retrieve", body)
        for label, (name, prefix, _) in apps.items():  # warm up every path, then measure saturation
            run_load(kind, tool, f"{base}{prefix}/v1/retrieve", body, duration_s=3, conns=clients[label], rate=None,
                    label=f"warmup-{name}", raw_dir=RAW)
        for rep in range(a.reps):
            for label, (name, prefix, _) in apps.items():
                r = run_load(kind, tool, f"{base}{prefix}/v1/retrieve", body, duration_s=a.duration, conns=clients[label], rate=None,
                            label=f"saturation-{name}-{rep}", raw_dir=RAW)
                r["run"] = f"saturation, {clients[label]} clients: {label}"
                runs.append(r)
                sat.setdefault(label, []).append(r["ok_rps"])
                print(json.dumps(r), flush=True)
        half: dict[str, list[dict]] = {v: [] for v in variants}
        over: dict[str, list[dict]] = {v: [] for v in variants}
        for rep in range(a.reps):
            for variant in variants:
                name, prefix, _ = apps[variant]
                saturation = statistics.median(sat[variant])
                for which, rate, sink in (("half", saturation / 2, half[variant]), ("2x", 2 * saturation, over[variant])):
                    conns = int(max(64, rate * 2))  # enough connections that arrivals never wait for an answer
                    r = run_load(kind, tool, f"{base}{prefix}/v1/retrieve", body, duration_s=a.duration, conns=conns, rate=rate,
                                label=f"open-{name}-{which}-{rep}", raw_dir=RAW)
                    r["run"] = f"open loop {rate:.0f} req/s ({which} saturation): {variant}"
                    runs.append(r)
                    sink.append(r)
                    print(json.dumps(r), flush=True)
                    time.sleep(2)
    finally:
        for name, _, _ in apps.values():
            try:
                serve.delete(name)
            except Exception:  # noqa: BLE001
                pass
        serve.shutdown()
        ray.shutdown()

    ceiling = statistics.median(sat["no-op ingress (ceiling)"])
    lines = [
        "# Ray Serve load benchmark (ICMA app)",
        "",
        f"- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; host {platform.node()}, {os.cpu_count()} cores shared "
        f"with other work (1/5/15-min load average at start {load_start[0]:.1f}/{load_start[1]:.1f}/{load_start[2]:.1f}, "
        f"at end {os.getloadavg()[0]:.1f}); Python {platform.python_version()}, Ray {ray.__version__}, {tool_version}",
        f"- Ray: private local ray.init(num_cpus={num_cpus}); one HTTP proxy; load from `{kind}` (compiled, same host; its CPU share below)",
        f"- command: `{' '.join(['.venv/bin/python', 'benchmarks/bench_serve_load.py'] + sys.argv[1:])}`",
        f"- body: `POST /v1/retrieve {json.dumps(body)}`; bm25s over the 300-row pool, candidate_k=10, n_shot=4",
        f"- like for like: the no-op ingress gets the app ingress's options: `{json.dumps({k: v for k, v in app_ingress.items() if k not in ('user_config', 'name')})}`",
        f"- admission (serve/admission.py): ingress.admission.max_in_flight = "
        f"{ICMAServingArgs.model_validate(_icma_args('ingress', limits[0])).ingress.admission.max_in_flight} "
        f"requests per ingress replica for the first three apps; Serve's proxy refuses past it (503 + Retry-After) after a queue of "
        f"{app_ingress.get('max_queued_requests')}",
        f"- every figure: median (min-max) of {a.reps} runs of {a.duration:g} s; raw load-generator output in benchmarks/results/serve_load_raw/",
        "",
        "## Saturation (closed loop) and placement",
        "",
        "| app | clients | 200s req/s | of ceiling | p50 ms | p95 ms | client CPU % |",
        "|---|---|---|---|---|---|---|",
    ]
    for label in apps:
        rs = [r for r in runs if r["run"].endswith(": " + label) and r["run"].startswith("saturation")]
        lines.append(f"| {label} | {clients[label]} | {_spread(sat[label])} | {statistics.median(sat[label]) / ceiling:.0%} | "
                     f"{_spread([r['ok_p50'] for r in rs])} | {_spread([r['ok_p95'] for r in rs])} | "
                     f"{_spread([r['client_cpu_pct'] for r in rs])} |")
    lines += [
        "",
        "## Open loop at half and twice each in-ingress app's own saturation rate",
        "",
        "| run | sent | 200 | 503 | other | 200s req/s | 200 p50 ms | 200 p95 ms | 503 p50 ms | 503 p99 ms | client CPU % |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for variant in variants:
        for r in half[variant] + over[variant]:
            other = {k: v for k, v in r["status"].items() if k not in (200, 503)}
            other.update(r["errors"])
            lines.append(f"| {r['run']} | {r['sent']} | {r['status'].get(200, 0)} | {r['status'].get(503, 0)} | {other or 0} | "
                         f"{r['ok_rps']:.1f} | {r['ok_p50']:.1f} | {r['ok_p95']:.1f} | {r['refused_p50']:.1f} | {r['refused_p99']:.1f} | "
                         f"{r['client_cpu_pct']:.0f} |")
    lines += ["", "## Goals (issue 12, point 3)", ""]
    for variant in variants:
        saturation = statistics.median(sat[variant])
        half_p95 = statistics.median([r["ok_p95"] for r in half[variant]])
        goodput = [r["ok_rps"] / saturation for r in over[variant]]
        refusal_p99 = [r["refused_p99"] for r in over[variant]]
        over_p95 = [r["ok_p95"] for r in over[variant]]
        lines += [
            f"**{variant}**: saturation {saturation:.1f} req/s ({saturation / ceiling:.0%} of the like-for-like no-op ceiling {ceiling:.1f})",
            f"- goodput at 2x: 200s = {_spread([100 * g for g in goodput])} % of saturation (goal >= 80%): "
            f"{'met' if statistics.median(goodput) >= 0.8 else 'NOT met'}",
            f"- refusals at 2x: p99 {_spread(refusal_p99)} ms (goal < 50 ms): {'met' if statistics.median(refusal_p99) < 50 else 'NOT met'}",
            f"- 200s at 2x: p95 {_spread(over_p95)} ms vs 4x half-rate p95 = {4 * half_p95:.1f} ms: "
            f"{'met' if statistics.median(over_p95) < 4 * half_p95 else 'NOT met'}",
            "",
        ]
    if a.autoscale_reps > 0:  # point 2 in the same run, on its own private Ray (same size)
        sys.path.insert(0, str(ROOT))
        from benchmarks.bench_serve_autoscale import run_autoscale

        _, scale_lines = run_autoscale(a.autoscale_reps, a.port + 1, clients=8)
        lines += ["## Autoscaling: ingress and Generator 1 -> 2 -> 1 replicas (same run)", "", *scale_lines]
    text = "\n".join(lines)
    a.out.write_text(text)
    (RAW / "runs.json").write_text(json.dumps(runs, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
