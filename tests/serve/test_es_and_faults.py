"""Faults on a real cluster: the Elasticsearch-backed retriever (real ES behind a TCP forwarder the
test can cut) and a Generator past its queue limit. Retrieval runs inside the ingress here
(placement=ingress), so this app also covers that path."""
from __future__ import annotations

import concurrent.futures as cf
import time

import pytest
import requests

from tests.serve.conftest import app_args, deploy

pytestmark = [pytest.mark.ray_cluster, pytest.mark.es]


@pytest.fixture(scope="module")
def es_app(serve_instance, chebi20_pool_file, es_forwarder, es_index_name):
    args = app_args(
        chebi20_pool_file,
        None,
        retriever={
            "pool": {"path": str(chebi20_pool_file)},
            "text": {"backend": "elasticsearch", "url": f"http://127.0.0.1:{es_forwarder.port}",
                     "index_name": es_index_name, "request_timeout_s": 3, "max_retries": 0},
            "molecule": {"kind": "topological"},
            "placement": "ingress",
        },
        reranker={"placement": "ingress"},
        generator={
            "model": "tiny-random-llama",
            "max_batch_size": 1,
            "device": "cpu",
            "max_new_tokens": 4,
            # One request at a time: the ingress admits one generation (its capacity), the others get 503 + Retry-After.
            "deployment_options": {"num_replicas": 1, "max_ongoing_requests": 1, "max_queued_requests": 2,
                                   "ray_actor_options": {"num_cpus": 0.2}},
        },
    )
    url = deploy(serve_instance, args, "icma-es", "/es")
    yield url
    serve_instance.delete("icma-es")


def post(url, path, body, timeout=60):
    return requests.post(f"{url}{path}", json=body, timeout=timeout)


def test_es_backed_cap2mol_then_es_dies_and_comes_back(es_app, es_forwarder, chebi20_test_file):
    from ray_icma.data import load_records

    query = load_records(chebi20_test_file).records[3]
    ready = requests.get(f"{es_app}/readyz", timeout=30).json()
    assert ready["ready"] and ready["retriever"]["text_backend"] == "elasticsearch"
    ok = post(es_app, "/v1/cap2mol", {"caption": query.text})
    assert ok.status_code == 200, ok.text
    assert len(ok.json()["examples"]) == 4 and ok.json()["examples"][-1]["score"] > 0

    es_forwarder.stop()
    try:
        t0 = time.monotonic()
        dead = post(es_app, "/v1/cap2mol", {"caption": query.text})
        assert dead.status_code == 503, dead.text
        assert dead.headers.get("Retry-After") == "1"
        assert "Elasticsearch" in dead.json()["detail"] and "Traceback" not in dead.text
        assert time.monotonic() - t0 < 20
        assert post(es_app, "/v1/retrieve", {"task": "cap2mol", "query": query.text}).status_code == 503
        # the molecule side does not need ES: it keeps working
        mol = post(es_app, "/v1/mol2cap", {"smiles": query.smiles})
        assert mol.status_code == 200, mol.text
        assert post(es_app, "/v1/retrieve", {"task": "mol2cap", "query": query.smiles}).status_code == 200
        not_ready = requests.get(f"{es_app}/readyz", timeout=30)
        assert not_ready.status_code == 503 and not_ready.json()["retriever"]["text_ready"] is False
        assert requests.get(f"{es_app}/healthz", timeout=10).status_code == 200
    finally:
        es_forwarder.start()
    deadline = time.monotonic() + 60
    while True:  # the retriever retries the backend every few seconds and re-indexes the pool
        back = post(es_app, "/v1/cap2mol", {"caption": query.text})
        if back.status_code == 200 or time.monotonic() > deadline:
            break
        assert back.status_code == 503
        time.sleep(1)
    assert back.status_code == 200, back.text
    assert requests.get(f"{es_app}/readyz", timeout=30).status_code == 200


def test_past_the_queue_limit_is_503_with_retry_after_never_a_drop(es_app, chebi20_test_file):
    from ray_icma.data import load_records

    smiles = [r.smiles for r in load_records(chebi20_test_file).records[:12]]

    def call(s):
        return post(es_app, "/v1/mol2cap", {"smiles": s, "max_new_tokens": 256, "n_shot": 0}, timeout=180)

    with cf.ThreadPoolExecutor(len(smiles)) as pool:
        answers = list(pool.map(call, smiles))
    codes = [a.status_code for a in answers]
    assert len(answers) == 12 and set(codes) <= {200, 503}, codes
    rejected = [a for a in answers if a.status_code == 503]
    assert rejected and codes.count(200) >= 1, codes
    for a in rejected:  # refused by the ingress's admission check (limit = the Generator's capacity, 1 here)
        assert a.headers.get("Retry-After") and "admission limit for generation" in a.json()["detail"], a.text
