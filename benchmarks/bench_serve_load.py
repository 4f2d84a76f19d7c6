"""Load benchmark of the ICMA Serve app, against a no-op Serve ingress measured in the same run.

Bounded: fixed request counts, 127.0.0.1 only, deletes its apps at the end. aiohttp client.

    .venv/bin/python benchmarks/bench_serve_load.py                    # private local Ray; ~4 min on 2 idle cores
    RAY_ADDRESS=127.0.0.1:6380 .venv/bin/python benchmarks/bench_serve_load.py   # on a running cluster
    .venv/bin/python benchmarks/bench_serve_load.py --smollm2                             # + SmolLM2-135M generation
    .venv/bin/python benchmarks/bench_serve_load.py --quick                               # fewer requests

What it measures (closed loop unless said otherwise, POST bodies from the bundled ChEBI-20 rows):
1. ceiling: a no-op FastAPI Serve ingress (max_ongoing_requests=64), 1 and 20 clients;
2. /v1/retrieve (cap2mol, bm25s) with the stages as separate deployments ("composed") and with
   retrieval in the ingress process ("in-ingress"), 1 and 20 clients, as a fraction of (1);
3. open loop at half the best variant's saturation throughput: p95;
4. open loop at twice that saturation rate: how many 200 / 503 (with Retry-After) / other, and
   that every request got an answer;
5. /v1/mol2cap with the tiny random Llama, 8 clients, @serve.batch on (max_batch_size=8) vs off (1),
   switched in place through user_config; optionally SmolLM2-135M (--smollm2).
Results go to benchmarks/results/serve_load.md (and stdout).
"""
# No `from __future__ import annotations`: the no-op ingress below needs real annotations for FastAPI.
import argparse
import asyncio
import datetime as dt
import os
import platform
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POOL = ROOT / "tests" / "assets" / "chebi20_validation_300.txt"
QUERIES = ROOT / "tests" / "assets" / "chebi20_test_200.txt"
RESULTS = ROOT / "benchmarks" / "results" / "serve_load.md"


# -- load generation ---------------------------------------------------------------------------
def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


class Run:
    def __init__(self, name: str):
        self.name = name
        self.lat_ms: list[float] = []
        self.status: dict[int | str, int] = {}
        self.retry_after_missing = 0
        self.sent = 0
        self.wall_s = 0.0

    def record(self, status: int | str, ms: float, retry_after: str | None) -> None:
        self.status[status] = self.status.get(status, 0) + 1
        if status == 200:
            self.lat_ms.append(ms)
        if status == 503 and not retry_after:
            self.retry_after_missing += 1

    @property
    def ok(self) -> int:
        return self.status.get(200, 0)

    @property
    def answered(self) -> int:
        return sum(v for k, v in self.status.items() if isinstance(k, int))

    @property
    def rps(self) -> float:
        return self.ok / self.wall_s if self.wall_s else 0.0

    def row(self) -> dict:
        return {
            "name": self.name,
            "sent": self.sent,
            "ok": self.ok,
            "rps": self.rps,
            "p50": _pct(self.lat_ms, 50),
            "p95": _pct(self.lat_ms, 95),
            "p99": _pct(self.lat_ms, 99),
            "status": dict(sorted(self.status.items(), key=lambda kv: str(kv[0]))),
        }


