"""The one retriever factory: every caller that turns a pool into something searchable (the
contexts job, the Serve retriever, benchmarks) builds it here, so a retriever name means the same
index, the same scores and the same handling of unusable queries everywhere.

Two families, by what is compared:

* molecules (mol2cap queries): :func:`build_molecule_retriever` with ``kind`` one of
  :data:`MOLECULE_KINDS` -- ``morgan`` (true Morgan r=2, 2048 bits, Tanimoto), ``topological``
  (RDKit's topological fingerprint, what ICMA/MolReGPT call "morgan"), ``gnn`` (cosine of a
  pretrained GNN's mean-pooled graph embeddings in FAISS, as ICMA's ``gnn_similarity.py``; either
  a saved FAISS index written by the embedding job, or encoded here) and ``random``.
* captions (cap2mol queries): :func:`build_text_retriever` with ``backend`` one of
  :data:`TEXT_BACKENDS` -- ``bm25s`` / ``elasticsearch`` / ``rank_bm25`` (Lucene BM25 over the
  Elasticsearch ``standard`` tokens unless told otherwise), ``icma`` (ICMA's own rank_bm25
  setup, exact scores) and ``random``.

Both return an object with ``search(queries, k) -> (Hits, usable)``: ``Hits`` positions index the
pool as given (``-1`` pads), ``usable`` is False for a query that could not be searched (a SMILES
RDKit or the GNN featurizer rejects); its row is all ``-1``.
"""
from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from typing import Any, Sequence

import numpy as np

from retrieval.types import Hits

__all__ = [
    "MOLECULE_KINDS",
    "TEXT_BACKENDS",
    "MoleculeRetriever",
    "TextRetriever",
    "build_molecule_retriever",
    "build_text_retriever",
    "parsable_smiles",
]

MOLECULE_KINDS = ("morgan", "topological", "gnn", "random")
TEXT_BACKENDS = ("bm25s", "elasticsearch", "rank_bm25", "icma", "random")


