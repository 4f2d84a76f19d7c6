"""Exhaustive Tanimoto search over fingerprints (MolReGPT/ICMA molecule retrieval), plus a random baseline.

``FingerprintIndex(kind="topological")`` reproduces the retrieval lists ICMA released (their
"morgan" lists): RDKit topological fingerprints, ``FingerprintSimilarity`` scores and a
stable descending sort over the pool, so ties keep pool order. ``kind="morgan"`` is a real
Morgan (radius 2, 2048 bits) fingerprint with the same ranking rule.
"""
from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from retrieval.featurize._fingerprints import FINGERPRINT_KINDS, _FoldedPool, fingerprints, tanimoto_rows
from retrieval.indexes._ids import IdTable, check_exclude, drop_excluded
from retrieval.types import Hits

logger = logging.getLogger(__name__)

_FILE = "fingerprint_index.json"


def _top(row: np.ndarray, valid: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``fetch`` valid positions by descending score, ties in pool order (stable sort)."""
    candidates = np.flatnonzero(valid)
    order = candidates[np.argsort(-row[candidates], kind="stable")][:fetch]
    return order, row[order]


class FingerprintIndex:
    """Tanimoto nearest neighbours over a SMILES pool.

    Args:
        kind: ``"topological"`` (ICMA/MolReGPT-compatible) or ``"morgan"`` (radius 2, 2048 bits).

    Pool SMILES that RDKit cannot parse stay in the id table (positions are stable) but are
    never returned; an unparsable query gets an all ``-1`` row. Both are counted in
    :attr:`n_invalid` / the log.
    """

    def __init__(self, kind: str = "topological") -> None:
        if kind not in FINGERPRINT_KINDS:
            raise ValueError(f"kind must be one of {FINGERPRINT_KINDS}, got {kind!r}")
        self.kind = kind
        self.table = IdTable()
        self.smiles: list[str] = []
        self._fps: list = []
        self._pool: _FoldedPool | None = None

    def __len__(self) -> int:
        return len(self.smiles)

    @property
    def ids(self) -> list[str]:
        return self.table.ids

    @property
    def valid(self) -> np.ndarray:
        return np.array([fp is not None for fp in self._fps], dtype=bool)

    @property
    def n_invalid(self) -> int:
        return int((~self.valid).sum())

    def add(self, smiles: Sequence[str], ids: Sequence | None = None) -> "FingerprintIndex":
        """Fingerprint and append molecules; unparsable ones are kept but never retrieved."""
        smiles = list(smiles)
        self.table.extend(ids, len(smiles))
        fps = fingerprints(smiles, self.kind)
        if fps.n_invalid:
            logger.warning("%d of %d pool SMILES could not be parsed; they are never retrieved", fps.n_invalid, len(smiles))
        self.smiles.extend(smiles)
        self._fps.extend(fps.fps)
        self._pool = None
        return self

    def build(self, smiles: Sequence[str], ids: Sequence | None = None) -> "FingerprintIndex":
        """Index a whole pool, replacing anything indexed before."""
        self.table, self.smiles, self._fps, self._pool = IdTable(), [], [], None
        return self.add(smiles, ids)

    def similarities(self, query_smiles: Sequence[str]) -> np.ndarray:
        """Full Tanimoto matrix [n_queries, n_pool] (0 for unparsable molecules)."""
        query = fingerprints(list(query_smiles), self.kind)
        return np.stack(list(tanimoto_rows(query.fps, self._folded()))) if len(query) else np.zeros((0, len(self)))

    def _folded(self) -> _FoldedPool:
        if self._pool is None:
            self._pool = _FoldedPool(self._fps)
        return self._pool

    def search(self, query_smiles: Sequence[str], k: int = 10, exclude_ids: Sequence | None = None) -> Hits:
        """Top-``k`` pool molecules by Tanimoto similarity, ties in pool order.

        Args:
            query_smiles: query molecules.
            k: hits per query.
            exclude_ids: one id (or None) per query to drop, e.g. the query itself when the
                queries come from the pool (ICMA's ``start_pos=1``).
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        query_smiles = list(query_smiles)
        exclude = check_exclude(exclude_ids, len(query_smiles))
        query = fingerprints(query_smiles, self.kind)
        if query.n_invalid:
            logger.warning("%d of %d query SMILES could not be parsed; their rows are empty", query.n_invalid, len(query))
        fetch = k + (exclude is not None)
        valid = self.valid
        indices = np.full((len(query), fetch), -1, dtype=np.int64)
        scores = np.full((len(query), fetch), -np.inf, dtype=np.float32)
        for i, row in enumerate(tanimoto_rows(query.fps, self._folded())):
            if query.fps[i] is None:
                continue
            top, top_scores = _top(row, valid, fetch)
            indices[i, : len(top)], scores[i, : len(top)] = top, top_scores
        return drop_excluded(indices, scores, k, self.table, exclude)

    def save(self, directory: str | Path) -> Path:
        """Write the pool (SMILES, ids, fingerprints as RDKit binary) to ``fingerprint_index.json``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        payload = {
            "kind": self.kind,
            "ids": self.table.ids,
            "smiles": self.smiles,
            "fps": [base64.b64encode(fp.ToBinary()).decode() if fp is not None else None for fp in self._fps],
        }
        (directory / _FILE).write_text(json.dumps(payload))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "FingerprintIndex":
        """Read an index written by :meth:`save` (fingerprints are not recomputed)."""
        from rdkit import DataStructs

        path = Path(directory) / _FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing; is {directory} a FingerprintIndex.save() directory?")
        payload = json.loads(path.read_text())
        index = cls(payload["kind"])
        index.table.extend(payload["ids"], len(payload["ids"]))
        index.smiles = list(payload["smiles"])
        index._fps = [DataStructs.ExplicitBitVect(base64.b64decode(b)) if b is not None else None for b in payload["fps"]]
        return index


class RandomIndex:
    """Random neighbours: the no-retrieval baseline, with :class:`FingerprintIndex`'s interface.

    Args:
        seed: every :meth:`search` call with the same queries returns the same hits.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)
        self.table = IdTable()
        self.smiles: list[str] = []

    def __len__(self) -> int:
        return len(self.smiles)

    @property
    def ids(self) -> list[str]:
        return self.table.ids

    def add(self, smiles: Sequence[str], ids: Sequence | None = None) -> "RandomIndex":
        smiles = list(smiles)
        self.table.extend(ids, len(smiles))
        self.smiles.extend(smiles)
        return self

    def build(self, smiles: Sequence[str], ids: Sequence | None = None) -> "RandomIndex":
        self.table, self.smiles = IdTable(), []
        return self.add(smiles, ids)

    def search(self, query_smiles: Sequence[str], k: int = 10, exclude_ids: Sequence | None = None) -> Hits:
        """``k`` distinct random pool positions per query (score 0), seeded by ``seed`` and the query row."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        n_queries = len(list(query_smiles))
        exclude = check_exclude(exclude_ids, n_queries)
        fetch = min(k + (exclude is not None), len(self))
        indices = np.full((n_queries, max(fetch, 1)), -1, dtype=np.int64)
        for i in range(n_queries):
            rng = np.random.default_rng([self.seed, i])
            indices[i, :fetch] = rng.choice(len(self), size=fetch, replace=False)
        scores = np.where(indices >= 0, 0.0, -np.inf).astype(np.float32)
        return drop_excluded(indices, scores, k, self.table, exclude)

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "random_index.json").write_text(json.dumps({"seed": self.seed, "ids": self.ids, "smiles": self.smiles}))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "RandomIndex":
        path = Path(directory) / "random_index.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing; is {directory} a RandomIndex.save() directory?")
        payload = json.loads(path.read_text())
        return cls(payload["seed"]).add(payload["smiles"], payload["ids"])
