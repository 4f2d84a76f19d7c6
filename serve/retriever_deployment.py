"""The Retriever deployment: the pool plus its two indexes (caption BM25 for cap2mol, molecule
similarity for mol2cap), swapped atomically when a new user_config arrives.

It only wires `retrieval` indexes to the pool records; scoring lives in the library.
"""
from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from serve.configs import RetrieverConfig
from serve.errors import BadRequest, StageUnavailable

__all__ = ["Retriever"]

log = logging.getLogger("ray.serve")

# A text backend that failed (Elasticsearch down) is retried at most this often, so a dead
# cluster costs each cap2mol request one fast failure instead of one connect timeout.
_TEXT_RETRY_INTERVAL_S = 2.0


@dataclass
class _IndexState:
    """Everything one index version needs; replaced as a whole, never mutated in place."""

    version: str
    config: RetrieverConfig
    records: list  # MoleculeRecord, pool order = index positions
    molecule_index: Any
    encoder: Any = None  # GNNEncoder when kind == "gnn"
    text_index: Any = None
    text_error: str | None = None
    text_last_try: float = 0.0
    text_lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: int = 0  # requests running on this version (search/status), guarded by flight_lock
    retired: bool = False  # swapped out: its text client closes when the last of them ends
    closed: bool = False  # its text client is closed: no request may start on this version
    flight_lock: threading.Lock = field(default_factory=threading.Lock)  # not text_lock: held while ES is attached

    def acquire(self) -> bool:
        """Hold this version for one request; False once it is closed (the caller takes the current version)."""
        with self.flight_lock:
            if self.closed:
                return False
            self.in_flight += 1
            return True

    def release(self) -> None:
        self._update(in_flight=-1)

    def retire(self) -> None:
        """Swapped out: close the text client now if no request holds this version, else when the last one ends."""
        self._update(retire=True)

    def _update(self, in_flight: int = 0, retire: bool = False) -> None:
        """Apply a release or a retirement; the one update that leaves the version retired and idle closes it."""
        with self.flight_lock:
            self.in_flight += in_flight
            self.retired = self.retired or retire
            close = self.retired and self.in_flight == 0 and not self.closed
            self.closed = self.closed or close
        if close:
            self._close_text()

    def _close_text(self) -> None:
        index = self.text_index
        if index is not None and hasattr(index, "close"):
            try:
                index.close()
            except Exception:  # noqa: BLE001 - closing an old client must not fail a request or a swap
                pass


def _load_pool(cfg: RetrieverConfig) -> list:
    from ray_icma.data import load_records

    loaded = load_records(cfg.pool.path)
    records = list(getattr(loaded, "records", loaded))
    if cfg.pool.limit:
        records = records[: cfg.pool.limit]
    if not records:
        raise ValueError(f"retriever.pool.path {cfg.pool.path} holds no usable records")
    return records


def _build_molecule_index(cfg: RetrieverConfig, records: list) -> tuple[Any, Any]:
    """The molecule retriever, from the one factory (retrieval.retrievers), as the contexts job builds it."""
    from retrieval.retrievers import build_molecule_retriever

    mol = cfg.molecule
    retriever = build_molecule_retriever(
        mol.kind, [r.smiles for r in records], [r.cid for r in records], checkpoint=mol.encoder_path, index_dir=mol.faiss_dir
    )
    return retriever, retriever.encoder