def parsable_smiles(smiles: Sequence[str]) -> np.ndarray:
    """True where RDKit parses the SMILES (its per-molecule error log silenced)."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    try:
        return np.array([bool(s and s.strip()) and Chem.MolFromSmiles(s) is not None for s in smiles], dtype=bool)
    finally:
        RDLogger.EnableLog("rdApp.*")


@dataclass
class MoleculeRetriever:
    """A molecule index over a pool (plus the GNN encoder for ``gnn``).

    Attributes:
        kind: one of :data:`MOLECULE_KINDS`.
        index: the ``retrieval.indexes`` index.
        encoder: the ``GNNEncoder`` (``gnn`` only).
        pool_positions: for ``gnn``, the pool position of each index row (rows of molecules the
            featurizer rejects are not in the index); None when index rows are pool rows.
        batch_size: molecules per GNN forward pass.
    """

    kind: str
    index: Any
    encoder: Any = None
    pool_positions: np.ndarray | None = None
    batch_size: int = 256

    def __len__(self) -> int:
        return len(self.index)

    def search(self, smiles: Sequence[str], k: int) -> tuple[Hits, np.ndarray]:
        """Top-``k`` pool positions for each query SMILES -> ``(Hits, usable bool [n])``."""
        smiles = list(smiles)
        if self.kind == "random":
            return self.index.search(smiles, k=k), np.ones(len(smiles), dtype=bool)
        usable = parsable_smiles(smiles)
        positions = np.flatnonzero(usable)
        out = Hits.empty(len(smiles), k)
        if not len(positions):
            return out, usable
        if self.encoder is None:
            hits = self.index.search([smiles[i] for i in positions], k=k)
        else:
            vectors, valid = self.encoder.encode_smiles([smiles[i] for i in positions], batch_size=self.batch_size)
            usable[positions[~valid]] = False
            positions = positions[valid]
            if not len(positions):
                return out, usable
            hits = self.index.search(vectors[valid], k=k)
        indices = hits.indices
        if self.pool_positions is not None:
            indices = np.where(indices >= 0, self.pool_positions[np.clip(indices, 0, None)], -1)
        out.indices[positions, : indices.shape[1]] = indices
        out.scores[positions, : indices.shape[1]] = hits.scores
        return out, usable


def build_molecule_retriever(
    kind: str,
    smiles: Sequence[str],
    ids: Sequence[str],
    *,
    checkpoint: str | PathLike[str] | None = None,
    index_dir: str | PathLike[str] | None = None,
    seed: int = 0,
    batch_size: int = 256,
) -> MoleculeRetriever:
    """Index a molecule pool for similarity search.

    Args:
        kind: ``morgan`` | ``topological`` | ``gnn`` | ``random``.
        smiles, ids: the pool, in order (hit positions index these lists).
        checkpoint: GNN checkpoint (``gnn``; needed to encode queries).
        index_dir: ``gnn`` only: a saved ``FaissIndex`` (e.g. ``embed_molecules``' output) over
            this pool; its ids must be pool ids. Without it the pool is encoded here.
        seed: seed of ``random``.
        batch_size: molecules per GNN forward pass.

    Raises:
        ValueError: unknown kind, ``gnn`` without a checkpoint, a saved index whose ids are not
            this pool's, or a pool without ids.
        FileNotFoundError: checkpoint or index files missing.
    """
    smiles, ids = list(smiles), [str(i) for i in ids]
    if len(smiles) != len(ids):
        raise ValueError(f"{len(smiles)} SMILES but {len(ids)} ids")
    if kind == "random":
        from retrieval.indexes import RandomIndex

        return MoleculeRetriever(kind, RandomIndex(seed=seed).build(smiles, ids=ids))
    if kind in ("morgan", "topological"):
        from retrieval.indexes import FingerprintIndex

        return MoleculeRetriever(kind, FingerprintIndex(kind=kind).build(smiles, ids=ids))
    if kind != "gnn":
        raise ValueError(f"unknown molecule retriever {kind!r}; choose one of {', '.join(MOLECULE_KINDS)}")
    if not checkpoint:
        raise ValueError("the gnn retriever needs a GNN checkpoint (.pth) to encode the queries")
    from retrieval.encoders import GNNEncoder
    from retrieval.indexes import FaissIndex

    encoder = GNNEncoder.from_pretrained(checkpoint)
    if index_dir is not None:
        index = FaissIndex.load(index_dir)
        where = {cid: pos for pos, cid in enumerate(ids)}
        unknown = [i for i in index.ids if i not in where]
        if unknown:
            raise ValueError(
                f"FAISS index {index_dir} holds {len(index)} vectors, {len(unknown)} of them for ids not in this pool "
                f"(e.g. {unknown[0]!r}); rebuild the index over this pool"
            )
        return MoleculeRetriever(kind, index, encoder, np.array([where[i] for i in index.ids], dtype=np.int64), batch_size)
    vectors, valid = encoder.encode_smiles(smiles, batch_size=batch_size)
    pool_positions = np.flatnonzero(valid)
    index = FaissIndex(vectors.shape[1], kind="flat")  # exact cosine, as ICMA's gnn_similarity.py
    index.add(vectors[pool_positions], ids=[ids[p] for p in pool_positions])
    return MoleculeRetriever(kind, index, encoder, pool_positions, batch_size)


@dataclass
class TextRetriever:
    """A caption index over a pool (a ``retrieval.bm25`` index, or random)."""

    backend: str
    index: Any

    def __len__(self) -> int:
        return len(self.index)

    def search(self, texts: Sequence[str], k: int) -> tuple[Hits, np.ndarray]:
        """Top-``k`` pool positions for each query caption -> ``(Hits, usable)`` (all usable)."""
        texts = list(texts)
        return self.index.search(texts, k=k), np.ones(len(texts), dtype=bool)

    def close(self) -> None:
        if hasattr(self.index, "close"):
            self.index.close()

    def delete(self) -> None:
        """Drop a server-side index (Elasticsearch) and close the client."""
        if hasattr(self.index, "delete_index"):
            self.index.delete_index()
        self.close()


def build_text_retriever(
    backend: str,
    texts: Sequence[str],
    ids: Sequence[str],
    *,
    tokenizer: str = "standard",
    seed: int = 0,
    **backend_kwargs: Any,
) -> TextRetriever:
    """Index a caption pool for BM25 search.

    Args:
        backend: ``bm25s`` | ``elasticsearch`` | ``rank_bm25`` | ``icma`` | ``random``.
        texts, ids: the pool, in order.
        tokenizer: ``standard`` (Elasticsearch's analyzer) or ``icma`` (embedded backends).
        seed: seed of ``random``.
        **backend_kwargs: passed to :func:`retrieval.bm25.build_bm25_index` (Elasticsearch
            ``url``, ``index_name``, timeouts; bm25s ``show_progress`` ...).

    Raises:
        ValueError: unknown backend; backend errors (e.g. ``BM25BackendUnavailable``) propagate.
    """
    texts, ids = list(texts), [str(i) for i in ids]
    if backend == "random":
        from retrieval.indexes import RandomIndex

        return TextRetriever(backend, RandomIndex(seed=seed).build(texts, ids=ids))
    from retrieval.bm25 import build_bm25_index, build_icma_bm25_index

    if backend == "icma":
        index = build_icma_bm25_index()  # rank_bm25.BM25Okapi defaults over ICMA's tokens
    elif backend in ("bm25s", "elasticsearch", "rank_bm25"):
        index = build_bm25_index(backend, tokenizer=tokenizer, **backend_kwargs)
    else:
        raise ValueError(f"unknown caption retriever {backend!r}; choose one of {', '.join(TEXT_BACKENDS)}")
    try:
        index.index(texts, ids=ids)
    except BaseException:
        if hasattr(index, "close"):
            index.close()
        raise
    return TextRetriever(backend, index)

