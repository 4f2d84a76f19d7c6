"""Embedded backends (bm25s, rank_bm25) and the factory: scoring, edge cases, persistence."""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from retrieval.bm25 import BM25Index, build_bm25_index, build_icma_bm25_index, tokenize_standard
from retrieval.bm25._bm25s import lucene_field_length
from retrieval.types import Hits

EMBEDDED = ["bm25s", "rank_bm25"]
TINY = [
    "The molecule is a monocarboxylic acid.",
    "The molecule is a steroid ester and a methyl ester.",
    "A methyl ester of a fatty acid; an ester.",
    "It derives from a hydride of a pregnane.",
]


def lucene_bm25(corpus: list[str], query: str, k1: float = 1.2, b: float = 0.75) -> np.ndarray:
    """Elasticsearch's BM25 written out term by term (exact lengths: all TINY docs are < 24 tokens)."""
    docs = [Counter(tokenize_standard(d)) for d in corpus]
    lengths = [sum(d.values()) for d in docs]
    avgdl = sum(lengths) / len(docs)
    scores = np.zeros(len(docs))
    for term in tokenize_standard(query):
        df = sum(term in d for d in docs)
        if not df:
            continue
        idf = math.log(1 + (len(docs) - df + 0.5) / (df + 0.5))
        for i, d in enumerate(docs):
            tf = d[term]
            scores[i] += idf * (k1 + 1) * tf / (tf + k1 * (1 - b + b * lengths[i] / avgdl))
    return scores


def test_factory_rejects_unknown_names():
    with pytest.raises(ValueError, match="bm25s.*elasticsearch.*rank_bm25"):
        build_bm25_index("lucene")
    with pytest.raises(ValueError, match="icma.*standard"):
        build_bm25_index("bm25s", tokenizer="whitespace")
    with pytest.raises(ValueError, match="k1"):
        build_bm25_index("bm25s", k1=-1)
    with pytest.raises(ValueError, match="b must"):
        build_bm25_index("rank_bm25", b=1.5)
    with pytest.raises(ValueError, match="tokenizer='icma'"):  # checked before any connection attempt
        build_bm25_index("elasticsearch", tokenizer="icma", url="http://127.0.0.1:9")
    with pytest.raises(TypeError):
        build_bm25_index("bm25s", url="http://x")


@pytest.mark.parametrize("backend", EMBEDDED)
def test_bad_corpus_and_queries_raise_clear_errors(backend):
    index = build_bm25_index(backend)
    assert isinstance(index, BM25Index)
    with pytest.raises(ValueError, match="empty corpus"):
        index.index([])
    with pytest.raises(TypeError, match="position 1"):
        index.index(["ok", None])
    with pytest.raises(ValueError, match="duplicate id 'a'"):
        index.index(["x", "y"], ids=["a", "a"])
    with pytest.raises(ValueError, match="2 texts but 1 ids"):
        index.index(["x", "y"], ids=["a"])
    with pytest.raises(RuntimeError, match="index\\(texts\\)"):
        index.search(["acid"])
    index.index(TINY)
    with pytest.raises(TypeError, match="wrap a single query"):
        index.search("acid")
    with pytest.raises(ValueError, match="k must"):
        index.search(["acid"], k=0)


@pytest.mark.parametrize("backend", EMBEDDED)
def test_empty_and_unknown_queries_give_rows_of_minus_one(backend):
    index = build_bm25_index(backend)
    index.index(TINY)
    hits = index.search(["", "   ", "zzz unknownword", "pregnane"], k=3)
    assert isinstance(hits, Hits) and hits.indices.shape == (4, 3) and hits.scores.dtype == np.float32
    assert (hits.indices[:3] == -1).all() and np.isneginf(hits.scores[:3]).all()
    assert hits.indices[3, 0] == 3


def test_bm25s_scores_equal_elasticsearch_formula():
    index = build_bm25_index("bm25s")
    index.index(TINY)
    queries = ["methyl ester", "the molecule is an acid", "a a a"]
    hits = index.search(queries, k=len(TINY))
    for q, query in enumerate(queries):
        expected = lucene_bm25(TINY, query)
        matching = [i for i in np.argsort(-expected, kind="stable") if expected[i] > 0]
        assert hits.indices[q, : len(matching)].tolist() == matching
        np.testing.assert_allclose(hits.scores[q, : len(matching)], expected[matching], rtol=1e-6)
        assert (hits.indices[q, len(matching) :] == -1).all()  # documents without a query term are not hits


def test_bm25s_pads_when_k_exceeds_corpus_and_breaks_ties_by_position():
    index = build_bm25_index("bm25s")
    index.index(["same words here", "other text", "same words here"])
    hits = index.search(["same words"], k=5)
    assert hits.indices[0].tolist() == [0, 2, -1, -1, -1]
    assert hits.scores[0, 0] == hits.scores[0, 1]


def _smallfloat_roundtrip(length: int) -> int:
    """Lucene SmallFloat.byte4ToInt(intToByte4(length)), ported line by line from the Java source."""
    def long_to_int4(i):
        num_bits = i.bit_length()
        if num_bits < 4:
            return i
        shift = num_bits - 4
        return ((i >> shift) & 0x07) | ((shift + 1) << 3)

    def int4_to_long(i):
        bits, shift = i & 0x07, (i >> 3) - 1
        return bits if shift == -1 else (bits | 0x08) << shift

    free = 255 - long_to_int4(2**31 - 1)
    encoded = length if length < free else free + long_to_int4(length - free)
    return encoded if encoded < free else free + int4_to_long(encoded - free)


