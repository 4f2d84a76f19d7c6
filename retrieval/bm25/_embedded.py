"""What the in-process backends share: keeping the corpus, rebuilding on add, saving the corpus."""
from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from retrieval.bm25._base import CORPUS_FILE, FORMAT, FORMAT_VERSION, META_FILE, BM25Index

__all__ = ["EmbeddedBM25Index"]


class EmbeddedBM25Index(BM25Index):
    """An index held in this process; ``add`` re-indexes everything (BM25 statistics are global)."""

    def __init__(self, *, tokenizer: str = "standard", k1: float = 1.2, b: float = 0.75):
        super().__init__(tokenizer=tokenizer, k1=k1, b=b)
        self._texts: list[str] = []

    def index(self, texts: Sequence[str], ids: Sequence[str] | None = None) -> None:
        texts, ids = self._check_corpus(texts, ids)
        corpus_tokens = [self._tokenize(t) for t in texts]
        if not any(corpus_tokens):
            raise ValueError(f"none of the {len(texts)} texts has a token under the {self.tokenizer!r} tokenizer")
        self._build(corpus_tokens)
        self._texts, self._ids = texts, ids

    def add(self, texts: Sequence[str], ids: Sequence[str] | None = None) -> None:
        """Append documents; costs a full re-index because idf and the mean length change."""
        texts, ids = self._check_corpus(texts, ids, start=len(self._ids))
        self.index(self._texts + texts, self._ids + ids)

    @abstractmethod
    def _build(self, corpus_tokens: list[list[str]]) -> None:
        """Build the backend's structures from the tokenized corpus."""

    # -- persistence ---------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write the corpus and settings (and the backend's own files) to ``directory``."""
        self._require_indexed()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / CORPUS_FILE, "w", encoding="utf-8") as f:
            for doc_id, text in zip(self._ids, self._texts):
                f.write(json.dumps({"id": doc_id, "text": text}, ensure_ascii=False) + "\n")
        self._save_backend(directory)
        meta = {"format": FORMAT, "version": FORMAT_VERSION, "backend": self.backend, "tokenizer": self.tokenizer,
                "k1": self.k1, "b": self.b, "n_docs": len(self._ids)}
        (directory / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        return directory

    def _save_backend(self, directory: Path) -> None:
        """Extra files of the backend (nothing by default: rebuilt from the corpus on load)."""

    @classmethod
    def _load(cls, directory: Path, meta: dict, **kwargs) -> "EmbeddedBM25Index":
        if meta.get("version") != FORMAT_VERSION:
            raise ValueError(f"{directory / META_FILE} has format version {meta.get('version')}, expected {FORMAT_VERSION}")
        ids, texts = [], []
        with open(directory / CORPUS_FILE, encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                ids.append(row["id"])
                texts.append(row["text"])
        if len(ids) != meta["n_docs"]:
            raise ValueError(f"{directory / CORPUS_FILE} has {len(ids)} rows, {META_FILE} says {meta['n_docs']}: the save is incomplete")
        obj = cls(tokenizer=meta["tokenizer"], k1=meta["k1"], b=meta["b"], **kwargs)
        obj._restore(directory, texts, ids)
        return obj

    def _restore(self, directory: Path, texts: list[str], ids: list[str]) -> None:
        """Bring a loaded object to the indexed state (default: re-index the corpus)."""
        self.index(texts, ids)

    def close(self) -> None:
        self._texts, self._ids = [], []


def pad_hits(indices: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Widen [n, k'] results to [n, k] with -1 / -inf; entries whose score is -inf become -1."""
    n, width = indices.shape
    out_idx = np.full((n, k), -1, dtype=np.int64)
    out_sc = np.full((n, k), -np.inf, dtype=np.float32)
    out_idx[:, :width] = indices
    out_sc[:, :width] = scores
    out_idx[~np.isfinite(out_sc)] = -1
    return out_idx, out_sc
