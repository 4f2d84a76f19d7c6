"""Molecule indexes: Tanimoto fingerprint search, FAISS embedding search and a random baseline.

All return :class:`retrieval.types.Hits` (positions into the index's ``ids``) and take
``exclude_ids`` to drop each query's own entry when the queries are the indexed pool.
"""
from retrieval.indexes._faiss import FAISS_KINDS, FaissIndex, faiss_has_gpu, normalize
from retrieval.indexes._fingerprint import FingerprintIndex, RandomIndex

__all__ = ["FAISS_KINDS", "FaissIndex", "FingerprintIndex", "RandomIndex", "faiss_has_gpu", "normalize"]
