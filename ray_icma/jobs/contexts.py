"""Context building: for every query, the top-k most similar pool items, stored once so the
training and generation stages only look them up.

Which retriever serves which task (ICMA's Hybrid Context Retrieval):

* mol2cap (query = molecule): ``morgan`` (true Morgan r=2, 2048 bits), ``topological``
  (what ICMA/MolReGPT call "morgan": RDKit's topological fingerprint), ``gnn:<checkpoint>``
  (cosine similarity of a pretrained GNN's mean-pooled graph embeddings, as ICMA's
  ``gnn_similarity.py``), ``random``.
* cap2mol (query = caption): ``bm25`` (bm25s, Elasticsearch-style standard tokenizer),
  ``bm25-icma`` (rank_bm25 with ICMA's own punctuation split, ICMA's exact scores),
  ``bm25-es:<url>`` (a live Elasticsearch), ``random``.

A query is never its own example: pool items with the query's CID are removed (this covers
query split == pool split, the training case, where ICMA's lists hold the query at rank 0 and
it skips it with ``start_pos=1``; lists written here never contain it, so read them with
``start_pos=0``).

File format (JSONL, one line per query, in query order)::

    {"query_id": "123", "task": "mol2cap", "retriever": "morgan",
     "neighbors": ["456", ...best first], "scores": [0.83, ...]}

plus ``<file>.meta.json`` (task, retriever, k, pool/queries sources, created, counts, invalid
query ids). A query whose SMILES RDKit cannot parse (molecule retrievers) gets an empty
neighbour list and is listed in the meta: its prompt simply has no examples.
"""
from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from os import PathLike
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ray_icma.data.records import MoleculeRecord

__all__ = [
    "DEFAULT_RETRIEVER",
    "FORMAT_VERSION",
    "RETRIEVERS",
    "TASKS",
    "ContextTable",
    "ContextsFileError",
    "RetrieverSpec",
    "build_contexts",
    "parse_retriever",
    "read_contexts",
    "meta_path",
]

TASKS = ("mol2cap", "cap2mol")
#: retriever names per task; ``gnn:`` and ``bm25-es:`` take an argument after the colon.
RETRIEVERS: dict[str, tuple[str, ...]] = {
    "mol2cap": ("morgan", "topological", "gnn:<checkpoint.pth>", "random"),
    "cap2mol": ("bm25", "bm25-icma", "bm25-es:<url>", "random"),
}
DEFAULT_RETRIEVER = {"mol2cap": "morgan", "cap2mol": "bm25"}
FORMAT_VERSION = 1
_ES_INDEX_PREFIX = "ray-icma-contexts"


class ContextsFileError(ValueError):
    """A contexts file is missing, malformed, or mixes tasks/retrievers."""


@dataclass(frozen=True)
class RetrieverSpec:
    """A parsed retriever name: ``kind`` plus the argument after ``:`` (path or URL)."""

    name: str
    kind: str
    arg: str | None = None


def parse_retriever(task: str, retriever: str | None = None) -> RetrieverSpec:
    """Check a task/retriever pair and split ``gnn:<path>`` / ``bm25-es:<url>``.

    Raises:
        ValueError: unknown task, or a retriever the task does not support (the message lists
            the choices), or a ``gnn:``/``bm25-es:`` without its argument.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    name = (retriever or DEFAULT_RETRIEVER[task]).strip()
    kind, _, arg = name.partition(":")
    choices = ", ".join(RETRIEVERS[task])
    allowed = {choice.partition(":")[0] for choice in RETRIEVERS[task]}
    if kind not in allowed:
        raise ValueError(f"retriever {name!r} does not serve task {task}; choose one of: {choices}")
    needs_arg = {"gnn": "a checkpoint path, e.g. gnn:weights/gin_contextpred.pth", "bm25-es": "a URL, e.g. bm25-es:http://127.0.0.1:9200"}
    if kind in needs_arg and not arg:
        raise ValueError(f"retriever {kind!r} needs {needs_arg[kind]}")
    if kind not in needs_arg and arg:
        raise ValueError(f"retriever {kind!r} takes no ':' argument (got {name!r}); choose one of: {choices}")
    return RetrieverSpec(name=name, kind=kind, arg=arg or None)


class ContextTable(Mapping):
    """query id -> (neighbour ids best first, scores), for one task and retriever.

    Attributes:
        task: ``"mol2cap"`` or ``"cap2mol"``.
        retriever: the retriever name that produced it.
        meta: the sidecar metadata (k, sources, counts, invalid query ids, ...).
    """

    def __init__(self, rows: Mapping[str, tuple[list[str], list[float]]], *, task: str, retriever: str, meta: dict | None = None):
        self._rows = dict(rows)
        self.task = task
        self.retriever = retriever
        self.meta = dict(meta or {})

    def __getitem__(self, query_id: str) -> tuple[list[str], list[float]]:
        try:
            return self._rows[query_id]
        except KeyError:
            raise KeyError(f"query {query_id!r} is not in this contexts table ({len(self)} queries, task {self.task})") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __repr__(self) -> str:
        return f"ContextTable(task={self.task!r}, retriever={self.retriever!r}, queries={len(self)})"

    @property
    def invalid_query_ids(self) -> list[str]:
        """Queries that got no neighbours because their SMILES could not be used."""
        return list(self.meta.get("invalid_query_ids", []))

    def examples(self, query_id: str, lookup: Mapping[str, tuple[str, str]], n: int, *, seed: int = 0, **select_kwargs: Any):
        """The query's in-context examples in prompt order, exactly as training and generation
        rows get them for the same run ``seed`` (:func:`retrieval.context.build_context` keyed by
        the query id)."""
        from retrieval.context import build_context

        ids, scores = self[query_id]
        return build_context(ids, scores, lookup, n, query_id=query_id, seed=seed, **select_kwargs)

    def write(self, path: str | PathLike[str]) -> Path:
        """Write the JSONL file and its ``.meta.json`` sidecar; returns the JSONL path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            for query_id, (ids, scores) in self._rows.items():
                line = {"query_id": query_id, "task": self.task, "retriever": self.retriever, "neighbors": list(ids), "scores": [round(float(s), 6) for s in scores]}
                f.write(json.dumps(line, ensure_ascii=False) + "\n")
        tmp.replace(path)
        meta = {"format": "ray-icma-contexts", "format_version": FORMAT_VERSION, "task": self.task, "retriever": self.retriever, **self.meta}
        meta_path(path).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path