async def _one(session, url: str, body: dict, run: Run, timeout_s: float) -> None:
    import aiohttp

    run.sent += 1
    t0 = time.perf_counter()
    try:
        async with session.post(url, json=body, timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            await resp.read()
            run.record(resp.status, 1e3 * (time.perf_counter() - t0), resp.headers.get("Retry-After"))
    except asyncio.TimeoutError:
        run.record("timeout", 0.0, None)
    except aiohttp.ClientError as exc:
        run.record(type(exc).__name__, 0.0, None)


async def closed_loop(name: str, url: str, bodies: list[dict], clients: int, total: int, timeout_s: float = 60) -> Run:
    """`clients` workers, each sending its next request when the previous one is answered."""
    import aiohttp

    run = Run(name)
    counter = iter(range(total))
    conn = aiohttp.TCPConnector(limit=clients + 4)
    async with aiohttp.ClientSession(connector=conn) as session:

        async def worker() -> None:
            for i in counter:
                await _one(session, url, bodies[i % len(bodies)], run, timeout_s)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        run.wall_s = time.perf_counter() - t0
    return run


async def open_loop(name: str, url: str, bodies: list[dict], rate: float, total: int, timeout_s: float = 30) -> Run:
    """Poisson arrivals at `rate` req/s, `total` requests, regardless of how fast answers come."""
    import aiohttp

    run = Run(name)
    rng = random.Random(0)
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn) as session:
        tasks = []
        t0 = time.perf_counter()
        next_t = t0
        for i in range(total):
            next_t += rng.expovariate(rate)
            delay = next_t - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(_one(session, url, bodies[i % len(bodies)], run, timeout_s)))
        await asyncio.gather(*tasks)
        run.wall_s = time.perf_counter() - t0
    return run


# -- apps --------------------------------------------------------------------------------------
def _noop_app():
    from fastapi import FastAPI, Request
    from ray import serve

    api = FastAPI()

    @serve.deployment(max_ongoing_requests=64, ray_actor_options={"num_cpus": 0.5})
    @serve.ingress(api)
    class Noop:
        @api.post("/v1/retrieve")
        async def retrieve(self, request: Request) -> dict:
            body = await request.json()
            return {"task": body.get("task"), "examples": []}

    return Noop.bind()


def _icma_args(placement: str, generator: dict | None) -> dict:
    return {
        "retriever": {
            "pool": {"path": str(POOL)},
            "text": {"backend": "bm25s"},
            "molecule": {"kind": "morgan"},
            "placement": placement,
            "deployment_options": {"ray_actor_options": {"num_cpus": 0.5}},
        },
        "reranker": {"placement": placement, "deployment_options": {"ray_actor_options": {"num_cpus": 0.1}}},
        "generator": generator,
        "ingress": {"deployment_options": {"ray_actor_options": {"num_cpus": 0.5}}},
    }


def _deploy(app, name: str, prefix: str, port: int) -> str:
    from ray import serve

    t0 = time.perf_counter()
    serve.run(app, name=name, route_prefix=prefix, blocking=False)
    print(f"  deployed {name} in {time.perf_counter() - t0:.1f}s", flush=True)
    return f"http://127.0.0.1:{port}{prefix}"


def _port_in_use(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


async def _until_ok(url: str, body: dict, timeout_s: float = 120) -> None:
    """The proxy learns new routes asynchronously: wait for a 200 before measuring."""
    import aiohttp

    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.post(url, json=body) as resp:
                    await resp.read()
                    if resp.status == 200:
                        return
                    last = resp.status
            except aiohttp.ClientError as exc:
                last = exc
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} never answered 200 (last: {last})")
            await asyncio.sleep(0.5)


def _running_port(asked: int) -> int:
    try:
        from ray.serve.context import _get_global_client

        return int(_get_global_client().http_config.port)
    except Exception:  # noqa: BLE001 - private API; fall back to what was asked
        return asked


def _bodies() -> tuple[list[dict], list[dict]]:
    from ray_icma.data import load_records

    recs = load_records(QUERIES).records
    return (
        [{"task": "cap2mol", "query": r.text} for r in recs],
        [{"smiles": r.smiles, "max_new_tokens": 16} for r in recs],
    )


