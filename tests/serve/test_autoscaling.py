"""Autoscaling that moves: load drives the ingress and the Generator from min (1) to max (2) replicas, then a
trickle of traffic watches them scale back to 1 (short delays in this config). Every request in both
transitions answers 200 (downscaling drains in-flight requests). The time to scale up and the p95 during
each transition are measured (benchmarks/bench_serve_autoscale.py runs the same scenario and keeps them)."""
from __future__ import annotations

import threading
import time

import pytest
import requests

from tests.serve.conftest import app_args, deploy

pytestmark = [pytest.mark.ray_cluster, pytest.mark.slow]

FAST = {"min_replicas": 1, "max_replicas": 2, "initial_replicas": 1, "upscale_delay_s": 1, "downscale_delay_s": 4,
        "metrics_interval_s": 0.5, "look_back_period_s": 2}


def autoscale_args(pool_file, cpus: float = 0.1) -> dict:
    return app_args(
        pool_file, None,
        retriever={"pool": {"path": str(pool_file)}, "text": {"backend": "bm25s"}, "molecule": {"kind": "morgan"},
                   "placement": "ingress"},
        reranker={"placement": "ingress"},
        generator={"model": "tiny-random-llama", "max_batch_size": 1, "max_new_tokens": 8, "device": "cpu",
                   "deployment_options": {"autoscaling_config": {**FAST, "target_ongoing_requests": 1},
                                          "ray_actor_options": {"num_cpus": cpus}}},
        ingress={"request_timeout_s": 60,
                 "deployment_options": {"autoscaling_config": {**FAST, "target_ongoing_requests": 2},
                                        "ray_actor_options": {"num_cpus": cpus}}},
    )


def _running(serve, app: str) -> dict[str, int]:
    deps = serve.status().applications[app].deployments
    return {name: int(d.replica_states.get("RUNNING", 0)) for name, d in deps.items()}


def _p95(values: list[float]) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))] if s else float("nan")


def scale_scenario(serve, url: str, app: str, smiles: list[str], busy_clients: int = 8, timeout_s: float = 240) -> dict:
    """Closed-loop mol2cap clients: `busy_clients` until ingress and Generator both run 2 replicas, then 1 client
    until both are back at 1. Returns timings, per-phase p95 and every non-200 answer."""
    results: list[tuple[str, float, object]] = []  # (phase, latency ms, status or error)
    phase = {"name": "up"}
    stop_busy, stop_all = threading.Event(), threading.Event()

    def client(i: int, busy: bool) -> None:
        session, n = requests.Session(), 0
        while not stop_all.is_set() and not (busy and stop_busy.is_set()):
            n += 1
            t0 = time.perf_counter()
            try:
                r = session.post(f"{url}/v1/mol2cap", json={"smiles": smiles[(i + n) % len(smiles)], "n_shot": 1},
                                 timeout=120)
                status: object = r.status_code
            except Exception as exc:  # noqa: BLE001 - a reset connection is a failed request
                status = f"{type(exc).__name__}: {exc}"[:200]
            results.append((phase["name"], 1e3 * (time.perf_counter() - t0), status))

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i, i > 0), daemon=True) for i in range(busy_clients)]
    for t in threads:
        t.start()
    up_at = down_at = None
    try:
        while time.monotonic() - started < timeout_s:
            counts = _running(serve, app)
            if counts.get("ICMAIngress") == 2 and counts.get("Generator") == 2:
                up_at = time.monotonic() - started
                break
            time.sleep(0.25)
        stop_busy.set()
        phase["name"] = "down"
        down_started = time.monotonic()
        while up_at is not None and time.monotonic() - down_started < timeout_s:
            counts = _running(serve, app)
            if counts.get("ICMAIngress") == 1 and counts.get("Generator") == 1:
                down_at = time.monotonic() - down_started
                break
            time.sleep(0.25)
        time.sleep(2)  # requests right after the last replica left
    finally:
        stop_all.set()
        for t in threads:
            t.join(timeout=150)
    return {
        "scale_up_s": up_at, "scale_down_s": down_at,
        "requests": {p: sum(1 for ph, _, _ in results if ph == p) for p in ("up", "down")},
        "p95_ms": {p: _p95([ms for ph, ms, s in results if ph == p and s == 200]) for p in ("up", "down")},
        "failed": [(ph, s) for ph, _, s in results if s != 200],
        "hung_clients": sum(t.is_alive() for t in threads),
    }


def test_ingress_and_generator_scale_up_and_back_without_failures(serve_instance, chebi20_pool_file, chebi20_test_file):
    from ray_icma.data import load_records

    smiles = [r.smiles for r in load_records(chebi20_test_file).records[:20]]
    url = deploy(serve_instance, autoscale_args(chebi20_pool_file), "icma-autoscale", "/autoscale")
    try:
        out = scale_scenario(serve_instance, url, "icma-autoscale", smiles)
    finally:
        serve_instance.delete("icma-autoscale")
    print("autoscaling:", out)
    assert out["scale_up_s"] is not None, f"never reached 2 ingress + 2 Generator replicas: {out}"
    assert out["scale_down_s"] is not None, f"never came back to 1 + 1 replicas: {out}"
    assert out["failed"] == [] and out["hung_clients"] == 0, out
    assert out["requests"]["up"] > 10 and out["requests"]["down"] > 3, out
