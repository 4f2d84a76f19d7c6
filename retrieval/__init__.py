"""Molecule and caption retrieval for in-context examples: featurization, GNN encoder,
fingerprint/FAISS indexes, BM25 backends, re-ranking and context building. Knows nothing of LLMs."""
from retrieval.types import Hits

__all__ = ["Hits"]
