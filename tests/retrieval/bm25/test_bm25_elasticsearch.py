"""Elasticsearch backend against the live server: agreement with bm25s, errors, aliases, add."""
from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest
import requests
from bm25_test_helpers import mean_topk_overlap, top1_agreement

from retrieval.bm25 import BM25BackendUnavailable, BM25Index, IndexNotFound, build_bm25_index
from retrieval.bm25._elasticsearch import es_index_body

pytestmark = pytest.mark.es


def _es(es_url, name, **kwargs):
    return build_bm25_index("elasticsearch", url=es_url, index_name=name, show_progress=False, **kwargs)


def test_dead_server_fails_fast_with_a_clear_error():
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    with pytest.raises(BM25BackendUnavailable) as info:
        build_bm25_index("elasticsearch", url=url, index_name="test-bm25-dead")
    assert time.monotonic() - started < 5
    message = str(info.value)
    assert url in message and "not reachable" in message and "start_elasticsearch.sh" in message


def test_missing_index_raises_index_not_found(es_url, es_index_name):
    with _es(es_url, es_index_name) as index:
        with pytest.raises(IndexNotFound, match=es_index_name):
            index.search(["acid"])
        with pytest.raises(IndexNotFound):
            len(index)
        with pytest.raises(IndexNotFound):
            index.add(["x"])


def test_ranks_like_bm25s_on_fixture_captions(es_url, es_index_name, pool_captions, query_captions):
    embedded = build_bm25_index("bm25s")
    embedded.index(pool_captions)
    with _es(es_url, es_index_name) as server:
        assert isinstance(server, BM25Index)
        server.index(pool_captions)
        hits_es = server.search(query_captions, k=10)
    hits_local = embedded.search(query_captions, k=10)
    top1 = top1_agreement(hits_local, hits_es)
    overlap = mean_topk_overlap(hits_local, hits_es)
    print(f"bm25s vs Elasticsearch on {len(query_captions)} fixture queries: top-1 {top1:.4f}, top-10 overlap {overlap:.4f}")
    assert top1 >= 0.99
    assert overlap >= 0.98
    # same formula, same scale: the best scores agree to float32 precision
    np.testing.assert_allclose(hits_local.scores[:, 0], hits_es.scores[:, 0], rtol=1e-4)


def test_index_settings_come_from_the_json_file(es_url, es_index_name, pool_captions):
    with _es(es_url, es_index_name, k1=0.9, b=0.4) as index:
        index.index(pool_captions[:20])
        aliases = requests.get(f"{es_url}/_alias/{es_index_name}", timeout=10).json()
        (concrete,) = aliases
        assert concrete.startswith(f"{es_index_name}-") and concrete[len(es_index_name) + 1 :].isdigit()
        settings = requests.get(f"{es_url}/{concrete}/_settings", timeout=10).json()[concrete]["settings"]["index"]
        assert settings["similarity"]["caption_bm25"] == {"type": "BM25", "k1": "0.9", "b": "0.4"}
        assert (settings["number_of_shards"], settings["number_of_replicas"]) == ("1", "0")
        mapping = requests.get(f"{es_url}/{concrete}/_mapping", timeout=10).json()[concrete]["mappings"]
        expected = es_index_body(0.9, 0.4)["mappings"]
        assert mapping["properties"]["text"] == expected["properties"]["text"]
        assert mapping["properties"]["id"]["type"] == "keyword"


def test_empty_query_gives_a_row_of_minus_one(es_url, es_index_name, pool_captions):
    with _es(es_url, es_index_name) as index:
        index.index(pool_captions[:50])
        hits = index.search(["", "--", "qqqqzzzz", pool_captions[3]], k=4)
        assert (hits.indices[:3] == -1).all() and np.isneginf(hits.scores[:3]).all()
        assert hits.indices[3, 0] == 3


def test_rebuild_swaps_alias_while_searching(es_url, es_index_name, pool_captions, query_captions):
    corpus_a, corpus_b = pool_captions[:150], pool_captions[150:]
    queries = query_captions[:20]
    expected = {}
    for name, corpus in (("a", corpus_a), ("b", corpus_b)):
        local = build_bm25_index("bm25s")
        local.index(corpus)
        expected[name] = local.search(queries, k=5)

    builder = _es(es_url, es_index_name)
    builder.index(corpus_a)
    first_index = set(requests.get(f"{es_url}/_alias/{es_index_name}", timeout=10).json())
    searcher = _es(es_url, es_index_name)  # a second client attached to the same alias
    seen, errors, stop = [], [], threading.Event()

    def keep_searching():
        while not stop.is_set():
            try:
                got = searcher.search(queries, k=1)
                matches = [name for name, hits in expected.items() if top1_agreement(hits, got) == 1.0]
                seen.append(matches[0] if len(matches) == 1 else "?")
            except Exception as exc:  # noqa: BLE001 - any failure is what this test looks for
                errors.append(exc)

    def wait_for(version: str, after: int) -> None:  # until the searcher has seen the new version
        deadline = time.monotonic() + 60
        while version not in seen[after:] and not errors and time.monotonic() < deadline:
            time.sleep(0.05)

    # two searchers and 8 swaps: a query that reaches the old index while the rebuild deletes it must be re-run on
    # the new one (ES answers it with no_shard_available_action_exception, not a 404: a CI-mode run hit it once)
    threads = [threading.Thread(target=keep_searching) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        wait_for("a", 0)
        for version, corpus in [("b", corpus_b), ("a", corpus_a)] * 4:
            n = len(seen)
            builder.index(corpus)
            wait_for(version, n)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not errors, errors[:3]
    assert "?" not in seen and seen[-1] == "a" and "b" in seen, seen
    live = set(requests.get(f"{es_url}/_alias/{es_index_name}", timeout=10).json())
    assert len(live) == 1 and not live & first_index  # the old index was replaced, not kept
    left = requests.get(f"{es_url}/{es_index_name}-*/_settings", timeout=10).json()
    assert set(left) == live  # and the intermediate one deleted
    searcher.close()
    builder.close()


def test_add_and_ids_from_an_attached_client(es_url, es_index_name, pool_captions):
    with _es(es_url, es_index_name) as index:
        index.index(pool_captions[:30], ids=[f"c{i}" for i in range(30)])
        index.add(["a caption about zebrafish toxins"], ids=["zebra"])
        assert index.ids[-1] == "zebra" and len(index) == 31
        assert index.search(["zebrafish"], k=2).indices[0].tolist() == [30, -1]
        with pytest.raises(ValueError, match="duplicate id 'c1'"):
            index.add(["x"], ids=["c1"])
    with _es(es_url, es_index_name) as attached:
        assert len(attached) == 31
        assert attached.ids == [f"c{i}" for i in range(30)] + ["zebra"]


def test_refuses_to_shadow_a_concrete_index(es_url, es_index_name):
    concrete = f"{es_index_name}-plain"  # cleaned up by the fixture (NAME-*)
    requests.put(f"{es_url}/{concrete}", timeout=30).raise_for_status()
    with _es(es_url, concrete) as index:
        with pytest.raises(ValueError, match="concrete index, not an alias"):
            index.index(["x"])
