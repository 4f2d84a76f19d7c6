"""Elasticsearch as a shared index: 3 Retriever replicas start together on a fresh alias, exactly one takes
the build lock, and the test kills that builder while it loads. Another replica takes the stale lock
over, deletes the half-built index and builds; everyone else (the restarted replica too) attaches.
Afterwards: one completed build, the alias on one index, doc count = pool size, 0 failed requests.
A re-deploy with the same pool attaches (no build); a different index_version builds once more."""
from __future__ import annotations

import concurrent.futures as cf
import threading
import time
import uuid

import pytest
import requests

from tests.serve.conftest import SERVE_PORT, app_args, wait_ready

pytestmark = [pytest.mark.ray_cluster, pytest.mark.es, pytest.mark.slow]

COPIES = 8  # 2,400 documents: a bulk load long enough to be killed in the middle


@pytest.fixture(scope="module")
def big_pool(tmp_path_factory, chebi20_pool_file):
    lines = chebi20_pool_file.read_text().splitlines()
    header, rows = lines[0], [l.split("\t") for l in lines[1:] if l.strip()]
    out = tmp_path_factory.mktemp("shared-es") / "pool.txt"
    body = [header] + [f"{int(cid) * 100 + j}\t{smi}\t{text}" for j in range(COPIES) for cid, smi, text in rows]
    out.write_text("\n".join(body) + "\n")
    return out, [(str(int(cid) * 100 + j), text) for j in range(COPIES) for cid, _, text in rows]


@pytest.fixture()
def alias(es_url):
    name = f"test-shared-{uuid.uuid4().hex[:8]}"
    yield name
    for pattern in (f"{name}-*",):
        requests.delete(f"{es_url}/{pattern}", params={"expand_wildcards": "all"}, timeout=30)


def _args(pool, es_url, alias, version="v1", build_lock_stale_s=3.0):
    return app_args(
        pool, None,
        retriever={
            "pool": {"path": str(pool)},
            "text": {"backend": "elasticsearch", "url": es_url, "index_name": alias, "request_timeout_s": 10,
                     "build_lock_stale_s": build_lock_stale_s},
            "molecule": {"kind": "morgan"},
            "index_version": version,
            "placement": "deployment",
            "deployment_options": {"num_replicas": 3, "ray_actor_options": {"num_cpus": 0.1}},
        },
        reranker={"placement": "ingress"},
        generator=None,
    )


def _built_events(es_url, alias) -> list[dict]:
    requests.post(f"{es_url}/{alias}-build-locks/_refresh", timeout=30)
    r = requests.get(f"{es_url}/{alias}-build-locks/_search", json={"query": {"term": {"event": "built"}}, "size": 100},
                     timeout=30)
    return [h["_source"] for h in r.json()["hits"]["hits"]]


def _indices(es_url, alias) -> list[str]:
    rows = requests.get(f"{es_url}/_cat/indices/{alias}-*", params={"format": "json"}, timeout=30).json()
    return sorted(r["index"] for r in rows if not r["index"].endswith("-build-locks"))


