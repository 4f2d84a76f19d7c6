"""Adapters without downtime (issue 12, point 7): LoRA adapters load, swap and unload on the live base model
of the Generator (peft load_adapter / delete_adapter), a request finishes on the adapter it started with,
and the base model is loaded once.

Answers are compared with `ray_icma.generate.Generator` built offline with the same adapter (greedy, one
prompt per forward pass: the app runs with max_batch_size 1 so every answer can be compared exactly).
"""
from __future__ import annotations

import threading
import time

import pytest
import requests

from tests.serve.conftest import app_args, deploy, wait_ready

NAME, PREFIX = "icma-adapters", "/adapters"
NEW_TOKENS = 8
N_QUERIES = 4


def _prompt(tokenizer, smiles: str) -> str:
    from ray_icma.prompts import fit_prompt

    return fit_prompt(tokenizer, "mol2cap", smiles, [], cutoff_len=1024, answer_reserve=NEW_TOKENS)[0]


@pytest.fixture(scope="module")
def queries(chebi20_test_file) -> list[str]:
    from ray_icma.data import load_records

    return [r.smiles for r in load_records(chebi20_test_file).records[:N_QUERIES]]


@pytest.fixture(scope="module")
def offline(tiny_model_dirs, queries) -> dict[str, list[str]]:
    """Answers of a Generator built offline with each adapter: {"old": [...], "new": [...]} per query."""
    from ray_icma.generate import Generator
    from ray_icma.prompts import parse_output

    lm = Generator("tiny-random-llama", adapters={"old": tiny_model_dirs["mol2cap"], "new": tiny_model_dirs["cap2mol"]},
                   device="cpu")
    out = {}
    for which in ("old", "new"):
        out[which] = [parse_output("mol2cap", lm.generate([_prompt(lm.tokenizer, q)], max_new_tokens=NEW_TOKENS,
                                                          adapter=which, batch_size=1, stop=("\n\n",))[0])
                      for q in queries]
    assert out["old"] != out["new"], "the two test adapters must answer differently for the test to mean anything"
    return out


def _generator_config(path: str | None, version: str, batch_wait_s: float = 0.0) -> dict:
    adapters = {"chem": path} if path else {}
    return {"model": "tiny-random-llama", "device": "cpu", "max_new_tokens": NEW_TOKENS, "max_batch_size": 1,
            "batch_wait_timeout_s": batch_wait_s, "adapters": adapters,
            "default_adapter": {"mol2cap": "chem"} if path else {}, "adapters_version": version}


def test_a_request_pinned_across_a_swap_finishes_on_its_adapter(tiny_model_dirs, queries, offline):
    """The Generator's adapter table on a real base model (no Ray): a request that started before a swap keeps
    the old adapter, which stays loaded until that request ends and is deleted then; the base is never reloaded."""
    from ray_icma.generate import Generator
    from serve.errors import UnknownAdapter
    from serve.generator_deployment import AdapterTable

    old_dir, new_dir = tiny_model_dirs["mol2cap"], tiny_model_dirs["cap2mol"]
    lm = Generator("tiny-random-llama", device="cpu")
    base = lm.model
    table = AdapterTable(lm)

    def answer(peft_name: str | None) -> str:
        from ray_icma.generate import BASE_MODEL
        from ray_icma.prompts import parse_output

        text = lm.generate([_prompt(lm.tokenizer, queries[0])], max_new_tokens=NEW_TOKENS, batch_size=1, stop=("\n\n",),
                           adapter=peft_name or BASE_MODEL)[0]
        return parse_output("mol2cap", text)

    table.apply({"chem": old_dir}, {"mol2cap": "chem"}, "v1")
    name, old_peft, version = table.pin("mol2cap", None)  # a request starts on the old adapter
    assert (name, version) == ("chem", "v1")
    table.apply({"chem": new_dir}, {"mol2cap": "chem"}, "v2")  # the swap, while that request is in flight
    during = table.info()
    assert during["retiring_adapters"] == [old_peft] and old_peft in during["peft_adapters"]
    assert during["adapters_version"] == "v2" and during["adapter_paths"] == {"chem": new_dir}
    assert answer(old_peft) == offline["old"][0]  # the pinned request finishes on its adapter
    assert table.unpin(old_peft) == old_peft  # its last request ended: the caller deletes it now
    lm.unload_adapter(old_peft)
    _, new_peft, version = table.pin("mol2cap", None)
    assert version == "v2" and answer(new_peft) == offline["new"][0]
    assert table.unpin(new_peft) is None  # still served: not deleted
    assert table.info()["peft_adapters"] == [new_peft] and table.info()["retiring_adapters"] == []

    table.apply({}, {}, "v3")  # unload: nothing pins it, so it is deleted at once
    assert table.info()["peft_adapters"] == [] and table.pin("mol2cap", None)[1] is None
    with pytest.raises(UnknownAdapter, match="unknown adapter 'chem'"):
        table.pin("mol2cap", "chem")
    assert lm.model is base  # the same base module all along: adapters were added to it and removed, never reloaded
    with pytest.raises(FileNotFoundError):  # a bad directory changes nothing
        table.apply({"chem": str(tiny_model_dirs["mol2cap"]) + "-missing"}, {}, "v4")
    assert table.info()["adapters_version"] == "v3"


