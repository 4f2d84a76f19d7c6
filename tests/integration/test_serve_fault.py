"""The ICMA Serve app on the multi-host cluster, deployed through the Serve REST API (what
``serve deploy`` / a RayService does), reached over HTTP on the head's and a worker node's proxy;
then a Generator replica process is killed (SIGKILL) under load.

Counted: requests sent, answered 200, failed with a clear error (a 5xx whose JSON ``detail``
names the failed stage), and lost (no answer, a dropped connection or an unexplained body).
Expected: lost = 0, failures only among requests that were in flight when the replica died, and
Serve back to two Generator replicas.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.integration.conftest import dashboard_headers

pytestmark = [pytest.mark.ray_cluster, pytest.mark.slow]

HTTP_PORT = 8277
APP = "icma-netns"
DEPLOY_TIMEOUT_S = 300
CLIENTS = 4
REQUEST_TIMEOUT_S = 60
CLEAR_ERROR_WORDS = ("Generator", "replica", "retry")


@pytest.fixture(scope="module")
def adapters(tmp_path_factory) -> dict[str, str]:
    """One random LoRA adapter (non-zero B) over the seeded tiny Llama."""
    import torch
    from peft import LoraConfig, get_peft_model

    from ray_icma.models import tiny_random_llama

    base, _ = tiny_random_llama()
    torch.manual_seed(100)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    out = tmp_path_factory.mktemp("netns-serve") / "mol2cap"
    model.save_pretrained(out)
    return {"mol2cap": str(out)}


def _serve_config(pool_file, adapters: dict[str, str]) -> dict:
    args = {
        "retriever": {
            "pool": {"path": str(pool_file)},
            "text": {"backend": "bm25s"},
            "molecule": {"kind": "morgan"},
            "candidate_k": 10,
            "deployment_options": {"ray_actor_options": {"num_cpus": 0.1}},
        },
        "reranker": {"deployment_options": {"ray_actor_options": {"num_cpus": 0.05}}},
        "generator": {
            "model": "tiny-random-llama",
            "adapters": adapters,
            "default_adapter": {"mol2cap": "mol2cap"},
            "max_new_tokens": 8,
            "max_batch_size": 4,
            "device": "cpu",
            "deployment_options": {"num_replicas": 2, "ray_actor_options": {"num_cpus": 0.2}},
        },
        "ingress": {"deployment_options": {"ray_actor_options": {"num_cpus": 0.1}}, "request_timeout_s": 30},
    }
    return {
        "proxy_location": "EveryNode",
        "http_options": {"host": "0.0.0.0", "port": HTTP_PORT},
        "applications": [{"name": APP, "route_prefix": "/", "import_path": "serve.builder:build_icma_app", "args": args}],
    }


def _app_details(dashboard: str) -> dict:
    r = requests.get(f"{dashboard}/api/serve/applications/", headers=dashboard_headers(), timeout=30)
    r.raise_for_status()
    return r.json().get("applications", {}).get(APP, {})


def _replicas(dashboard: str, deployment: str) -> list[dict]:
    return _app_details(dashboard).get("deployments", {}).get(deployment, {}).get("replicas", [])


@pytest.fixture(scope="module")
def icma_http(netns_cluster, chebi20_pool_file, adapters):
    """Deploy through the dashboard's Serve REST API; base URL of the head's proxy."""
    dashboard = netns_cluster.dashboard
    r = requests.put(f"{dashboard}/api/serve/applications/", json=_serve_config(chebi20_pool_file, adapters),
                     headers=dashboard_headers(), timeout=60)
    assert r.status_code == 200, r.text
    url = f"http://{netns_cluster.head_ip}:{HTTP_PORT}"
    deadline, last = time.monotonic() + DEPLOY_TIMEOUT_S, None
    while time.monotonic() < deadline:
        details = _app_details(dashboard)
        status = details.get("status")
        assert status != "DEPLOY_FAILED", details.get("message")
        try:
            last = requests.get(f"{url}/readyz", timeout=10).status_code
            if status == "RUNNING" and last == 200:
                break
        except requests.RequestException as exc:
            last = exc
        time.sleep(2)
    else:
        raise TimeoutError(f"{APP} not ready after {DEPLOY_TIMEOUT_S} s (status {status}, last /readyz: {last})")
    yield url
    requests.delete(f"{dashboard}/api/serve/applications/", headers=dashboard_headers(), timeout=60)


def test_app_answers_on_head_and_worker_node_proxies(netns_cluster, icma_http, chebi20_pool_file):
    import pandas as pd

    smiles = pd.read_csv(chebi20_pool_file, sep="\t")["SMILES"].iloc[0]
    for base in (icma_http, f"http://{netns_cluster.node_ip(1)}:{HTTP_PORT}"):
        r = requests.post(f"{base}/v1/mol2cap", json={"smiles": smiles}, timeout=REQUEST_TIMEOUT_S)
        assert r.status_code == 200, r.text
        assert isinstance(r.json()["caption"], str)
        hits = requests.post(f"{base}/v1/retrieve", json={"task": "mol2cap", "query": smiles, "k": 5}, timeout=REQUEST_TIMEOUT_S)
        assert hits.status_code == 200 and len(hits.json()["candidates"]) == 5, hits.text
    replica_ips = {rep.get("node_ip") for rep in _replicas(netns_cluster.dashboard, "Generator")}
    assert replica_ips <= {netns_cluster.node_ip(i) for i in range(1, netns_cluster.n_nodes + 1)}, replica_ips


class LoadRecorder:
    """``CLIENTS`` threads posting /v1/mol2cap until stopped; every request's outcome is kept."""

    def __init__(self, url: str, smiles: list[str]):
        self.url, self.smiles = url, smiles
        self.records: list[dict] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(CLIENTS)
        self._futures = []

    def start(self) -> "LoadRecorder":
        self._futures = [self._pool.submit(self._client, i) for i in range(CLIENTS)]
        return self

    def _client(self, i: int) -> None:
        n = i
        while not self._stop.is_set():
            smi = self.smiles[n % len(self.smiles)]
            n += CLIENTS
            rec = {"start": time.time()}
            try:
                r = requests.post(f"{self.url}/v1/mol2cap", json={"smiles": smi}, timeout=REQUEST_TIMEOUT_S)
                rec["status"] = r.status_code
                try:
                    body = r.json()
                except ValueError:
                    body = {"raw": r.text[:200]}
                rec["body"] = body
            except requests.RequestException as exc:
                rec["status"], rec["error"] = None, f"{type(exc).__name__}: {exc}"
            rec["end"] = time.time()
            with self._lock:
                self.records.append(rec)

    def ok_count(self, since: float = 0.0) -> int:
        with self._lock:
            return sum(1 for r in self.records if r["status"] == 200 and r["start"] >= since)

    def stop(self) -> list[dict]:
        self._stop.set()
        for f in self._futures:
            f.result()
        self._pool.shutdown()
        return list(self.records)