def _fmt(row: dict, ceiling: float | None = None) -> str:
    frac = f"{row['rps'] / ceiling:.0%}" if ceiling else ""
    return (
        f"| {row['name']} | {row['ok']}/{row['sent']} | {row['rps']:.1f} | {frac} | {row['p50']:.1f} | "
        f"{row['p95']:.1f} | {row['p99']:.1f} | {row['status']} |"
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=8125, help="Serve HTTP port (127.0.0.1)")
    p.add_argument("--clients", type=int, default=20, help="concurrency of the saturating closed-loop runs")
    p.add_argument("--quick", action="store_true", help="a third of the requests")
    p.add_argument("--smollm2", action="store_true", help="also generate with SmolLM2-135M")
    p.add_argument("--no-generation", action="store_true", help="skip the generation runs")
    p.add_argument("--out", type=Path, default=RESULTS)
    a = p.parse_args()

    import ray
    from ray import serve

    from serve.builder import build_icma_app

    if _port_in_use(a.port):
        print(f"127.0.0.1:{a.port} is already in use (another Serve proxy?); pass --port", file=sys.stderr)
        return 2

    scale = 3 if a.quick else 1
    load_at_start = os.getloadavg()[0]
    n1, n20 = 300 // scale, 1500 // scale
    address = os.environ.get("RAY_ADDRESS")
    # Without RAY_ADDRESS: a private local Ray (4 logical CPUs), so a busy shared cluster cannot starve it.
    ray.init(address=address or "local", log_to_driver=False,
             **({} if address else {"num_cpus": 4, "include_dashboard": False}))
    serve.start(http_options={"host": "127.0.0.1", "port": a.port}, proxy_location="HeadOnly")
    a.port = _running_port(a.port)  # an already running Serve keeps its own port
    retrieve_bodies, mol2cap_bodies = _bodies()
    lines: list[str] = []
    rows: dict[str, dict] = {}
    apps = ["bench-noop", "bench-composed", "bench-ingress", "bench-gen"]
    try:
        print("deploying...", flush=True)
        noop = _deploy(_noop_app(), "bench-noop", "/noop", a.port) + "/v1/retrieve"
        composed = _deploy(build_icma_app(_icma_args("deployment", None)), "bench-composed", "/composed", a.port) + "/v1/retrieve"
        inproc = _deploy(build_icma_app(_icma_args("ingress", None)), "bench-ingress", "/inproc", a.port) + "/v1/retrieve"

        async def retrieval_suite() -> None:
            for url in (noop, composed, inproc):  # warm up every path
                await _until_ok(url, retrieve_bodies[0])
                await closed_loop("warmup", url, retrieve_bodies, 4, 40)
            for clients, total in ((1, n1), (a.clients, n20)):
                for label, url in (("no-op ingress (ceiling)", noop), ("composed: ingress->Retriever->Reranker", composed),
                                   ("retrieval in ingress", inproc)):
                    run = await closed_loop(f"{label}, {clients} client(s)", url, retrieve_bodies, clients, total)
                    rows[f"{label}|{clients}"] = run.row()
                    print(" ", run.row(), flush=True)

        asyncio.run(retrieval_suite())
        ceiling1 = rows["no-op ingress (ceiling)|1"]["rps"]
        ceiling20 = rows[f"no-op ingress (ceiling)|{a.clients}"]["rps"]
        best_label = max(("composed: ingress->Retriever->Reranker", "retrieval in ingress"), key=lambda l: rows[f"{l}|{a.clients}"]["rps"])
        best_url = composed if best_label.startswith("composed") else inproc
        saturation = rows[f"{best_label}|{a.clients}"]["rps"]
        if saturation <= 0:
            raise RuntimeError(f"no successful request at {a.clients} clients: {rows[f'{best_label}|{a.clients}']['status']}")

        half = asyncio.run(open_loop(f"open loop {saturation / 2:.0f} req/s (half saturation), {best_label}", best_url,
                                     retrieve_bodies, saturation / 2, max(200, int(saturation * 5 / scale))))
        over = asyncio.run(open_loop(f"open loop {2 * saturation:.0f} req/s (2x saturation), {best_label}", best_url,
                                     retrieve_bodies, 2 * saturation, int(saturation * 2 * 8 / scale), timeout_s=60))
        print(" ", half.row(), "\n ", over.row(), flush=True)
        serve.delete("bench-composed")
        serve.delete("bench-ingress")

        gen_rows = []
        gen_models = [("tiny-random-llama", 8, 160 // scale)] + ([("smollm2-135m", 8, 48 // scale)] if a.smollm2 else [])
        if a.no_generation:
            gen_models = []
        for model, clients, total in gen_models:
            for mbs in (8, 1):
                gen = {"model": model, "max_batch_size": mbs, "batch_wait_timeout_s": 0.02, "max_new_tokens": 16, "device": "auto"}
                url = _deploy(build_icma_app(_icma_args("ingress", gen)), "bench-gen", "/gen", a.port) + "/v1/mol2cap"
                asyncio.run(_until_ok(url, mol2cap_bodies[0], timeout_s=600))
                asyncio.run(closed_loop("warmup", url, mol2cap_bodies, clients, 2 * clients, timeout_s=600))
                run = asyncio.run(closed_loop(f"mol2cap {model}, {clients} clients, max_batch_size={mbs}", url,
                                              mol2cap_bodies, clients, total, timeout_s=600))
                print(" ", run.row(), flush=True)
                gen_rows.append(run.row())
            serve.delete("bench-gen")

        # -- report -------------------------------------------------------------------------
        lines += [
            "# Ray Serve load benchmark (ICMA app)",
            "",
            f"- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; host: {platform.node()}, {os.cpu_count()} CPUs "
            f"(shared with other work; 1-min load average at start {load_at_start:.1f}, at end {os.getloadavg()[0]:.1f}), Python {platform.python_version()}, Ray {ray.__version__}",
            f"- Ray: {'cluster ' + address if address else 'local ray.init(num_cpus=4)'}; one HTTP proxy; load client on the same host (aiohttp)",
            f"- command: `{' '.join(['python', 'benchmarks/bench_serve_load.py'] + sys.argv[1:])}`",
            "- body: `POST /v1/retrieve {task: cap2mol, query: <ChEBI-20 test caption>}`, bm25s over the 300-row pool, "
            "candidate_k=10, n_shot=4 (code strategy)",
            "",
            "## Closed loop, /v1/retrieve",
            "",
            "| run | ok/sent | req/s | of ceiling | p50 ms | p95 ms | p99 ms | statuses |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for clients, ceiling in ((1, ceiling1), (a.clients, ceiling20)):
            for label in ("no-op ingress (ceiling)", "composed: ingress->Retriever->Reranker", "retrieval in ingress"):
                lines.append(_fmt(rows[f"{label}|{clients}"], ceiling))
        lines += [
            "",
            f"At {a.clients} clients: composed {rows[f'composed: ingress->Retriever->Reranker|{a.clients}']['rps'] / ceiling20:.0%} "
            f"of the ceiling, retrieval in the ingress {rows[f'retrieval in ingress|{a.clients}']['rps'] / ceiling20:.0%} (goal >= 80%).",
            "",
            "## Open loop (Poisson arrivals), best variant",
            "",
            "| run | ok/sent | req/s | | p50 ms | p95 ms | p99 ms | statuses |",
            "|---|---|---|---|---|---|---|---|",
            _fmt(half.row()),
            _fmt(over.row()),
            "",
            f"Half saturation p95: {half.row()['p95']:.1f} ms (goal < 50 ms). "
            f"Twice saturation: {over.sent} sent, {over.answered} answered with an HTTP status "
            f"({over.ok} x 200, {over.status.get(503, 0)} x 503, {over.retry_after_missing} 503s without Retry-After), "
            f"{over.sent - over.answered} without an answer (timeouts/connection errors).",
            "",
            "## Generation, /v1/mol2cap (16 new tokens), @serve.batch on vs off",
            "",
            "| run | ok/sent | req/s | | p50 ms | p95 ms | p99 ms | statuses |",
            "|---|---|---|---|---|---|---|---|",
            *[_fmt(r) for r in gen_rows],
            "",
        ]
        for i in range(0, len(gen_rows), 2):
            on, off = gen_rows[i], gen_rows[i + 1]
            lines.append(f"- {on['name'].split(',')[0]}: batching on/off throughput ratio {on['rps'] / max(off['rps'], 1e-9):.2f}x")
        text = "\n".join(lines) + "\n"
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(text)
        print(text)
    finally:
        for name in apps:
            try:
                serve.delete(name)
            except Exception:  # noqa: BLE001
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