def meta_path(path: str | PathLike[str]) -> Path:
    """``<file>.meta.json`` next to a contexts file."""
    path = Path(path)
    return path.with_name(path.name + ".meta.json")


def read_contexts(path: str | PathLike[str]) -> ContextTable:
    """Load a contexts file written by :func:`build_contexts` (the sidecar is optional).

    Raises:
        ContextsFileError: missing file, a line that is not a valid record (message gives
            ``file:line``), mixed tasks/retrievers, or a duplicate query id.
    """
    path = Path(path)
    if not path.is_file():
        raise ContextsFileError(f"contexts file {path} not found; create it with `ray-icma contexts build`")
    rows: dict[str, tuple[list[str], list[float]]] = {}
    task = retriever = None
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ContextsFileError(f"{where}: not JSON ({exc.msg})") from None
            if not isinstance(record, dict) or not {"query_id", "task", "retriever", "neighbors", "scores"} <= record.keys():
                raise ContextsFileError(f"{where}: expected an object with query_id, task, retriever, neighbors, scores")
            neighbors, scores = record["neighbors"], record["scores"]
            if not isinstance(neighbors, list) or not isinstance(scores, list) or len(neighbors) != len(scores):
                raise ContextsFileError(f"{where}: neighbors and scores must be lists of the same length")
            if task is None:
                task, retriever = record["task"], record["retriever"]
            elif (record["task"], record["retriever"]) != (task, retriever):
                raise ContextsFileError(
                    f"{where}: task/retriever {record['task']}/{record['retriever']} differs from the first line's {task}/{retriever}"
                )
            query_id = str(record["query_id"])
            if query_id in rows:
                raise ContextsFileError(f"{where}: query {query_id} appears twice")
            rows[query_id] = ([str(x) for x in neighbors], [float(s) for s in scores])
    meta: dict = {}
    sidecar = meta_path(path)
    if sidecar.is_file():
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ContextsFileError(f"{sidecar}: not JSON ({exc.msg})") from None
        task = task or meta.get("task")
        retriever = retriever or meta.get("retriever")
    if task is None:
        raise ContextsFileError(f"{path} is empty and has no {sidecar.name}; rebuild it with `ray-icma contexts build`")
    for key in ("format", "format_version", "task", "retriever"):
        meta.pop(key, None)
    return ContextTable(rows, task=task, retriever=retriever, meta=meta)


# -- building -------------------------------------------------------------------------------
#: contexts retriever kind -> the factory's text backend (cap2mol)
_TEXT_BACKEND = {"bm25": "bm25s", "bm25-icma": "icma", "bm25-es": "elasticsearch", "random": "random"}


def _search(spec: RetrieverSpec, task: str, queries: list[MoleculeRecord], pool: list[MoleculeRecord], k: int, seed: int,
            batch_size: int, index_dir: str | PathLike[str] | None):
    """Top-k pool positions for every query -> (indices [nq, k], scores [nq, k], usable bool [nq]),
    through the one retriever factory (:mod:`retrieval.retrievers`)."""
    from retrieval.retrievers import build_molecule_retriever, build_text_retriever

    pool_ids = [r.cid for r in pool]
    if task == "mol2cap":
        retriever = build_molecule_retriever(
            spec.kind, [r.smiles for r in pool], pool_ids, checkpoint=spec.arg, index_dir=index_dir, seed=seed, batch_size=batch_size
        )
        hits, usable = retriever.search([r.smiles for r in queries], k)
        return hits.indices, hits.scores, usable
    backend = _TEXT_BACKEND[spec.kind]
    kwargs: dict[str, Any] = {"show_progress": False} if backend in ("bm25s", "elasticsearch") else {}
    if backend == "elasticsearch":  # a throw-away index on the server, deleted when done
        kwargs.update(url=spec.arg, index_name=f"{_ES_INDEX_PREFIX}-{uuid.uuid4().hex[:12]}")
    retriever = build_text_retriever(backend, [r.text for r in pool], pool_ids, seed=seed, **kwargs)
    try:
        hits, usable = retriever.search([r.text for r in queries], k)
    finally:
        retriever.delete() if backend == "elasticsearch" else retriever.close()
    return hits.indices, hits.scores, usable