@pytest.fixture(scope="module")
def adapter_app(serve_instance, chebi20_pool_file, tiny_model_dirs):
    url = deploy(serve_instance, _app(chebi20_pool_file, tiny_model_dirs["mol2cap"], "v1"), NAME, PREFIX)
    yield url
    serve_instance.delete(NAME)


def _app(pool_file, adapter_dir: str | None, version: str) -> dict:
    gen = _generator_config(adapter_dir, version)
    gen["deployment_options"] = {"num_replicas": 1, "ray_actor_options": {"num_cpus": 0.2}}
    return app_args(pool_file, None,
                    retriever={"pool": {"path": str(pool_file)}, "text": {"backend": "bm25s"},
                               "molecule": {"kind": "morgan"}, "placement": "ingress"},
                    reranker={"placement": "ingress"},
                    generator=gen,
                    ingress={"deployment_options": {"num_replicas": 1, "ray_actor_options": {"num_cpus": 0.1}},
                             "request_timeout_s": 60})


def _ask(url: str, smiles: str, session=None, **extra) -> requests.Response:
    body = {"smiles": smiles, "n_shot": 0, "max_new_tokens": NEW_TOKENS, **extra}
    return (session or requests).post(f"{url}/v1/mol2cap", json=body, timeout=120)


def _generator_info(url: str) -> dict:
    return requests.get(f"{url}/readyz", timeout=30).json()["generator"]


def _redeploy_and_wait(serve_instance, args: dict, url: str, version: str, name: str = NAME, prefix: str = PREFIX) -> None:
    from serve.builder import build_icma_app

    serve_instance.run(build_icma_app(args), name=name, route_prefix=prefix, blocking=False)
    wait_ready(serve_instance, name, url)
    deadline = time.monotonic() + 120
    while _generator_info(url).get("adapters_version") != version:
        assert time.monotonic() < deadline, "the new adapter set never arrived"
        time.sleep(0.5)


