"""Corpus ids shared by every index: positions <-> ids, uniqueness, and query self-exclusion."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from retrieval.types import Hits


class IdTable:
    """Ordered, unique string ids of the indexed corpus (position ``i`` holds ``ids[i]``)."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self._position: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def extend(self, ids: Sequence | None, n: int) -> list[str]:
        """Append ``n`` ids (default: their positions as strings); raise on duplicates."""
        new = [str(i) for i in ids] if ids is not None else [str(len(self.ids) + i) for i in range(n)]
        if len(new) != n:
            raise ValueError(f"got {len(new)} ids for {n} items; pass one id per item")
        seen: set[str] = set()
        clashes = []
        for i in new:
            if i in self._position or i in seen:
                clashes.append(i)
            seen.add(i)
        if clashes:
            raise ValueError(
                f"{len(clashes)} duplicate id(s), e.g. {clashes[:5]}; ids must be unique within an index "
                "(deduplicate the records first)"
            )
        start = len(self.ids)
        self.ids.extend(new)
        self._position.update({i: start + k for k, i in enumerate(new)})
        return new

    def position(self, id_: str) -> int | None:
        return self._position.get(str(id_))


def check_exclude(exclude_ids: Sequence | None, n_queries: int) -> list[str | None] | None:
    """Validate the per-query ids to drop from the hits (None entries exclude nothing)."""
    if exclude_ids is None:
        return None
    exclude = [None if e is None else str(e) for e in exclude_ids]
    if len(exclude) != n_queries:
        raise ValueError(f"exclude_ids has {len(exclude)} entries for {n_queries} queries; pass one per query")
    return exclude


def drop_excluded(
    indices: np.ndarray, scores: np.ndarray, k: int, table: IdTable, exclude: list[str | None] | None
) -> Hits:
    """Keep the best ``k`` hits per row after removing each query's excluded id and -1 pads."""
    out = Hits.empty(indices.shape[0], k)
    for row in range(indices.shape[0]):
        excluded = exclude[row] if exclude is not None else None
        banned = table.position(excluded) if excluded is not None else None
        kept = [(j, s) for j, s in zip(indices[row], scores[row]) if j >= 0 and j != banned][:k]
        if kept:
            out.indices[row, : len(kept)] = [j for j, _ in kept]
            out.scores[row, : len(kept)] = [s for _, s in kept]
    return out
