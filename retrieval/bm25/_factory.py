"""Pick a BM25 backend by name: the one function callers use to get an index."""
from __future__ import annotations

from retrieval.bm25._base import BM25Index

__all__ = ["BACKENDS", "build_bm25_index", "build_icma_bm25_index"]

BACKENDS = ("bm25s", "elasticsearch", "rank_bm25")


def build_bm25_index(backend: str = "bm25s", *, tokenizer: str = "standard", k1: float = 1.2, b: float = 0.75,
                     **backend_kwargs) -> BM25Index:
    """An empty BM25 index of the chosen backend; call ``index(texts)`` next.

    Args:
        backend: ``"bm25s"`` (embedded, fast, default), ``"elasticsearch"`` (server; needs the
            ``es`` extra) or ``"rank_bm25"`` (embedded, slow, ICMA-compatible scoring).
        tokenizer: ``"standard"`` (Elasticsearch's standard analyzer, so all backends rank alike)
            or ``"icma"`` (ICMA's punctuation split; embedded backends only).
        k1: BM25 term-frequency saturation (Elasticsearch default 1.2).
        b: BM25 length normalization (Elasticsearch default 0.75).
        **backend_kwargs: Passed to the backend class: for ``elasticsearch`` ``url``,
            ``index_name``, ``request_timeout``, ``max_retries``, ``number_of_shards``, ...
            (see ``ElasticsearchIndex``); for ``bm25s`` ``n_threads``, ``show_progress``, ``mmap``;
            for ``rank_bm25`` ``epsilon``.

    Raises:
        ValueError: Unknown backend or tokenizer, bad k1/b.
        TypeError: A keyword the backend does not take.
        BM25BackendUnavailable: ``elasticsearch`` and the server does not answer.
    """
    if backend == "bm25s":
        from retrieval.bm25._bm25s import BM25sIndex as cls
    elif backend == "elasticsearch":
        from retrieval.bm25._elasticsearch import ElasticsearchIndex as cls
    elif backend == "rank_bm25":
        from retrieval.bm25._rank_bm25 import RankBM25Index as cls
    else:
        raise ValueError(f"unknown BM25 backend {backend!r}; choose one of {list(BACKENDS)}")
    return cls(tokenizer=tokenizer, k1=k1, b=b, **backend_kwargs)


def build_icma_bm25_index() -> BM25Index:
    """The caption BM25 of the official ICMA code: ``rank_bm25.BM25Okapi`` defaults (k1 1.5,
    b 0.75, epsilon 0.25) over ICMA-tokenized captions, ranked with a stable sort."""
    return build_bm25_index("rank_bm25", tokenizer="icma", k1=1.5, b=0.75, epsilon=0.25)