def test_lucene_field_length_matches_smallfloat():
    lengths = np.arange(0, 3000)
    assert lucene_field_length(lengths).tolist() == [_smallfloat_roundtrip(int(n)) for n in lengths]
    assert lucene_field_length(np.array([23, 24, 41, 59])).tolist() == [23, 24, 40, 56]


@pytest.mark.parametrize("backend", EMBEDDED)
def test_save_load_round_trip(backend, tmp_path, pool_captions, query_captions):
    ids = [f"cid{i}" for i in range(len(pool_captions))]
    index = build_bm25_index(backend, k1=1.1, b=0.7)
    index.index(pool_captions, ids=ids)
    before = index.search(query_captions[:30], k=5)
    index.save(tmp_path / "idx")
    loaded = BM25Index.load(tmp_path / "idx")
    assert type(loaded) is type(index) and (loaded.k1, loaded.b, loaded.tokenizer) == (1.1, 0.7, "standard")
    assert loaded.ids == ids and len(loaded) == len(pool_captions)
    after = loaded.search(query_captions[:30], k=5)
    np.testing.assert_array_equal(after.indices, before.indices)
    np.testing.assert_array_equal(after.scores, before.scores)
    loaded.add(["a brand new caption about zebrafish"], ids=["new"])  # a loaded index keeps its corpus
    assert loaded.ids[-1] == "new" and loaded.search(["zebrafish"], k=1).indices[0, 0] == len(pool_captions)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a saved BM25 index"):
        BM25Index.load(tmp_path)
    index = build_bm25_index("rank_bm25")
    index.index(TINY)
    index.save(tmp_path)
    from retrieval.bm25._bm25s import BM25sIndex

    with pytest.raises(ValueError, match="rank_bm25"):
        BM25sIndex.load(tmp_path)


@pytest.mark.parametrize("backend", EMBEDDED)
def test_add_equals_indexing_everything(backend, pool_captions, query_captions):
    grown = build_bm25_index(backend)
    grown.index(pool_captions[:200])
    grown.add(pool_captions[200:])
    whole = build_bm25_index(backend)
    whole.index(pool_captions)
    assert grown.ids == whole.ids == [str(i) for i in range(len(pool_captions))]
    a, b = grown.search(query_captions[:20], k=5), whole.search(query_captions[:20], k=5)
    np.testing.assert_array_equal(a.indices, b.indices)
    with pytest.raises(ValueError, match="duplicate id '3'"):
        grown.add(["x"], ids=["3"])


def _icma_caption_bm25(caption_corpus: list[str], query: str, n_shot: int) -> list[tuple[int, float]]:
    """The cap2mol "bm25" branch of ICMA's get_examples (data/easy_load_examples.py), as written there."""
    import re

    import rank_bm25

    def remove_punctuation(text):
        text = text.replace("-", " ")
        text = text.replace(",", " ")
        text = text.replace(".", "")
        text = text.replace("(", " ")
        text = text.replace(")", " ")
        text = re.sub(r" +", " ", text)
        return text

    tokenized_caption_corpus = [remove_punctuation(doc).split(" ") for doc in caption_corpus]
    bm25 = rank_bm25.BM25Okapi(tokenized_caption_corpus)
    doc_scores = bm25.get_scores(remove_punctuation(query).split(" "))
    candidates = sorted(range(len(doc_scores)), key=lambda i: doc_scores[i], reverse=True)[:n_shot]
    return [(i, float(doc_scores[i])) for i in candidates]


def test_icma_index_reproduces_icma_code(pool_captions, query_captions):
    index = build_icma_bm25_index()
    index.index(pool_captions)
    hits = index.search(query_captions[:25], k=11)  # ICMA asks for n_shot + 1
    for q, query in enumerate(query_captions[:25]):
        expected = _icma_caption_bm25(pool_captions, query, 11)
        assert hits.indices[q].tolist() == [i for i, _ in expected]
        np.testing.assert_allclose(hits.scores[q], [s for _, s in expected], rtol=1e-6)


def test_icma_index_keeps_icma_tie_order_and_case():
    corpus = ["Acid (R)-form.", "acid form", "Acid (R)-form.", "Base", "Salt", "Water", "Ice"]
    index = build_icma_bm25_index()
    index.index(corpus)
    hits = index.search(["Acid R form"], k=7)
    expected = _icma_caption_bm25(corpus, "Acid R form", 7)
    assert hits.indices[0].tolist() == [i for i, _ in expected]
    # equal scores keep corpus order, "acid" does not match "Acid", zero-score documents are still ranked
    assert hits.indices[0].tolist() == [0, 2, 1, 3, 4, 5, 6]


def test_bm25s_accepts_the_icma_tokenizer(pool_captions):
    index = build_bm25_index("bm25s", tokenizer="icma")
    index.index(pool_captions)
    assert index.search([pool_captions[7]], k=1).indices[0, 0] == 7


def test_base_load_works_in_a_fresh_process(tmp_path):
    """``BM25Index.load`` must find the backend class even when nothing else imported it."""
    import subprocess
    import sys

    index = build_bm25_index("bm25s")
    index.index(TINY)
    index.save(tmp_path)
    code = f"from retrieval.bm25 import BM25Index; i = BM25Index.load({str(tmp_path)!r}); print(type(i).__name__, i.search(['pregnane']).indices[0, 0])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == ["BM25sIndex", "3"]