def test_three_replicas_one_builder_killed_mid_load(serve_instance, es_url, big_pool, alias):
    import ray

    from serve.builder import build_icma_app

    pool, rows = big_pool
    name, prefix = "icma-shared-es", "/shared-es"
    url = f"http://127.0.0.1:{SERVE_PORT}{prefix}"
    deploy_error: list[BaseException] = []

    def deploy():
        try:
            serve_instance.run(build_icma_app(_args(pool, es_url, alias)), name=name, route_prefix=prefix, blocking=False)
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            deploy_error.append(exc)

    thread = threading.Thread(target=deploy, daemon=True)
    thread.start()
    try:
        # the builder: whoever holds the lock document; kill it as soon as it holds it (it is loading)
        deadline, killed = time.monotonic() + 240, None
        while killed is None and time.monotonic() < deadline:
            r = requests.get(f"{es_url}/{alias}-build-locks/_doc/build", timeout=10)
            if r.status_code == 200:
                owner = r.json()["_source"]["owner"]
                ray.kill(ray.get_actor(owner, namespace="serve"), no_restart=True)
                killed = owner
            else:
                time.sleep(0.02)
        assert killed, "no replica ever took the build lock"
        thread.join(timeout=300)
        assert not deploy_error, deploy_error
        wait_ready(serve_instance, name, url)

        events = _built_events(es_url, alias)
        assert len(events) == 1, events  # exactly one completed bulk build ...
        assert events[0]["owner"] != killed and events[0]["docs"] == len(rows)  # ... by the replica that took over
        targets = list(requests.get(f"{es_url}/_alias/{alias}", timeout=30).json())
        assert targets == [events[0]["index"]]  # the alias points at that one index
        assert _indices(es_url, alias) == targets  # the killed builder's half-built index is gone
        count = requests.get(f"{es_url}/{alias}/_count", timeout=30).json()["count"]
        assert count == len(rows)
        meta = requests.get(f"{es_url}/{targets[0]}/_mapping", timeout=30).json()[targets[0]]["mappings"]["_meta"]
        assert meta["index_version"] == "v1" and meta["doc_count"] == len(rows)

        # every replica answers from the shared index: 0 failed requests, the right pool rows
        texts = [t for _, t in rows[:300]]

        def ask(i: int) -> tuple[int, str, str]:
            r = requests.post(f"{url}/v1/retrieve", json={"task": "cap2mol", "query": texts[i % 300], "k": 3}, timeout=60)
            top = r.json()["candidates"][0]["input"] if r.status_code == 200 else r.text
            return r.status_code, texts[i % 300], top

        with cf.ThreadPoolExecutor(8) as ex:
            answers = list(ex.map(ask, range(120)))
        assert [(s, body) for s, _, body in answers if s != 200] == []  # with the bodies: which stage refused
        assert all(top == query for _, query, top in answers)  # the top hit is a copy of the query caption

        # the same pool again (a re-deploy / scale-out): attach, never a second build
        serve_instance.run(build_icma_app(_args(pool, es_url, alias, build_lock_stale_s=4.0)), name=name,
                           route_prefix=prefix, blocking=False)
        wait_ready(serve_instance, name, url)
        assert len(_built_events(es_url, alias)) == 1
        assert list(requests.get(f"{es_url}/_alias/{alias}", timeout=30).json()) == targets
    finally:
        try:
            serve_instance.delete(name)
        except Exception:  # noqa: BLE001
            pass


def test_a_swap_keeps_the_old_es_client_open_for_a_request_still_running_on_it(es_url, chebi20_pool_file, alias, monkeypatch):
    """Serve reconfigures a Retriever while requests run (a re-deploy, or the controller re-applying user_config): a
    cap2mol search that started on the old version finishes on it, and the old client closes when it ends. Before
    this, the swap closed the old client at once and such a request failed with 503 ("Pool is closed"), seen in
    `test_three_replicas_one_builder_killed_mid_load`."""
    from serve.retriever_deployment import Retriever

    def cfg(version):
        return {"pool": {"path": str(chebi20_pool_file)}, "molecule": {"kind": "morgan"}, "index_version": version,
                "text": {"backend": "elasticsearch", "url": es_url, "index_name": alias, "request_timeout_s": 10}}

    retriever = Retriever(cfg("v1"))
    query = chebi20_pool_file.read_text().splitlines()[1].split("\t")[2]
    old = retriever._state.text_index
    started, go = threading.Event(), threading.Event()
    search = old.search

    def held(*args, **kwargs):  # the real search on the real client, after the swap has happened
        started.set()
        assert go.wait(60)
        return search(*args, **kwargs)

    monkeypatch.setattr(old, "search", held)
    with cf.ThreadPoolExecutor(1) as ex:
        running = ex.submit(retriever.search, "cap2mol", [query], 3)
        assert started.wait(60)
        retriever.reconfigure(cfg("v2"))  # builds v2 and swaps it in while the v1 request is in flight
        go.set()
        answer = running.result(timeout=60)
    assert answer["index_version"] == "v1" and answer["candidates"][0][0]["text"] == query
    assert retriever.search("cap2mol", [query], 3)["index_version"] == "v2"
    from retrieval.bm25 import BM25BackendUnavailable

    with pytest.raises(BM25BackendUnavailable):  # the old client was closed once its last request ended
        search([query], 3)