def _classify(rec: dict) -> str:
    if rec["status"] == 200 and isinstance(rec["body"].get("caption"), str):
        return "ok"
    detail = rec.get("body", {}).get("detail") if rec["status"] else None
    if rec["status"] and rec["status"] >= 500 and isinstance(detail, str) and any(w in detail for w in CLEAR_ERROR_WORDS):
        return "failed_clear"
    return "lost"


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise TimeoutError(f"{what} within {timeout:.0f} s")


def test_generator_replica_killed_under_load(netns_cluster, icma_http, chebi20_pool_file, recovery_figures):
    import os
    import signal

    import pandas as pd

    dashboard = netns_cluster.dashboard
    running = [rep for rep in _replicas(dashboard, "Generator") if rep.get("state") == "RUNNING"]
    assert len(running) == 2, running
    victim = running[0]
    smiles = pd.read_csv(chebi20_pool_file, sep="\t")["SMILES"].tolist()[:50]

    load = LoadRecorder(icma_http, smiles).start()
    try:
        _wait(lambda: load.ok_count() >= 2 * CLIENTS, 120, "no steady load")
        killed_at = time.time()
        os.kill(int(victim["pid"]), signal.SIGKILL)  # the replica's worker process on its netns node
        _wait(lambda: load.ok_count(since=killed_at) >= 2 * CLIENTS and time.time() - killed_at > 5, 120,
              "no successful requests after the replica was killed")

        def replaced() -> bool:
            reps = [r for r in _replicas(dashboard, "Generator") if r.get("state") == "RUNNING"]
            return len(reps) == 2 and victim["replica_id"] not in {r["replica_id"] for r in reps}

        _wait(replaced, 180, "Serve did not bring the Generator back to 2 replicas")
        replaced_at = time.time()
    finally:
        records = load.stop()

    kinds = [_classify(r) for r in records]
    in_flight = sum(1 for r in records if r["start"] <= killed_at <= r["end"])
    failed = [r for r, k in zip(records, kinds) if k == "failed_clear"]
    lost = [r for r, k in zip(records, kinds) if k == "lost"]
    first_ok_after = min((r["end"] for r, k in zip(records, kinds) if k == "ok" and r["start"] >= killed_at), default=float("nan"))
    recovery_figures["serve_replica_kill"] = {
        "clients": CLIENTS,
        "sent": len(records),
        "ok": kinds.count("ok"),
        "failed_with_clear_error": len(failed),
        "lost": len(lost),
        "in_flight_at_kill": in_flight,
        "failed_started_after_kill": sum(1 for r in failed if r["start"] > killed_at),
        "error_example": failed[0]["body"]["detail"] if failed else None,
        "first_ok_after_kill_s": round(first_ok_after - killed_at, 2),
        "replica_replaced_s": round(replaced_at - killed_at, 1),
        "load_s": round(max(r["end"] for r in records) - min(r["start"] for r in records), 1),
    }
    assert not lost, lost[:3]
    # Only requests already routed to the dying replica may fail (in flight at the kill, or sent
    # before the router saw the replica die); everything else is served by the other replica.
    assert len(failed) <= in_flight + CLIENTS, recovery_figures["serve_replica_kill"]
    assert load.ok_count(since=killed_at) >= 2 * CLIENTS
