"""Elasticsearch stopped in the middle of a bulk-indexing Ray job, then a rerun.

A separate Elasticsearch on its own port (never the shared one on 9200) is started for this
module and stopped at the end. The job (submitted to the netns cluster through the Jobs API)
bulk-loads a caption corpus; when Elasticsearch has taken a few thousand documents it is stopped.
The job must fail with a clear one-line error; after Elasticsearch is back, the same job must
complete and the alias must hold exactly the corpus (no duplicates from the failed attempt).
"""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import _missing_service

pytestmark = [pytest.mark.ray_cluster, pytest.mark.slow, pytest.mark.es]

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).resolve().parent / "jobs" / "bm25_job.py"
ES_PORT = int(os.environ.get("RAY_ICMA_FAULT_ES_PORT", "9250"))
ES_URL = f"http://127.0.0.1:{ES_PORT}"
INDEX = "test-integration-es-fault"
COPIES = 200  # 300 captions x 200 = 60k documents: several seconds of bulk loading
STOP_AFTER_DOCS = 3000


def _es(action: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAY_ICMA_ES_PORT": str(ES_PORT)}
    return subprocess.run(["bash", str(ROOT / "scripts" / f"{action}_elasticsearch.sh")], env=env,
                          capture_output=True, text=True, timeout=timeout)


def _healthy(url: str) -> bool:
    try:
        return requests.get(f"{url}/_cluster/health", params={"wait_for_status": "yellow", "timeout": "1s"}, timeout=5).ok
    except requests.RequestException:
        return False


def _start_es(extra_wait_s: float = 240) -> subprocess.CompletedProcess:
    """start_elasticsearch.sh gives the JVM 90 s; on a loaded box it may need longer, so a start
    whose daemon is still coming up gets ``extra_wait_s`` more before it counts as failed."""
    started = _es("start")
    deadline = time.monotonic() + extra_wait_s
    while started.returncode != 0 and time.monotonic() < deadline:
        if _healthy(ES_URL):
            return subprocess.CompletedProcess(started.args, 0, started.stdout, started.stderr)
        time.sleep(2)
    return started


@pytest.fixture(scope="module")
def private_es():
    """Its own Elasticsearch on ES_PORT; stopped (and its indices gone with it) at the end."""
    if ES_PORT == 9200:
        pytest.fail("RAY_ICMA_FAULT_ES_PORT must not be the shared Elasticsearch port 9200")
    started = _start_es()
    if started.returncode != 0:
        _missing_service(f"could not start a private Elasticsearch on {ES_URL}: {started.stderr.strip()[-500:]}")
    yield ES_URL
    _delete_test_indices(ES_URL)
    _es("stop", timeout=120)


def _test_indices(url: str) -> list[str]:
    r = requests.get(f"{url}/_cat/indices/{INDEX}-*", params={"format": "json", "bytes": "b"}, timeout=30)
    return [i["index"] for i in r.json()] if r.ok else []


def _delete_test_indices(url: str) -> None:
    """By name: wildcard deletes are refused (action.destructive_requires_name)."""
    try:
        for name in _test_indices(url):
            requests.delete(f"{url}/{name}", timeout=30)
    except (requests.RequestException, ValueError):
        pass


@pytest.fixture(scope="module")
def corpus(chebi20_pool_file, tmp_path_factory) -> tuple[Path, int]:
    import pandas as pd

    captions = pd.read_csv(chebi20_pool_file, sep="\t", dtype={"CID": str})
    path = tmp_path_factory.mktemp("es-fault") / "captions.tsv"
    n = 0
    with path.open("w") as fh:
        for copy in range(COPIES):
            for cid, text in zip(captions["CID"], captions["description"]):
                fh.write(f"{cid}-{copy}\t{' '.join(str(text).split())}\n")
                n += 1
    return path, n


def _indexed_so_far(url: str) -> int:
    """Documents Elasticsearch has accepted into the job's new index (counted before any refresh)."""
    try:
        stats = requests.get(f"{url}/{INDEX}-*/_stats/indexing", timeout=5).json()
        return int(stats["_all"]["primaries"].get("indexing", {}).get("index_total", 0))
    except (requests.RequestException, ValueError, KeyError):
        return 0


def test_es_stopped_mid_indexing_then_rerun_without_duplicates(netns_cluster, private_es, corpus, recovery_figures):
    import sys

    path, n_docs = corpus
    args = [sys.executable, DRIVER, private_es, INDEX, path]

    # 1. Stop Elasticsearch while the job bulk-loads.
    _delete_test_indices(private_es)  # leftovers of an interrupted earlier run (the data dir persists)
    job_id = netns_cluster.submit(args)
    deadline = time.monotonic() + 300
    while _indexed_so_far(private_es) < STOP_AFTER_DOCS:
        status = netns_cluster.client().get_job_status(job_id)
        assert not status.is_terminal(), f"job ended ({status}) before Elasticsearch was stopped: {netns_cluster.client().get_job_logs(job_id)[-2000:]}"
        assert time.monotonic() < deadline, "the job never started bulk-loading"
        time.sleep(0.2)
    docs_at_stop = _indexed_so_far(private_es)
    stopped_at = time.time()
    assert _es("stop", timeout=120).returncode == 0
    failed = netns_cluster.wait(job_id, timeout=300)
    failed_at = time.time()
    assert failed.status == "FAILED", failed.logs[-3000:]
    assert f"error: Elasticsearch at {private_es} is not reachable" in failed.logs, failed.logs[-3000:]
    assert "Traceback" not in failed.logs, failed.logs[-3000:]

    # 2. Elasticsearch back; the rerun completes and the alias holds the corpus exactly once
    # (documents are keyed by id, so one index behind the alias with n_docs documents has no duplicates).
    restart = time.time()
    assert _start_es().returncode == 0
    es_back_at = time.time()
    rerun = netns_cluster.run(args, timeout=420)
    assert rerun.status == "SUCCEEDED", rerun.logs[-3000:]
    aliases = requests.get(f"{private_es}/_alias/{INDEX}", timeout=30).json()
    assert len(aliases) == 1, aliases
    count = requests.get(f"{private_es}/{INDEX}/_count", timeout=30).json()["count"]
    cat = requests.get(f"{private_es}/_cat/indices/{INDEX}-*", params={"format": "json", "bytes": "b"}, timeout=30).json()
    indices = [i["index"] for i in cat]
    store_bytes = sum(int(i["store.size"]) for i in cat if i["index"] in aliases)  # for cluster/SCALING.md
    recovery_figures["es_stopped_mid_indexing"] = {
        "corpus_docs": n_docs,
        "docs_accepted_before_stop": docs_at_stop,
        "stop_to_job_failed_s": round(failed_at - stopped_at, 1),
        "error_line": next((line for line in failed.logs.splitlines() if line.startswith("error:")), None),
        "es_restart_s": round(es_back_at - restart, 1),
        "rerun_job_s": round(rerun.seconds, 1),
        "docs_after_rerun": count,
        "store_bytes_per_doc": round(store_bytes / max(count, 1)),
        "orphan_partial_indices": sorted(set(indices) - set(aliases)),
    }
    assert count == n_docs
