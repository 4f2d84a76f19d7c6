"""Admission control (issue 12, point 3): past its in-flight limit an ingress replica answers 503 + Retry-After
at once, before any work, and Serve's own queue limits agree with the admission limits (one derivation)."""
from __future__ import annotations

import threading
import time

import pytest
import requests

from tests.serve.conftest import app_args, deploy

NAME, PREFIX = "icma-admission", "/admission"


def _args(pool_file, **ingress) -> dict:
    return app_args(
        pool_file, None,
        retriever={"pool": {"path": str(pool_file)}, "text": {"backend": "bm25s"}, "molecule": {"kind": "morgan"},
                   "placement": "ingress"},
        reranker={"placement": "ingress"},
        generator={"model": "tiny-random-llama", "device": "cpu", "max_batch_size": 1, "max_new_tokens": 8,
                   "deployment_options": {"num_replicas": 1, "ray_actor_options": {"num_cpus": 0.2}}},
        ingress={"deployment_options": {"num_replicas": 1, "ray_actor_options": {"num_cpus": 0.1}},
                 "request_timeout_s": 60, **ingress},
    )


def test_gate_counts_each_kind_and_refuses_past_its_limits():
    from serve.admission import Gate

    gate = Gate(api_limit=3, generation_limit=2)
    assert [Gate.kind(p) for p in ("/v1/mol2cap", "/v1/cap2mol/batch", "/v1/retrieve", "/readyz", "/admin/info")] == [
        "generation", "generation", "api", None, None]
    assert gate.enter("generation") is None and gate.enter("generation") is None
    third = gate.enter("generation")
    assert third is not None and third.limit == "generation" and "max_generations_in_flight" in third.detail
    assert gate.enter("api") is None  # retrieval still has room: 3 in flight now
    full = gate.enter("api")
    assert full is not None and full.limit == "api" and "max_in_flight" in full.detail
    assert gate.enter(None) is None  # probes are never refused
    gate.leave("generation")
    assert (gate.in_flight, gate.generations) == (2, 1)
    assert gate.enter("generation") is None and gate.in_flight == 3
    with pytest.raises(ValueError, match="api_limit must be >= 1"):
        Gate(0, None)


def test_serve_queue_limits_follow_the_admission_limits(chebi20_pool_file):
    from serve.builder import admission_limits, plan_deployments
    from serve.configs import ICMAServingArgs
    from serve.constants import GENERATOR_CONTROL_CALLS

    args = _args(chebi20_pool_file, admission={"max_in_flight": 20})
    plan = plan_deployments(args)
    limits = admission_limits(ICMAServingArgs.model_validate(args))
    ingress, gen = plan["ICMAIngress"], plan["Generator"]
    # Serve's proxy caps the API at the limit after a short queue (the cheapest refusal)
    assert (ingress["max_ongoing_requests"], ingress["max_queued_requests"]) == (20, 20)
    assert limits["api"] == 20
    # generation: the Generator's capacity (max_ongoing 4 = max(2 batches of 1, 4), one replica); its queue holds the
    # same plus the ingress's bounded control calls (readyz -> info)
    assert limits["generation"] == gen["max_ongoing_requests"] * 1 == 4 == gen["max_queued_requests"] - GENERATOR_CONTROL_CALLS
    auto = plan_deployments({**_args(chebi20_pool_file), "generator": {"model": "m", "max_batch_size": 4}, "ingress": {}})
    assert auto["Generator"]["max_queued_requests"] == 8 * 2 + GENERATOR_CONTROL_CALLS  # max_ongoing 8 x max_replicas 2
    assert auto["ICMAIngress"]["autoscaling_config"]["target_ongoing_requests"] == 8  # below the default cap of 16
    explicit = _args(chebi20_pool_file, admission={"max_generations_in_flight": 3})
    assert admission_limits(ICMAServingArgs.model_validate(explicit))["generation"] == 3
    assert plan_deployments(explicit)["Generator"]["max_queued_requests"] == 3 + GENERATOR_CONTROL_CALLS
    off = _args(chebi20_pool_file, admission={"enabled": False})
    assert admission_limits(ICMAServingArgs.model_validate(off)) == {"api": None, "generation": None}
    user = _args(chebi20_pool_file, admission={"max_in_flight": 8})
    user["ingress"]["deployment_options"]["max_ongoing_requests"] = 64  # the user's override wins (the check caps at 8)
    assert plan_deployments(user)["ICMAIngress"]["max_ongoing_requests"] == 64


def _flood_args(pool_file) -> dict:
    """API limit well above the flood, so every request of it reaches the ingress's generation check."""
    return _args(pool_file, admission={"max_in_flight": 64})


@pytest.fixture(scope="module")
def admission_app(serve_instance, chebi20_pool_file):
    url = deploy(serve_instance, _flood_args(chebi20_pool_file), NAME, PREFIX)
    yield url
    serve_instance.delete(NAME)


@pytest.mark.ray_cluster
def test_a_flood_past_the_generation_limit_is_refused_at_once(admission_app, chebi20_pool_file, chebi20_test_file):
    from ray_icma.data import load_records
    from serve.builder import admission_limits
    from serve.configs import ICMAServingArgs

    limit = admission_limits(ICMAServingArgs.model_validate(_flood_args(chebi20_pool_file)))["generation"]
    flood = 4 * limit
    smiles = [r.smiles for r in load_records(chebi20_test_file).records[:flood]]
    start = threading.Barrier(flood)
    answers: list[tuple] = [None] * flood  # type: ignore[list-item]

    def call(i: int) -> None:
        body = {"smiles": smiles[i], "n_shot": 0, "max_new_tokens": 256}  # admitted ones generate for a while
        start.wait()
        t0 = time.perf_counter()
        try:
            r = requests.post(f"{admission_app}/v1/mol2cap", json=body, timeout=180)
            answers[i] = (r.status_code, time.perf_counter() - t0, r.headers.get("Retry-After"), r.text)
        except Exception as exc:  # noqa: BLE001 - a dropped request is a failure
            answers[i] = (f"{type(exc).__name__}: {exc}", time.perf_counter() - t0, None, "")

    threads = [threading.Thread(target=call, args=(i,)) for i in range(flood)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    codes = [a[0] for a in answers]
    assert set(codes) <= {200, 503}, codes
    ok = [a for a in answers if a[0] == 200]
    refused = [a for a in answers if a[0] == 503]
    assert len(ok) >= limit and refused, codes  # the first `limit` arrivals always fit
    for _, _, retry_after, text in refused:
        assert retry_after == "1" and "admission limit for generation" in text, text
    # refused at once: every refusal well under a generous CI bound (0.07-0.11 s measured on the 2-core box,
    # with 16 client threads in this process)
    refused_s = sorted(a[1] for a in refused)
    print(f"limit {limit}: {len(ok)} x 200 in {sorted(round(a[1], 3) for a in ok)} s; {len(refused)} x 503 in "
          f"{[round(x, 3) for x in refused_s]} s")
    assert refused_s[-1] < 2.0, refused_s
    # and the replica is free again afterwards: the counters went back down
    after = requests.post(f"{admission_app}/v1/mol2cap", json={"smiles": smiles[0], "n_shot": 0}, timeout=120)
    assert after.status_code == 200, after.text
