"""The issue's acceptance checks on full ChEBI-20 (../shared): tokenizer and ranking vs Elasticsearch.

Pool = the 3,301 validation captions, queries = the 3,300 test captions.
"""
from __future__ import annotations

import pytest
from bm25_test_helpers import es_analyze, mean_topk_overlap, read_captions, top1_agreement

from retrieval.bm25 import build_bm25_index, tokenize_standard
from tests.conftest import require_shared

pytestmark = [pytest.mark.shared, pytest.mark.es]


@pytest.fixture(scope="module")
def chebi20():
    return read_captions(require_shared("data", "chebi20", "validation.txt")), read_captions(require_shared("data", "chebi20", "test.txt"))


def test_tokenizer_equals_elasticsearch_on_all_captions(es_url, chebi20):
    texts = chebi20[0] + chebi20[1]
    expected = es_analyze(es_url, texts)
    equal = sum(tokenize_standard(t) == e for t, e in zip(texts, expected)) / len(texts)
    print(f"tokenize_standard == Elasticsearch standard analyzer on {equal:.2%} of {len(texts)} ChEBI-20 captions")
    assert equal >= 0.999


def test_bm25s_ranks_like_elasticsearch_on_chebi20(es_url, es_index_name, chebi20):
    pool, queries = chebi20
    embedded = build_bm25_index("bm25s")
    embedded.index(pool)
    with build_bm25_index("elasticsearch", url=es_url, index_name=es_index_name, show_progress=False) as server:
        server.index(pool)
        hits_es = server.search(queries, k=10)
    hits_local = embedded.search(queries, k=10)
    top1 = top1_agreement(hits_local, hits_es)
    overlap = mean_topk_overlap(hits_local, hits_es)
    print(f"bm25s vs Elasticsearch, {len(queries)} ChEBI-20 test queries over {len(pool)} validation captions: "
          f"top-1 agreement {top1:.4f}, mean top-10 overlap {overlap:.4f}")
    assert top1 >= 0.99
    assert overlap >= 0.98
