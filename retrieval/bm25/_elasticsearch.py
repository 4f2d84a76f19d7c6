"""Elasticsearch backend: a server-side index behind an alias, so rebuilds swap in without downtime."""
from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from tqdm.auto import tqdm

from retrieval._optional import require
from retrieval.bm25._base import BM25Index
from retrieval.bm25._errors import BM25BackendUnavailable, IndexNotFound
from retrieval.types import Hits

__all__ = ["ElasticsearchIndex", "ES_INDEX_SETTINGS_FILE", "es_index_body"]

ES_INDEX_SETTINGS_FILE = Path(__file__).with_name("es_index_settings.json")  # the one copy of settings + mapping
_INVALID_INDEX_NAME = re.compile(r'[\\/*?"<>| ,#:A-Z]')
_RETRY_STATUSES = (429, 502, 503, 504)  # the client's own default set, stated here because bulk leaves out 429
_BACKOFF_CAP_S = 30.0
T = TypeVar("T")


class _IndexGone(Exception):
    """The concrete index a batch was sent to disappeared (deleted by a rebuild), or may have: a query that reaches
    an index while a rebuild deletes it fails with ``no_shard_available_action_exception`` instead of a 404."""

    def __init__(self, error: Any = None):
        super().__init__(error)
        self.error = error  # set when the index may still exist (the shard failure it got)


def es_index_body(k1: float = 1.2, b: float = 0.75, number_of_shards: int = 1, number_of_replicas: int = 0) -> dict:
    """Settings and mapping for a captions index, read from ``es_index_settings.json``.

    ``text`` uses the ``standard`` analyzer (no stop words, max token length 255) and a BM25
    similarity with the given ``k1`` and ``b``; ``id`` is a keyword and ``position`` the row
    number that ``search`` returns.
    """
    body = json.loads(ES_INDEX_SETTINGS_FILE.read_text())
    settings = body["settings"]
    settings["number_of_shards"] = int(number_of_shards)
    settings["number_of_replicas"] = int(number_of_replicas)
    settings["similarity"]["caption_bm25"].update(k1=float(k1), b=float(b))
    return body


