"""rank_bm25 backend: ``BM25Okapi`` exactly as the official ICMA code calls it (and the speed baseline)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from retrieval._optional import require
from retrieval.bm25._embedded import EmbeddedBM25Index, pad_hits
from retrieval.types import Hits

__all__ = ["RankBM25Index"]


class RankBM25Index(EmbeddedBM25Index):
    """``rank_bm25.BM25Okapi``: Robertson idf ``log((N - df + 0.5) / (df + 0.5))`` floored at
    ``epsilon * mean idf``, tf part ``tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))``.

    Every document is ranked, zero scores included, with a stable sort (ties keep corpus order):
    ICMA's ``sorted(range(N), key=score, reverse=True)[:n]``. A query with no term in the
    vocabulary gives a row of -1 (ICMA would return the first ``k`` documents).
    ICMA's exact setting is ``tokenizer="icma", k1=1.5, b=0.75, epsilon=0.25`` (see
    ``build_icma_bm25_index``). Scoring is a Python loop: use it for fidelity, not speed.

    Args:
        tokenizer: ``"standard"`` (default) or ``"icma"``.
        k1: Term-frequency saturation (BM25Okapi's own default is 1.5).
        b: Length normalization.
        epsilon: Floor for negative idf values, as a fraction of the mean idf.
    """

    backend = "rank_bm25"

    def __init__(self, *, tokenizer: str = "standard", k1: float = 1.2, b: float = 0.75, epsilon: float = 0.25):
        super().__init__(tokenizer=tokenizer, k1=k1, b=b)
        self._rank_bm25 = require("rank_bm25", "bm25")
        self.epsilon = float(epsilon)
        self._model = None

    def _build(self, corpus_tokens: list[list[str]]) -> None:
        self._model = self._rank_bm25.BM25Okapi(corpus_tokens, k1=self.k1, b=self.b, epsilon=self.epsilon)

    def search(self, queries: Sequence[str], k: int = 10) -> Hits:
        queries = self._check_queries(queries, k)
        self._require_indexed()
        hits = Hits.empty(len(queries), k)
        width = min(k, len(self._ids))
        for i, query in enumerate(queries):
            tokens = self._tokenize(query)
            if not query.strip() or not any(t in self._model.idf for t in tokens):
                continue
            scores = self._model.get_scores(tokens)
            top = np.argsort(-scores, kind="stable")[:width]
            idx, sc = pad_hits(top[None, :], scores[top][None, :].astype(np.float32), k)
            hits.indices[i], hits.scores[i] = idx[0], sc[0]
        return hits

    def close(self) -> None:
        super().close()
        self._model = None
