"""Cosine-similarity search over molecule embeddings with FAISS (exact, IVF or HNSW).

Vectors are L2-normalised on the way in, so inner product equals cosine; a zero vector (an
invalid molecule) stays zero and scores 0 against everything instead of producing NaN.
``add`` appends to the existing structure (IVF keeps its trained centroids, HNSW links the
new nodes in), so a grown corpus needs no rebuild.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from retrieval._optional import require
from retrieval.indexes._ids import IdTable, check_exclude, drop_excluded
from retrieval.types import Hits

logger = logging.getLogger(__name__)

FAISS_KINDS = ("flat", "ivf", "hnsw")
DEVICES = ("auto", "cpu", "gpu")
_INDEX_FILE, _IDS_FILE, _META_FILE = "index.faiss", "ids.json", "faiss_meta.json"


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation to float32; all-zero rows stay zero (no division by zero)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"expected a 2-D array [n, dim], got shape {vectors.shape}")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def faiss_has_gpu() -> bool:
    """True when the installed faiss was built with GPU support and sees a GPU."""
    faiss = require("faiss", "cpu")
    try:
        return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0
    except Exception:  # noqa: BLE001 - CPU builds may lack get_num_gpus
        return False


class FaissIndex:
    """A FAISS inner-product index over normalised vectors, with string ids.

    Args:
        dim: vector width (300 for the pretrained GNNs).
        kind: ``"flat"`` (exact), ``"ivf"`` (inverted lists; trained on the first ``add``,
            which needs at least ``nlist`` vectors) or ``"hnsw"`` (graph, no training).
        nlist: IVF cells.
        nprobe: IVF cells scanned per query (recall vs speed).
        M: HNSW neighbours per node.
        ef_search: HNSW candidate list size at query time (recall vs speed).
        device: ``"auto"`` uses a GPU when faiss has GPU support and one is present
            (flat and IVF only; HNSW is CPU-only in faiss), ``"cpu"`` or ``"gpu"``.
        seed: seed of IVF's k-means.
    """

    def __init__(
        self,
        dim: int,
        kind: str = "flat",
        *,
        nlist: int = 100,
        nprobe: int = 10,
        M: int = 32,
        ef_search: int = 64,
        device: str = "auto",
        seed: int = 0,
    ) -> None:
        self.faiss = require("faiss", "cpu")
        if kind not in FAISS_KINDS:
            raise ValueError(f"kind must be one of {FAISS_KINDS}, got {kind!r}")
        if device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
        if dim < 1:
            raise ValueError(f"dim must be positive, got {dim}")
        self.dim, self.kind = int(dim), kind
        self.params = {"nlist": int(nlist), "nprobe": int(nprobe), "M": int(M), "ef_search": int(ef_search), "seed": int(seed)}
        self.table = IdTable()
        self._index = self._new_cpu_index()
        self.device = self._pick_device(device)
        self._gpu_index = None

    # -- construction ----------------------------------------------------------------------
    def _new_cpu_index(self):
        faiss, p = self.faiss, self.params
        if self.kind == "flat":
            return faiss.IndexFlatIP(self.dim)
        if self.kind == "ivf":
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(self.dim), self.dim, p["nlist"], faiss.METRIC_INNER_PRODUCT)
            index.cp.seed = p["seed"]
            index.nprobe = p["nprobe"]
            return index
        index = faiss.IndexHNSWFlat(self.dim, p["M"], faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = p["ef_search"]
        return index

    def _pick_device(self, device: str) -> str:
        gpu_ok = faiss_has_gpu() and self.kind != "hnsw"
        if device == "gpu" and not gpu_ok:
            raise RuntimeError(
                "device='gpu' needs a GPU build of faiss (pip install faiss-gpu-cu12) and a visible GPU"
                + ("; HNSW has no GPU implementation" if self.kind == "hnsw" else "")
            )
        return "gpu" if device == "gpu" or (device == "auto" and gpu_ok) else "cpu"

    def _searcher(self):
        """The index queries run on: a GPU copy (refreshed after adds) or the CPU index."""
        if self.device != "gpu":
            return self._index
        if self._gpu_index is None:
            self._resources = getattr(self, "_resources", None) or self.faiss.StandardGpuResources()
            self._gpu_index = self.faiss.index_cpu_to_gpu(self._resources, 0, self._index)
        return self._gpu_index

    # -- public API ------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._index.ntotal)

    @property
    def ids(self) -> list[str]:
        return self.table.ids

    def add(self, vectors: np.ndarray, ids: Sequence | None = None) -> "FaissIndex":
        """Append vectors (normalised here) with their unique ids; trains IVF on first use.

        Raises:
            ValueError: wrong width, duplicate ids, or too few vectors to train IVF.
        """
        vectors = normalize(vectors)
        if vectors.shape[1] != self.dim:
            raise ValueError(f"vectors have width {vectors.shape[1]}, the index was made for {self.dim}")
        if self.kind == "ivf" and not self._index.is_trained:
            if len(vectors) < self.params["nlist"]:
                raise ValueError(
                    f"IVF with nlist={self.params['nlist']} needs at least that many vectors in its first add "
                    f"(got {len(vectors)}); lower nlist (about sqrt(n)) or use kind='flat'"
                )
            self._index.train(vectors)
        self.table.extend(ids, len(vectors))
        self._index.add(vectors)
        self._gpu_index = None
        return self

    def build(self, vectors: np.ndarray, ids: Sequence | None = None) -> "FaissIndex":
        """Index a whole corpus, replacing anything indexed before (IVF is re-trained)."""
        self.table, self._index, self._gpu_index = IdTable(), self._new_cpu_index(), None
        return self.add(vectors, ids)

    def search(self, vectors: np.ndarray, k: int = 10, exclude_ids: Sequence | None = None) -> Hits:
        """Top-``k`` cosine neighbours of each query vector.

        Args:
            vectors: float [n_queries, dim]; normalised here.
            k: hits per query.
            exclude_ids: one id (or None) per query whose hit is dropped, e.g. the query
                itself when the queries are the indexed pool; ``k + 1`` are fetched for that.

        Returns:
            :class:`Hits` with positions into :attr:`ids` (-1 / -inf padding).
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        queries = normalize(vectors)
        if queries.shape[1] != self.dim:
            raise ValueError(f"query width {queries.shape[1]} != index width {self.dim}")
        exclude = check_exclude(exclude_ids, len(queries))
        if len(self) == 0 or len(queries) == 0:
            return Hits.empty(len(queries), k)
        fetch = min(k + (exclude is not None), len(self))
        scores, indices = self._searcher().search(queries, fetch)
        return drop_excluded(indices.astype(np.int64), scores.astype(np.float32), k, self.table, exclude)

    # -- persistence -----------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write ``index.faiss``, ``ids.json`` and ``faiss_meta.json`` into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.faiss.write_index(self._index, str(directory / _INDEX_FILE))
        (directory / _IDS_FILE).write_text(json.dumps(self.table.ids))
        meta = {"dim": self.dim, "kind": self.kind, "metric": "cosine", "ntotal": len(self), **self.params}
        (directory / _META_FILE).write_text(json.dumps(meta, indent=2))
        return directory

    @classmethod
    def load(cls, directory: str | Path, *, device: str = "auto") -> "FaissIndex":
        """Read an index written by :meth:`save`.

        Raises:
            FileNotFoundError: a file is missing (names which and where).
            ValueError: ids and vectors disagree in count.
        """
        directory = Path(directory)
        for name in (_INDEX_FILE, _IDS_FILE, _META_FILE):
            if not (directory / name).is_file():
                raise FileNotFoundError(f"{directory / name} is missing; is {directory} a FaissIndex.save() directory?")
        meta = json.loads((directory / _META_FILE).read_text())
        params = {k: meta[k] for k in ("nlist", "nprobe", "M", "ef_search", "seed") if k in meta}
        index = cls(meta["dim"], meta["kind"], device=device, **params)
        index._index = index.faiss.read_index(str(directory / _INDEX_FILE))
        if index.kind == "ivf":
            index._index.nprobe = index.params["nprobe"]
        if index.kind == "hnsw":
            index._index.hnsw.efSearch = index.params["ef_search"]
        ids = json.loads((directory / _IDS_FILE).read_text())
        if len(ids) != index._index.ntotal:
            raise ValueError(f"{directory}: {len(ids)} ids but {index._index.ntotal} vectors; the files are out of sync")
        index.table.extend(ids, len(ids))
        return index