class ElasticsearchIndex(BM25Index):
    """BM25 on an Elasticsearch server (official client, 8.19-9.x).

    ``index()`` builds ``NAME-<UTC timestamp>``, bulk-loads it, then atomically moves the alias
    ``NAME`` to it and deletes the index the alias pointed to before: searches keep working
    during a rebuild. ``search()`` sends ``match`` queries through ``_msearch`` in chunks.
    Retries are the official client's, in one layer: ``max_retries`` per request on connection
    errors, timeouts and 429/502/503/504 answers (``retry_on_status``), with its jittered
    exponential back-off (``retry_backoff_base=backoff_s``, capped at 30 s). Bulk requests leave
    429 to ``helpers.streaming_bulk``, which also retries the documents a 200 answer rejected
    with 429 (a per-document retry the transport cannot see). When retries run out, a dead server
    raises ``BM25BackendUnavailable`` with the URL and what to do.

    Constructing the object checks the server with ``cluster.health()`` (``GET /`` is not
    served by every deployment) and raises ``BM25BackendUnavailable`` quickly if it is not
    reachable. An existing alias can be searched without calling ``index()``.

    Args:
        url: Server URL, e.g. ``http://127.0.0.1:9200``.
        index_name: Alias that searches go to (lower case, no ``\\/*?"<>| ,#:``).
        tokenizer: Must be ``"standard"``; text is analyzed on the server.
        k1, b: BM25 parameters written to the index settings.
        request_timeout: Seconds per request.
        max_retries: Client retries per request (so at most ``max_retries + 1`` attempts).
        backoff_s: Base of the client's back-off between retries; doubles each retry, capped at 30 s.
        connect_timeout: Seconds for the health check at construction.
        number_of_shards, number_of_replicas: Index layout (1 and 0: BM25 statistics are
            per shard, so one shard ranks exactly like the embedded backends).
        bulk_chunk_size: Documents per bulk request.
        msearch_chunk_size: Queries per ``_msearch`` request.
        show_progress: Progress bar while bulk-loading.
        client_kwargs: Extra ``Elasticsearch(...)`` arguments (``api_key``, ``basic_auth``, ``ca_certs``...).

    Raises:
        BM25BackendUnavailable: The server does not answer.
        ValueError: Bad ``index_name`` or ``tokenizer``.
    """

    backend = "elasticsearch"

    def __init__(self, *, url: str = "http://127.0.0.1:9200", index_name: str = "captions", tokenizer: str = "standard",
                 k1: float = 1.2, b: float = 0.75, request_timeout: float = 30.0, max_retries: int = 3,
                 backoff_s: float = 0.5, connect_timeout: float = 5.0, number_of_shards: int = 1,
                 number_of_replicas: int = 0, bulk_chunk_size: int = 500, msearch_chunk_size: int = 200,
                 show_progress: bool = True, client_kwargs: dict[str, Any] | None = None):
        super().__init__(tokenizer=tokenizer, k1=k1, b=b)
        if tokenizer != "standard":
            raise ValueError(f"the elasticsearch backend analyzes text on the server with the standard analyzer; "
                             f"tokenizer={tokenizer!r} is only available with the bm25s and rank_bm25 backends")
        if not index_name or _INVALID_INDEX_NAME.search(index_name) or index_name[0] in "-_+.":
            raise ValueError(f"invalid Elasticsearch index name {index_name!r}: use lower case letters, digits, '-' or '_', "
                             f"not starting with '-', '_', '+' or '.'")
        self._es = require("elasticsearch", "es")
        self._helpers = require("elasticsearch.helpers", "es")
        self.url = url
        self.index_name = index_name
        self.max_retries = int(max_retries)
        self.backoff_s = float(backoff_s)
        self.number_of_shards = number_of_shards
        self.number_of_replicas = number_of_replicas
        self.bulk_chunk_size = bulk_chunk_size
        self.msearch_chunk_size = msearch_chunk_size
        self.show_progress = show_progress
        self._ids_known = False
        self._ids_index = ""  # concrete index the cached ids belong to
        self.client = self._es.Elasticsearch(
            url, request_timeout=request_timeout, max_retries=self.max_retries, retry_on_timeout=True,
            retry_on_status=_RETRY_STATUSES, retry_backoff_base=self.backoff_s, retry_backoff_cap=_BACKOFF_CAP_S,
            **{**_env_credentials(), **(client_kwargs or {})})
        self._check_health(connect_timeout)

    # -- connection --------------------------------------------------------------------------------
    def _unavailable(self, exc: BaseException) -> BM25BackendUnavailable:
        return BM25BackendUnavailable(
            f"Elasticsearch at {self.url} is not reachable ({getattr(exc, 'message', None) or exc}). Start the server "
            f"(scripts/start_elasticsearch.sh locally, the ECK cluster in production) or pass the right url=..., "
            f"or use build_bm25_index('bm25s') for the embedded backend.")

    def _check_health(self, timeout: float) -> None:
        client = self.client.options(request_timeout=timeout, max_retries=0)  # a dead server fails in one attempt
        try:
            health = self._call(client.cluster.health)
        except self._es.ApiError as exc:
            raise BM25BackendUnavailable(f"Elasticsearch at {self.url} answered the health check with "
                                         f"{exc.meta.status}: {exc}. Check credentials (client_kwargs) and the URL.") from exc
        if health.get("status") == "red":
            raise BM25BackendUnavailable(f"Elasticsearch at {self.url} reports cluster status red; "
                                         f"wait for it to recover (GET _cluster/health) before using the index.")

    def _call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` (a client call, which retries by itself); a server that stays
        unreachable after those retries becomes ``BM25BackendUnavailable``. No retry here."""
        try:
            return fn(*args, **kwargs)
        except (self._es.ConnectionError, self._es.ConnectionTimeout) as exc:
            raise self._unavailable(exc) from exc

    # -- alias bookkeeping ---------------------------------------------------------------------------
    def _alias_targets(self) -> list[str]:
        """Concrete indices behind the alias (empty if there is no alias)."""
        try:
            return sorted(self._call(self.client.indices.get_alias, name=self.index_name).body)
        except self._es.NotFoundError:
            return []

    def _missing(self) -> IndexNotFound:
        return IndexNotFound(f"no index or alias {self.index_name!r} on Elasticsearch at {self.url}; "
                             f"build it first with index(texts) (or check index_name)")

    def _new_index_name(self) -> str:
        return f"{self.index_name}-{datetime.now(timezone.utc).strftime('%Y%m%d%H%M%S%f')}"

    # -- building ------------------------------------------------------------------------------------
    def index(self, texts: Sequence[str], ids: Sequence[str] | None = None) -> None:
        """Build a fresh timestamped index and swap the alias to it; the previous index is deleted."""
        texts, ids = self._check_corpus(texts, ids)
        old = self._alias_targets()
        if not old and self._call(self.client.indices.exists, index=self.index_name):
            raise ValueError(f"{self.index_name!r} on {self.url} is a concrete index, not an alias, so it cannot be swapped; "
                             f"delete it (DELETE /{self.index_name}) or choose another index_name")
        new = self._new_index_name()
        body = es_index_body(self.k1, self.b, self.number_of_shards, self.number_of_replicas)
        body["settings"]["refresh_interval"] = "-1"  # no refreshes while bulk-loading
        self._call(self.client.indices.create, index=new, settings=body["settings"], mappings=body["mappings"])
        try:
            self._bulk(new, texts, ids, start=0)
            self._call(self.client.indices.put_settings, index=new, settings={"refresh_interval": None})
            self._call(self.client.indices.refresh, index=new)
            actions: list[dict[str, dict[str, Any]]] = [{"remove": {"index": name, "alias": self.index_name}} for name in old]
            actions.append({"add": {"index": new, "alias": self.index_name, "is_write_index": True}})
            self._call(self.client.indices.update_aliases, actions=actions)  # atomic swap
        except BaseException:
            self._delete_quietly(new)  # leave no half-built index behind
            raise
        for name in old:
            self._delete_quietly(name)
        self._ids, self._ids_known, self._ids_index = ids, True, new

    def _delete_quietly(self, index: str) -> None:
        """Delete ``index``; a failure only warns (the alias no longer points there)."""
        try:
            self.client.options(ignore_status=404).indices.delete(index=index)
        except Exception as exc:  # noqa: BLE001 - clean-up must not hide the real outcome
            warnings.warn(f"could not delete Elasticsearch index {index!r} at {self.url}: {exc}; delete it by hand",
                          stacklevel=3)

    def add(self, texts: Sequence[str], ids: Sequence[str] | None = None) -> None:
        """Append documents to the index behind the alias (positions continue); visible after return."""
        if self._resolve() != self._ids_index:
            self._ids_known = False  # rebuilt by someone else since our ids were read
        current = self.ids
        texts, ids = self._check_corpus(texts, ids, start=len(current))
        self._bulk(self.index_name, texts, ids, start=len(current))
        self._call(self.client.indices.refresh, index=self.index_name)
        self._ids = current + ids

    def _bulk(self, index: str, texts: list[str], ids: list[str], start: int) -> None:
        actions = ({"_index": index, "_id": doc_id, "_source": {"id": doc_id, "position": start + i, "text": text}}
                   for i, (doc_id, text) in enumerate(zip(ids, texts)))
        failures = []
        with tqdm(total=len(texts), desc=f"bulk {index}", unit="doc", disable=not self.show_progress) as bar:
            # 429 (whole request or single documents) is the helper's to retry, the rest the client's: one layer each
            client = self.client.options(retry_on_status=tuple(s for s in _RETRY_STATUSES if s != 429))
            stream = self._helpers.streaming_bulk(
                client, actions, chunk_size=self.bulk_chunk_size, max_retries=self.max_retries,
                initial_backoff=self.backoff_s, max_backoff=_BACKOFF_CAP_S, raise_on_error=False)
            try:
                for ok, item in stream:
                    bar.update(1)
                    if not ok:
                        failures.append(item)
            except (self._es.ConnectionError, self._es.ConnectionTimeout) as exc:
                raise self._unavailable(exc) from exc
        if failures:
            raise RuntimeError(f"{len(failures)} of {len(texts)} documents failed to index into {index!r}; "
                               f"first failure: {failures[0]}")

    # -- searching -----------------------------------------------------------------------------------
    def search(self, queries: Sequence[str], k: int = 10) -> Hits:
        """``match`` queries on ``text``, ``_msearch`` in chunks; a query without terms gets a row of -1.

        The alias is resolved once per call, so one batch never mixes two versions of the index
        when a rebuild swaps the alias meanwhile (``_msearch`` resolves it per query); if the index
        is deleted under the batch, the batch is re-run on the alias' new target.

        Raises:
            IndexNotFound: The alias does not exist.
            BM25BackendUnavailable: The server went away and retries did not help.
        """
        queries = self._check_queries(queries, k)
        target = self._resolve()
        for _ in range(3):
            try:
                hits = self._search_target(target, queries, k)
            except _IndexGone as gone:
                latest = self._resolve()
                if latest == target:  # the alias did not move: a real failure of this index
                    if gone.error is not None:
                        raise self._query_failed(target, gone.error) from None
                    raise self._missing() from None
                target = latest
                continue
            if target != self._ids_index:  # rebuilt elsewhere: cached ids belong to another version
                self._ids_known = False
            return hits
        raise self._missing()

    def _resolve(self) -> str:
        """The concrete index behind the alias (the alias itself if it spans several indices)."""
        targets = self._alias_targets()
        if len(targets) == 1:
            return targets[0]
        if targets:
            return self.index_name
        if self._call(self.client.indices.exists, index=self.index_name):
            return self.index_name  # a plain index of that name: searchable, just not swappable
        raise self._missing()

    def _query_failed(self, target: str, error: Any) -> RuntimeError:
        return RuntimeError(f"Elasticsearch at {self.url} failed a query on {target!r}: {error}")

    def _search_target(self, target: str, queries: list[str], k: int) -> Hits:
        hits = Hits.empty(len(queries), k)
        for start in range(0, len(queries), self.msearch_chunk_size):
            chunk = queries[start : start + self.msearch_chunk_size]
            body: list[dict[str, Any]] = []
            for query in chunk:
                body.append({})
                body.append({"size": k, "query": {"match": {"text": query}}, "_source": False,
                             "docvalue_fields": ["position"], "track_total_hits": False})
            try:
                responses = self._call(self.client.msearch, index=target, searches=body)["responses"]
            except self._es.NotFoundError:
                raise _IndexGone() from None
            for offset, response in enumerate(responses):
                if "error" in response or response.get("_shards", {}).get("failed", 0):
                    error = response.get("error") or response["_shards"].get("failures", [{}])[0]
                    if response.get("status") == 404 or "index_not_found" in str(error) or "closed" in str(error):
                        raise _IndexGone()
                    if "no_shard_available_action_exception" in str(error):  # deleted under the query, or a real outage
                        raise _IndexGone(error)
                    raise self._query_failed(target, error)
                for j, hit in enumerate(response["hits"]["hits"]):
                    hits.indices[start + offset, j] = hit["fields"]["position"][0]
                    hits.scores[start + offset, j] = hit["_score"]
        return hits

    # -- introspection and clean-up ------------------------------------------------------------------
    @property
    def ids(self) -> list[str]:
        """Document ids in position order (fetched from the server once if this object did not build it)."""
        if not self._ids_known:
            target = self._resolve()
            pairs = [(hit["fields"]["position"][0], hit["fields"]["id"][0]) for hit in self._helpers.scan(
                self.client, index=target, query={"query": {"match_all": {}}, "_source": False,
                                                  "docvalue_fields": ["position", "id"]})]
            self._ids, self._ids_known, self._ids_index = [doc_id for _, doc_id in sorted(pairs)], True, target
        return self._ids

    def __len__(self) -> int:
        if self._ids_known:
            return len(self._ids)
        try:
            return int(self._call(self.client.count, index=self.index_name)["count"])
        except self._es.NotFoundError as exc:
            raise self._missing() from exc

    def delete_index(self) -> None:
        """Delete the alias and every index behind it (no error if there is none)."""
        for name in self._alias_targets():
            self.client.options(ignore_status=404).indices.delete(index=name)
        self._ids, self._ids_known, self._ids_index = [], False, ""

    def close(self) -> None:
        self.client.close()

    def __repr__(self) -> str:
        return f"ElasticsearchIndex(url={self.url!r}, index_name={self.index_name!r}, k1={self.k1}, b={self.b})"


def _env_credentials() -> dict[str, Any]:
    """Credentials from the environment, as the cluster/ manifests provide them (ECK's Secret):
    RAY_ICMA_ES_USER + RAY_ICMA_ES_PASSWORD (basic auth), RAY_ICMA_ES_CA_CERTS (TLS CA bundle)."""
    kwargs: dict[str, Any] = {}
    user, password = os.environ.get("RAY_ICMA_ES_USER"), os.environ.get("RAY_ICMA_ES_PASSWORD")
    if user and password:
        kwargs["basic_auth"] = (user, password)
    if os.environ.get("RAY_ICMA_ES_CA_CERTS"):
        kwargs["ca_certs"] = os.environ["RAY_ICMA_ES_CA_CERTS"]
    return kwargs