def _under_load(url: str, queries: list[str], action) -> tuple[list[tuple], list]:
    """Runs `action()` while 4 clients (what the ingress admits for generation: the Generator's capacity) ask
    without pause and 2 probers poll /readyz; returns (status, query, adapters_version, caption) per request and
    the probes' statuses. While the Generator is unroutable, all of them queue at the ingress's handle."""
    seen: list[tuple] = []
    probes: list = []
    stop = threading.Event()

    def client(i: int) -> None:
        session, n = requests.Session(), 0
        while not stop.is_set():
            k = (i + n) % len(queries)
            n += 1
            try:
                r = _ask(url, queries[k], session)
                body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
                seen.append((r.status_code, k, body.get("adapters_version"), body.get("caption" if r.status_code == 200 else "detail")))
            except Exception as exc:  # noqa: BLE001 - a reset connection / timeout is a failed request
                seen.append((f"{type(exc).__name__}: {exc}"[:300], k, None, None))

    def prober() -> None:
        session = requests.Session()
        while not stop.is_set():
            try:
                probes.append(session.get(f"{url}/readyz", timeout=120).status_code)
            except Exception as exc:  # noqa: BLE001
                probes.append(f"{type(exc).__name__}: {exc}"[:300])

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(4)]
    threads += [threading.Thread(target=prober, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        time.sleep(2.0)
        action()
        time.sleep(2.0)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=150)
    assert not any(t.is_alive() for t in threads), "a client thread hung"
    return seen, probes


@pytest.mark.ray_cluster
def test_swap_under_load_then_unload_without_reloading_the_base(adapter_app, serve_instance, chebi20_pool_file,
                                                                 tiny_model_dirs, queries, offline):
    before = _generator_info(adapter_app)
    assert before["base_loads"] == 1 and before["adapters"] == ["chem"]
    assert [_ask(adapter_app, q).json()["caption"] for q in queries] == offline["old"]

    seen, probes = _under_load(adapter_app, queries, lambda: _redeploy_and_wait(
        serve_instance, _app(chebi20_pool_file, tiny_model_dirs["cap2mol"], "v2"), adapter_app, "v2"))
    failed = [s for s in seen if s[0] != 200]
    assert len(seen) > 20 and not failed, failed[:10]
    assert probes and all(p == 200 for p in probes), [p for p in probes if p != 200][:10]  # ready all along
    versions = [v for _, _, v, _ in seen]
    assert "v1" in versions and "v2" in versions and versions[-1] == "v2"
    # every answer came from the adapter of the version it reports (a request finishes on the adapter it pinned)
    wrong = [(k, v, c) for _, k, v, c in seen if c != offline["old" if v == "v1" else "new"][k]]
    assert not wrong, wrong[:10]

    deadline = time.monotonic() + 30
    while len((after := _generator_info(adapter_app))["peft_adapters"]) != 1 and time.monotonic() < deadline:
        time.sleep(0.5)  # the old adapter is deleted once its last request ended
    assert after["replica"] == before["replica"], "the Generator replica was replaced (a base-model reload)"
    assert after["base_loads"] == 1 and after["adapter_paths"] == {"chem": tiny_model_dirs["cap2mol"]}
    assert len(after["peft_adapters"]) == 1 and after["retiring_adapters"] == []  # the old one was deleted
    answers = [_ask(adapter_app, q).json()["caption"] for q in queries]
    assert answers == offline["new"] and answers != offline["old"]

    # unload: the adapter is gone, requests naming it get a clear 4xx, the default falls back to the base model
    _redeploy_and_wait(serve_instance, _app(chebi20_pool_file, None, "v3"), adapter_app, "v3")
    named = _ask(adapter_app, queries[0], adapter="chem")
    assert named.status_code == 422, named.text
    assert "unknown adapter 'chem'" in named.text and "Traceback" not in named.text
    plain = _ask(adapter_app, queries[0])
    assert plain.status_code == 200 and plain.json()["adapter"] is None
    gone = _generator_info(adapter_app)
    assert gone["replica"] == before["replica"] and gone["base_loads"] == 1 and gone["peft_adapters"] == []


@pytest.mark.ray_cluster
def test_a_generator_restart_at_the_generation_limit_refuses_no_admitted_request(serve_instance, chebi20_pool_file,
                                                                                 tiny_model_dirs, queries):
    """A replica change of the Generator (max_new_tokens: a new replica, its only one) while the ingress runs at its
    generation limit with readiness probes: Serve queues every call at the ingress's handle until the new replica
    runs, and that queue (the Generator's max_queued_requests) must hold the admitted generations and the probes'
    `info` calls, so no admitted request gets a 503. With a queue of the generation limit alone, it did not."""
    name, prefix = "icma-restart", "/restart"
    url = deploy(serve_instance, _app(chebi20_pool_file, tiny_model_dirs["mol2cap"], "v1"), name, prefix)
    try:
        before = _generator_info(url)["replica"]
        changed = _app(chebi20_pool_file, tiny_model_dirs["mol2cap"], "v1")
        changed["generator"]["max_new_tokens"] = NEW_TOKENS + 1  # not a user_config field: a new replica

        def restart() -> None:
            _redeploy_and_wait(serve_instance, changed, url, "v1", name, prefix)
            deadline = time.monotonic() + 120
            while _generator_info(url)["replica"] == before:
                assert time.monotonic() < deadline, "the Generator replica was never replaced"
                time.sleep(0.5)

        seen, probes = _under_load(url, queries, restart)
    finally:
        serve_instance.delete(name)
    failed = [s for s in seen if s[0] != 200]
    assert len(seen) > 20 and not failed, failed[:10]
    assert probes and all(p == 200 for p in probes), [p for p in probes if p != 200][:10]
