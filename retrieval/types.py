"""Small value types shared by every retriever, so indexes, re-rankers and context builders agree."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Hits(NamedTuple):
    """Top-k results for a batch of queries.

    Attributes:
        indices: int64 array [n_queries, k] of positions in the indexed corpus, best first;
            -1 pads rows that have fewer than k hits.
        scores: float32 array [n_queries, k], higher is more similar; -inf where indices is -1.
    """

    indices: np.ndarray
    scores: np.ndarray

    @property
    def k(self) -> int:
        return int(self.indices.shape[1])

    def __len__(self) -> int:  # number of queries
        return int(self.indices.shape[0])

    def row(self, i: int) -> list[tuple[int, float]]:
        """The valid (position, score) pairs of query ``i``."""
        return [(int(j), float(s)) for j, s in zip(self.indices[i], self.scores[i]) if j >= 0]

    @classmethod
    def empty(cls, n_queries: int, k: int) -> "Hits":
        return cls(np.full((n_queries, k), -1, dtype=np.int64), np.full((n_queries, k), -np.inf, dtype=np.float32))