def build_contexts(
    queries: Sequence[MoleculeRecord],
    pool: Sequence[MoleculeRecord],
    task: str,
    retriever: str | None = None,
    k: int = 10,
    out_path: str | PathLike[str] | None = None,
    *,
    seed: int = 0,
    batch_size: int = 256,
    index_dir: str | PathLike[str] | None = None,
    queries_source: str | None = None,
    pool_source: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> ContextTable:
    """Retrieve the top-``k`` pool items for every query and (optionally) write them.

    Args:
        queries: the records that need examples (e.g. the test split).
        pool: where examples come from (the training split). May be ``queries`` itself.
        task: ``"mol2cap"`` (match molecules) or ``"cap2mol"`` (match captions).
        retriever: see the module docstring; default ``morgan`` / ``bm25``.
        k: neighbours kept per query (ICMA: 10).
        out_path: JSONL file to write (plus ``.meta.json``); nothing is written when None.
        seed: seed of the ``random`` retriever.
        batch_size: molecules per GNN forward pass.
        index_dir: ``gnn:`` only: a FAISS index already built over ``pool`` (the embedding
            job's output, ``ray-icma index build``); the pool is then not re-encoded.
        queries_source, pool_source: where the records came from, for the meta (default: the
            records' ``source`` fields).
        progress: called with a short message at each stage (CLI progress display).

    Returns:
        The :class:`ContextTable`, in query order.

    Raises:
        ValueError: bad task/retriever/k, empty pool, or duplicate query ids.
    """
    spec = parse_retriever(task, retriever)
    if index_dir is not None and spec.kind != "gnn":
        raise ValueError(f"index_dir is a GNN FAISS index; retriever {spec.name!r} does not use one")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    queries, pool = list(queries), list(pool)
    if not pool:
        raise ValueError("the pool is empty: examples need at least one pool record")
    duplicates = [cid for cid, count in Counter(r.cid for r in queries).items() if count > 1]
    if duplicates:
        raise ValueError(f"duplicate query ids (first: {duplicates[0]!r}); each query needs a unique CID")
    say = progress or (lambda message: None)
    started = time.perf_counter()

    # The query's own CID must never come back: fetch as many extra hits as the pool holds
    # copies of any query's CID, then drop them.
    pool_cid_counts = Counter(r.cid for r in pool)
    extra = max((pool_cid_counts.get(r.cid, 0) for r in queries), default=0)
    k_search = min(k + extra, len(pool))
    say(f"{task}: {spec.name} over {len(pool)} pool records for {len(queries)} queries")
    indices, scores, usable = _search(spec, task, queries, pool, k_search, seed, batch_size, index_dir)

    pool_cids = np.array([r.cid for r in pool], dtype=object)
    rows: dict[str, tuple[list[str], list[float]]] = {}
    empty = 0
    for i, query in enumerate(queries):
        row_idx, row_scores = indices[i], scores[i]
        keep = row_idx >= 0
        ids = pool_cids[row_idx[keep]]
        kept_scores = row_scores[keep]
        not_self = ids != query.cid
        ids, kept_scores = ids[not_self][:k], kept_scores[not_self][:k]
        rows[query.cid] = (ids.tolist(), kept_scores.astype(float).tolist())
        empty += not len(ids)

    invalid_ids = [q.cid for q, ok in zip(queries, usable) if not ok]
    meta = {
        "k": k,
        "queries": queries_source or _sources(queries),
        "pool": pool_source or _sources(pool),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "n_queries": len(queries),
        "n_pool": len(pool),
        "n_invalid_queries": len(invalid_ids),
        "invalid_query_ids": invalid_ids,
        "n_empty": empty,
        "n_queries_in_pool": sum(1 for r in queries if r.cid in pool_cid_counts),
        "index_dir": str(index_dir) if index_dir is not None else None,
        "seconds": round(time.perf_counter() - started, 3),
    }
    table = ContextTable(rows, task=task, retriever=spec.name, meta=meta)
    if out_path is not None:
        table.write(out_path)
        say(f"wrote {out_path}")
    return table


def _sources(records: Sequence[MoleculeRecord]) -> str:
    names = sorted({r.source for r in records if r.source})
    return ",".join(names) if names else "<in-memory records>"
