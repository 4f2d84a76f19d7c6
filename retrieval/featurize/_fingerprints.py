"""Molecular fingerprints and their Tanimoto similarity, fast enough for a full pool scan.

Two kinds, named for what they compute:

* ``morgan``: a real Morgan / ECFP4-like bit vector (radius 2, 2048 bits). Every vector has
  the same length, so one ``BulkTanimotoSimilarity`` call scores a query against the pool.
* ``topological``: what MolReGPT and ICMA call "morgan" in their code: RDKit's path-based
  fingerprint from ``rdkit.Chem.Fingerprints.FingerprintMols.FingerprintMol(mol)`` with its
  defaults. It is folded until dense enough, so lengths vary (64..2048 bits), and pairs are
  compared with ``DataStructs.FingerprintSimilarity``, which folds the longer one to the
  shorter length first. :func:`tanimoto` reproduces that bit for bit but in bulk: the pool is
  grouped by length, each group is pre-folded to every shorter length once, and each query
  is scored per group with ``BulkTanimotoSimilarity`` (a query longer than a group is folded
  down to the group length, exactly as ``FingerprintSimilarity`` would).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

FINGERPRINT_KINDS = ("morgan", "topological")


@dataclass(frozen=True)
class Fingerprints:
    """Fingerprints of a batch of SMILES.

    Attributes:
        kind: ``"morgan"`` or ``"topological"``.
        fps: RDKit ``ExplicitBitVect`` per input, ``None`` where the SMILES did not parse.
        valid: bool array [n], True where ``fps[i]`` is not None.
    """

    kind: str
    fps: list
    valid: np.ndarray

    def __len__(self) -> int:
        return len(self.fps)

    @property
    def n_invalid(self) -> int:
        return int((~self.valid).sum())


def _mols(smiles: Sequence[str]) -> list:
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    try:
        return [Chem.MolFromSmiles(s) if isinstance(s, str) and s.strip() else None for s in smiles]
    finally:
        RDLogger.EnableLog("rdApp.*")


def morgan_fingerprints(smiles: Sequence[str], *, radius: int = 2, n_bits: int = 2048) -> Fingerprints:
    """Morgan bit vectors (radius 2, 2048 bits by default); unparsable SMILES give ``None``."""
    from rdkit.Chem import rdFingerprintGenerator

    generator = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=n_bits)
    fps = [generator.GetFingerprint(m) if m is not None else None for m in _mols(smiles)]
    return Fingerprints("morgan", fps, np.array([f is not None for f in fps], dtype=bool))


def topological_fingerprints(smiles: Sequence[str]) -> Fingerprints:
    """MolReGPT/ICMA-compatible topological fingerprints (``FingerprintMols.FingerprintMol`` defaults)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from rdkit.Chem.Fingerprints import FingerprintMols

    fps = [FingerprintMols.FingerprintMol(m) if m is not None else None for m in _mols(smiles)]
    return Fingerprints("topological", fps, np.array([f is not None for f in fps], dtype=bool))


def fingerprints(smiles: Sequence[str], kind: str) -> Fingerprints:
    """Dispatch on ``kind`` (``"morgan"`` or ``"topological"``)."""
    if kind == "morgan":
        return morgan_fingerprints(smiles)
    if kind == "topological":
        return topological_fingerprints(smiles)
    raise ValueError(f"unknown fingerprint kind {kind!r}; choose one of {FINGERPRINT_KINDS}")


class _FoldedPool:
    """The pool grouped by fingerprint length, each group folded once to every shorter length."""

    def __init__(self, fps: Sequence) -> None:
        from rdkit import DataStructs

        self.n = len(fps)
        by_length: dict[int, list[int]] = {}
        for position, fp in enumerate(fps):
            if fp is not None:
                by_length.setdefault(fp.GetNumBits(), []).append(position)
        self.groups = {length: np.array(positions, dtype=np.int64) for length, positions in by_length.items()}
        self.originals = {length: [fps[p] for p in positions] for length, positions in by_length.items()}
        self._folded: dict[tuple[int, int], list] = {}
        self._fold = DataStructs.FoldFingerprint

    def at(self, length: int, target: int) -> list:
        """Group ``length`` folded down to ``target`` bits (cached)."""
        if target == length:
            return self.originals[length]
        key = (length, target)
        if key not in self._folded:
            self._folded[key] = [self._fold(fp, length // target) for fp in self.originals[length]]
        return self._folded[key]


def _similarity_row(query, pool: _FoldedPool, out: np.ndarray) -> None:
    from rdkit import DataStructs

    q_len = query.GetNumBits()
    for length, positions in pool.groups.items():
        if length > q_len:  # FingerprintSimilarity folds the longer (pool) one down to the query length
            scores = DataStructs.BulkTanimotoSimilarity(query, pool.at(length, q_len))
        elif length < q_len:  # ... or the longer query down to the pool group's length
            folded = DataStructs.FoldFingerprint(query, q_len // length)
            scores = DataStructs.BulkTanimotoSimilarity(folded, pool.originals[length])
        else:
            scores = DataStructs.BulkTanimotoSimilarity(query, pool.originals[length])
        out[positions] = scores


def tanimoto(queries: Fingerprints | Sequence, pool: Fingerprints | Sequence) -> np.ndarray:
    """Tanimoto similarity of every query against every pool fingerprint.

    Fingerprints of unequal length are compared as ``DataStructs.FingerprintSimilarity`` does
    (the longer is folded to the shorter), so the values equal the pairwise RDKit call exactly.

    Args:
        queries: :class:`Fingerprints` or a list of ``ExplicitBitVect`` / ``None``.
        pool: the same, for the corpus.

    Returns:
        float64 array [n_queries, n_pool]; 0.0 wherever a query or pool entry is ``None``.
    """
    q_fps = queries.fps if isinstance(queries, Fingerprints) else list(queries)
    p_fps = pool.fps if isinstance(pool, Fingerprints) else list(pool)
    folded = _FoldedPool(p_fps)
    out = np.zeros((len(q_fps), len(p_fps)), dtype=np.float64)
    for i, query in enumerate(q_fps):
        if query is not None:
            _similarity_row(query, folded, out[i])
    return out


def tanimoto_rows(queries: Sequence, pool: "_FoldedPool | Sequence"):
    """Yield one similarity row per query (memory stays O(n_pool) for large scans)."""
    folded = pool if isinstance(pool, _FoldedPool) else _FoldedPool(list(pool))
    for query in queries:
        row = np.zeros(folded.n, dtype=np.float64)
        if query is not None:
            _similarity_row(query, folded, row)
        yield row
