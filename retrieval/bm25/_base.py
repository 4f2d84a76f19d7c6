"""The one interface every BM25 backend implements, plus the input checks they share."""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from retrieval.bm25._tokenize import get_tokenizer
from retrieval.types import Hits

__all__ = ["BM25Index", "META_FILE", "CORPUS_FILE"]

META_FILE = "bm25_meta.json"  # written by save(): backend, tokenizer, k1, b
CORPUS_FILE = "corpus.jsonl"  # one {"id", "text"} per line, in indexed order
FORMAT = "ray-icma-bm25"
FORMAT_VERSION = 1


class BM25Index(ABC):
    """A BM25 index over a list of texts, searched in batches.

    ``search`` returns positions in the indexed order (``ids[position]`` is the caller's id).
    A query that is empty or has no term in the index vocabulary gets a row of ``-1``
    (scores ``-inf``); rows with fewer than ``k`` matching documents are padded the same way
    (except ``rank_bm25``, which ranks every document, zero scores included, as ICMA does).

    Attributes:
        backend: Backend name as passed to ``build_bm25_index``.
        tokenizer: ``"standard"`` (Elasticsearch standard analyzer) or ``"icma"`` (ICMA's split).
        k1: BM25 term-frequency saturation.
        b: BM25 length normalization.
        ids: Document ids in indexed order (``str(position)`` unless given).
    """

    backend: ClassVar[str] = ""
    _registry: ClassVar[dict[str, type["BM25Index"]]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.backend:
            BM25Index._registry[cls.backend] = cls

    def __init__(self, *, tokenizer: str = "standard", k1: float = 1.2, b: float = 0.75):
        self._tokenize = get_tokenizer(tokenizer)
        if not (isinstance(k1, (int, float)) and k1 >= 0):
            raise ValueError(f"k1 must be a number >= 0, got {k1!r}")
        if not (isinstance(b, (int, float)) and 0 <= b <= 1):
            raise ValueError(f"b must be a number in [0, 1], got {b!r}")
        self.tokenizer = tokenizer
        self.k1 = float(k1)
        self.b = float(b)
        self._ids: list[str] = []

    # -- the interface -------------------------------------------------------------------------
    @abstractmethod
    def index(self, texts: Sequence[str], ids: Sequence[str] | None = None) -> None:
        """Replace the index contents with ``texts``.

        Args:
            texts: Documents in the order that ``search`` positions refer to.
            ids: One unique id per text; ``str(position)`` when omitted.

        Raises:
            ValueError: Empty corpus, ids of the wrong length or not unique.
            TypeError: A text that is not a string (the message gives its position).
        """

    @abstractmethod
    def search(self, queries: Sequence[str], k: int = 10) -> Hits:
        """Top-``k`` documents for each query, best first (``Hits`` of shape [len(queries), k])."""

    def add(self, texts: Sequence[str], ids: Sequence[str] | None = None) -> None:
        """Append documents (positions continue after the current ones)."""
        raise NotImplementedError(f"the {self.backend} backend cannot add documents; call index() with all of them")

    def save(self, directory: str | Path) -> Path:
        """Write the index to ``directory`` (embedded backends only)."""
        raise NotImplementedError(f"the {self.backend} backend lives on a server and has nothing to save")

    @classmethod
    def load(cls, directory: str | Path, **kwargs) -> "BM25Index":
        """Open an index written by ``save``; the backend is read from the directory."""
        directory = Path(directory)
        meta_path = directory / META_FILE
        if not meta_path.is_file():
            raise FileNotFoundError(f"{meta_path} not found: {directory} is not a saved BM25 index (write one with save())")
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"{meta_path} is not a {FORMAT} file")
        target = BM25Index._registry.get(meta.get("backend", ""))
        if target is None or not issubclass(target, cls):
            raise ValueError(f"{directory} holds a {meta.get('backend')!r} index, which {cls.__name__}.load cannot open")
        return target._load(directory, meta, **kwargs)

    @classmethod
    def _load(cls, directory: Path, meta: dict, **kwargs) -> "BM25Index":
        raise NotImplementedError

    @property
    def ids(self) -> list[str]:
        return self._ids

    def __len__(self) -> int:
        return len(self.ids)

    def close(self) -> None:  # noqa: B027 - an optional hook: backends holding nothing keep this no-op
        """Release connections or memory; the object is unusable afterwards."""

    def __enter__(self) -> "BM25Index":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(tokenizer={self.tokenizer!r}, k1={self.k1}, b={self.b}, n_docs={len(self._ids)})"

    # -- shared checks -------------------------------------------------------------------------
    def _check_corpus(self, texts: Sequence[str], ids: Sequence[str] | None, start: int = 0) -> tuple[list[str], list[str]]:
        """Validated (texts, ids); ``start`` is the position of the first text (for ``add``)."""
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of strings, not one string")
        texts = list(texts)
        if not texts:
            raise ValueError("cannot index an empty corpus: pass at least one text")
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"text at position {start + i} is {type(text).__name__}, expected str")
        if ids is None:
            ids = [str(start + i) for i in range(len(texts))]
        else:
            if isinstance(ids, str):
                raise TypeError("ids must be a sequence of strings, not one string")
            ids = [str(x) for x in ids]
            if len(ids) != len(texts):
                raise ValueError(f"got {len(texts)} texts but {len(ids)} ids")
        seen = set(self._ids) if start else set()
        for i, doc_id in enumerate(ids):
            if doc_id in seen:
                raise ValueError(f"duplicate id {doc_id!r} at position {start + i}; ids must be unique")
            seen.add(doc_id)
        return texts, ids

    @staticmethod
    def _check_queries(queries: Sequence[str], k: int) -> list[str]:
        if isinstance(queries, str):
            raise TypeError("queries must be a sequence of strings; wrap a single query in a list")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be an integer >= 1, got {k!r}")
        queries = list(queries)
        for i, q in enumerate(queries):
            if not isinstance(q, str):
                raise TypeError(f"query at position {i} is {type(q).__name__}, expected str")
        return queries

    def _require_indexed(self) -> None:
        if not self._ids:
            raise RuntimeError(f"the {self.backend} index is empty: call index(texts) before search()")
