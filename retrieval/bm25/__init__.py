"""Caption BM25 behind one interface: embedded ``bm25s`` (default), Elasticsearch, or ``rank_bm25``.

    from retrieval.bm25 import build_bm25_index
    index = build_bm25_index("bm25s")            # or "elasticsearch", url=..., index_name=...
    index.index(captions)
    hits = index.search(queries, k=4)            # retrieval.types.Hits, positions into captions

All backends tokenize like Elasticsearch's ``standard`` analyzer (``tokenize_standard``) and score
with Lucene's BM25 (k1=1.2, b=0.75) unless asked otherwise, so they return the same neighbours.
``build_icma_bm25_index()`` reproduces the official ICMA code's caption retrieval.
Backend libraries (bm25s, rank_bm25, elasticsearch) are imported only when an index is built.
"""
from retrieval.bm25._base import BM25Index
from retrieval.bm25._bm25s import BM25sIndex
from retrieval.bm25._elasticsearch import ElasticsearchIndex
from retrieval.bm25._errors import BM25BackendUnavailable, IndexNotFound
from retrieval.bm25._factory import BACKENDS, build_bm25_index, build_icma_bm25_index
from retrieval.bm25._rank_bm25 import RankBM25Index
from retrieval.bm25._tokenize import tokenize_icma, tokenize_standard

__all__ = [
    "BACKENDS",
    "BM25BackendUnavailable",
    "BM25Index",
    "BM25sIndex",
    "ElasticsearchIndex",
    "IndexNotFound",
    "RankBM25Index",
    "build_bm25_index",
    "build_icma_bm25_index",
    "tokenize_icma",
    "tokenize_standard",
]