def _build_text_index(cfg: RetrieverConfig, records: list) -> Any:
    """The caption retriever, from the one factory (retrieval.retrievers)."""
    from retrieval.retrievers import build_text_retriever

    text = cfg.text
    kwargs: dict[str, Any] = {}
    if text.backend == "elasticsearch":
        kwargs.update(
            url=text.url,
            index_name=text.index_name,
            request_timeout=text.request_timeout_s,
            max_retries=text.max_retries,
            backoff_s=0.1,
            connect_timeout=min(text.request_timeout_s, 5.0),
        )
        # Shared by every replica: attach to the alias, or one replica builds it under a lock (serve/shared_index.py).
        from retrieval.bm25 import build_bm25_index
        from retrieval.retrievers import TextRetriever
        from serve.shared_index import attach_or_build

        index = build_bm25_index("elasticsearch", tokenizer=text.tokenizer, **kwargs)
        try:
            source = attach_or_build(index, cfg, records)
        except BaseException:
            index.close()
            raise
        retriever = TextRetriever("elasticsearch", index)
        retriever.shared_source = source  # type: ignore[attr-defined]
        return retriever
    return build_text_retriever(text.backend, [r.text for r in records], [r.cid for r in records], tokenizer=text.tokenizer, **kwargs)


class Retriever:
    """Pool + indexes of one version. `search` answers both tasks; `reconfigure` swaps versions.

    A text backend that cannot be reached (Elasticsearch down) does not stop the replica: mol2cap
    keeps working, cap2mol raises StageUnavailable (-> 503) and the backend is retried every
    few seconds, so the route heals by itself when the cluster comes back.
    """

    def __init__(self, config: dict | None = None):
        self._state: _IndexState | None = None
        if config is not None:
            self.reconfigure(config)

    @classmethod
    def get_deployment_options(cls, cfg: RetrieverConfig) -> dict[str, Any]:
        """Size the deployment from its config: an embedded BM25/fingerprint index is CPU-bound per
        request, ES-backed search mostly waits on the network, a GNN encoder wants more memory."""
        pool_rows = cfg.pool.limit or 0
        opts: dict[str, Any] = {"ray_actor_options": {"num_cpus": 0.5}}
        if cfg.text.backend == "elasticsearch":
            # Requests wait on ES round trips: many can be in flight per replica without using CPU.
            opts["max_ongoing_requests"] = 128
        if cfg.molecule.kind == "gnn":
            opts["ray_actor_options"] = {"num_cpus": 1, "memory": 2 * 1024**3}
        elif pool_rows > 100_000:
            opts["ray_actor_options"] = {"num_cpus": 1, "memory": 4 * 1024**3}
        return opts

    # -- lifecycle -------------------------------------------------------------------------
    def reconfigure(self, config: dict) -> None:
        """Build the new version completely, then swap it in with one assignment: requests in
        flight finish on the old indexes, later ones see the new ones; nothing is dropped."""
        cfg = RetrieverConfig.model_validate({**config, "placement": "deployment"})
        started = time.perf_counter()
        records = _load_pool(cfg)
        molecule_index, encoder = _build_molecule_index(cfg, records)
        state = _IndexState(cfg.index_version, cfg, records, molecule_index, encoder)
        self._try_text(state, force=True)
        old = self._state
        self._state = state
        log.info(
            "retriever index %s ready: %d pool rows, molecule=%s, text=%s%s in %.1fs",
            cfg.index_version,
            len(records),
            cfg.molecule.kind,
            cfg.text.backend,
            f" (unavailable: {state.text_error})" if state.text_error else "",
            time.perf_counter() - started,
        )
        if old is not None:
            old.retire()  # its client stays open for the requests still running on it

    def _try_text(self, state: _IndexState, force: bool = False) -> Any:
        """The text index, (re)building it when missing and the retry interval has passed."""
        if state.text_index is not None:
            return state.text_index
        with state.text_lock:
            now = time.monotonic()
            if state.text_index is None and (force or now - state.text_last_try >= _TEXT_RETRY_INTERVAL_S):
                state.text_last_try = now
                try:
                    state.text_index = _build_text_index(state.config, state.records)
                    state.text_error = None
                except Exception as exc:  # noqa: BLE001 - any backend failure: report, retry later
                    state.text_error = _describe(state.config, exc)
                    log.warning("text index unavailable: %s", state.text_error)
        return state.text_index

    def _current(self) -> _IndexState:
        if self._state is None:
            raise StageUnavailable("the retriever has no index loaded yet")
        return self._state

    @contextmanager
    def _held(self):
        """The current version, held for one request: a swap mid-request leaves its text client open until the
        request ends (a version closed between reading and holding it is skipped for the new one)."""
        while True:
            state = self._current()
            if state.acquire():
                break
        try:
            yield state
        finally:
            state.release()

    # -- requests --------------------------------------------------------------------------
    def search(self, task: str, queries: list[str], k: int | None = None) -> dict[str, Any]:
        """Top-k pool examples for each query.

        Returns:
            ``{"index_version", "candidates": [[{position, score, cid, smiles, text}, ...], ...]}``.

        Raises:
            BadRequest: unknown task or a query the molecule encoder cannot featurize.
            StageUnavailable: the text backend is down (cap2mol).
        """
        with self._held() as state:
            k = min(k or state.config.candidate_k, len(state.records))
            if task == "mol2cap":
                hits = self._search_molecules(state, queries, k)
            elif task == "cap2mol":
                hits = self._search_text(state, queries, k)
            else:
                raise BadRequest(f"unknown task {task!r}; choose mol2cap or cap2mol")
        out = []
        for i in range(len(queries)):
            row = []
            for pos, score in hits.row(i):
                rec = state.records[pos]
                row.append({"position": pos, "score": score, "cid": rec.cid, "smiles": rec.smiles, "text": rec.text})
            out.append(row)
        return {"index_version": state.version, "candidates": out}

    def _search_molecules(self, state: _IndexState, queries: list[str], k: int):
        hits, usable = state.molecule_index.search(queries, k)
        bad = [q for q, ok in zip(queries, usable) if not ok]
        if bad:
            raise BadRequest(f"the {state.config.molecule.kind} retriever cannot featurize SMILES {bad[:3]}")
        return hits

    def _search_text(self, state: _IndexState, queries: list[str], k: int):
        from retrieval.bm25 import BM25BackendUnavailable

        index = self._try_text(state)
        if index is None:
            raise StageUnavailable(f"caption retrieval is unavailable: {state.text_error}")
        try:
            return index.search(queries, k)[0]
        except BM25BackendUnavailable as exc:
            # Drop the client so the next request (after the retry interval) rebuilds it.
            with state.text_lock:
                state.text_index, state.text_error = None, _describe(state.config, exc)
                state.text_last_try = time.monotonic()
            raise StageUnavailable(f"caption retrieval is unavailable: {state.text_error}") from None

    def status(self) -> dict[str, Any]:
        """What /readyz reports: loaded version, pool size, whether each index answers."""
        if self._state is None:
            return {"ready": False, "reason": "no index loaded"}
        with self._held() as state:
            text_ok = self._try_text(state) is not None
            if text_ok and state.config.text.backend == "elasticsearch":
                text_ok = _es_reachable(state.text_index.index)
        return {
            "ready": text_ok,
            "index_version": state.version,
            "pool_size": len(state.records),
            "molecule_index": state.config.molecule.kind,
            "text_backend": state.config.text.backend,
            "text_ready": text_ok,
            "text_source": getattr(state.text_index, "shared_source", None),  # ES: "attached" / "built" here
            "text_error": None if text_ok else (state.text_error or "Elasticsearch did not answer a health check"),
        }

    def check_health(self) -> None:
        """Serve's health check: only a replica without any index is unhealthy (a down ES is not the
        replica's fault, and restarting it would also take mol2cap down)."""
        if self._state is None:
            raise RuntimeError("retriever has no index loaded")


def _describe(cfg: RetrieverConfig, exc: BaseException) -> str:
    where = f" at {cfg.text.url}" if cfg.text.backend == "elasticsearch" else ""
    return f"{cfg.text.backend}{where}: {type(exc).__name__}: {str(exc)[:300]}"


def _es_reachable(index: Any) -> bool:
    """A 2-second cluster-health probe through the index's Elasticsearch client (no retries)."""
    client = getattr(index, "client", None)
    if client is None:
        return True
    try:
        health = client.options(request_timeout=2, max_retries=0).cluster.health()
        return health.get("status") in ("green", "yellow")
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False
