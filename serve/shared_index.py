"""Elasticsearch as a shared index: every Retriever replica (or ingress with in-process retrieval) attaches
to the alias that `ray-icma index captions` / the index RayJob / an earlier replica built, and only one
of them builds it when it is missing.

    attach_or_build(index, cfg, records, owner)  ->  "attached" | "built"

- The alias exists and holds this pool (doc count = pool size, ids in pool order) and, when the index
  records one, the same `index_version` in its mapping `_meta`: attach, nothing is written.
- The alias holds the pool under another `index_version`, or does not exist: build, unless
  `text.build: never`. Builders take a lock document (`op_type=create` on `<alias>-build-locks/_doc/build`):
  exactly one wins, the others wait for the alias to hold the version, then attach.
- The winner refreshes the lock while it loads; a lock whose sequence number has not moved for
  `text.build_lock_stale_s` belongs to a dead builder: one waiter deletes it (compare-and-delete on
  seq_no/primary_term, so only one can); whichever waiter takes the lock next (not always that one)
  removes the dead builder's half-built index (created since the earliest lock it saw) and builds.
- A finished build records `{event: built, index, index_version, docs, owner}` in the lock index.
- The alias holds the same `index_version` (or none) but other documents: refuse, never overwrite
  another job's output silently.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from datetime import datetime, timezone
from typing import Any

__all__ = ["attach_or_build", "lock_index_name", "replica_owner", "SharedIndexMismatch"]

log = logging.getLogger("ray.serve")

_LOCK_ID = "build"


class SharedIndexMismatch(RuntimeError):
    """The alias holds documents other than this pool under the same version: fix the config or rebuild."""


def lock_index_name(alias: str) -> str:
    return f"{alias}-build-locks"


def replica_owner() -> str:
    """Who builds: the Ray actor's name (a Serve replica), else host:pid."""
    import os
    import socket

    try:
        import ray

        name = ray.get_runtime_context().get_actor_name() if ray.is_initialized() else None
    except Exception:  # noqa: BLE001 - outside Ray
        name = None
    return name or f"{socket.gethostname()}:{os.getpid()}"


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def _inspect(client: Any, alias: str) -> dict[str, Any] | None:
    """The index behind the alias with its `_meta` and doc count; None when there is no alias."""
    from elasticsearch import NotFoundError

    try:
        targets = sorted(client.indices.get_alias(name=alias).body)
    except NotFoundError:
        return None
    if len(targets) != 1:
        return {"index": ",".join(targets), "meta": {}, "count": -1}
    target = targets[0]
    mapping = client.indices.get_mapping(index=target).body[target]["mappings"]
    client.indices.refresh(index=target)
    count = int(client.count(index=target)["count"])
    return {"index": target, "meta": mapping.get("_meta") or {}, "count": count}


def _pool_ids(index: Any, target: str) -> list[str]:
    from elasticsearch.helpers import scan

    pairs = [(h["fields"]["position"][0], h["fields"]["id"][0]) for h in scan(
        index.client, index=target, query={"query": {"match_all": {}}, "_source": False,
                                           "docvalue_fields": ["position", "id"]})]
    return [doc_id for _, doc_id in sorted(pairs)]


def _matches(index: Any, state: dict[str, Any], version: str, ids: list[str]) -> bool:
    """True: attach. False: another version is there (build). Raises when the same version holds other docs."""
    recorded = state["meta"].get("index_version")
    if recorded is not None and recorded != version:
        return False
    if state["count"] == len(ids) and _pool_ids(index, state["index"]) == ids:
        return True
    raise SharedIndexMismatch(
        f"alias {index.index_name!r} on {index.url} holds {state['count']} documents (index {state['index']}, "
        f"index_version {recorded!r}) that are not this pool of {len(ids)} rows in order; refusing to overwrite it. "
        f"Set a new retriever.index_version to build this pool beside it, point text.index_name elsewhere, or rebuild "
        f"it with `ray-icma index captions --data <pool> --backend elasticsearch --index-name {index.index_name}`")


class _Heartbeat:
    """Rewrites the lock document every `period_s` while the holder builds (its seq_no moves)."""

    def __init__(self, client: Any, lock_index: str, doc: dict[str, Any], period_s: float):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(client, lock_index, doc, period_s), daemon=True)

    def _run(self, client: Any, lock_index: str, doc: dict[str, Any], period_s: float) -> None:
        beats = 0
        while not self._stop.wait(period_s):
            beats += 1
            try:
                client.index(index=lock_index, id=_LOCK_ID, document={**doc, "heartbeat": _now_iso(), "beats": beats})
            except Exception as exc:  # noqa: BLE001 - the next beat retries; a long gap lets others take over
                log.warning("build lock heartbeat failed: %s", exc)

    def __enter__(self) -> "_Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _delete_half_built(client: Any, alias: str, since_iso: str | None) -> list[str]:
    """Indices named like the alias' builds, not behind it, created since the dead builder took the lock."""
    pattern = re.compile(rf"^{re.escape(alias)}-\d{{20}}$")
    behind = set()
    try:
        behind = set(client.indices.get_alias(name=alias).body)
    except Exception:  # noqa: BLE001 - no alias yet
        pass
    since_ms = int(datetime.fromisoformat(since_iso).timestamp() * 1000) - 5000 if since_iso else None
    deleted = []
    for name, info in client.indices.get_settings(index=f"{alias}-*", expand_wildcards="open").body.items():
        created = int(info["settings"]["index"]["creation_date"])
        if pattern.match(name) and name not in behind and (since_ms is None or created >= since_ms):
            client.options(ignore_status=404).indices.delete(index=name)
            deleted.append(name)
    return deleted


def attach_or_build(index: Any, cfg: Any, records: list, owner: str | None = None) -> str:
    """Attach `index` (an ElasticsearchIndex on the alias `cfg.text.index_name`) to the shared index of
    this pool, building it under the lock when it is missing. Returns "attached" or "built".

    Raises:
        SharedIndexMismatch: the alias holds other documents under the same index_version.
        LookupError: the alias is missing / another version and `text.build` is "never".
        TimeoutError: another builder held the lock past `text.build_wait_s`.
    """
    from elasticsearch import ConflictError, NotFoundError

    text = cfg.text
    alias, version = index.index_name, cfg.index_version
    ids = [r.cid for r in records]
    client = index.client
    locks = lock_index_name(alias)
    owner = owner or replica_owner()
    deadline = time.monotonic() + text.build_wait_s
    seen: tuple[int, float] | None = None  # (lock seq_no, when we first saw it)
    # earliest `taken_at` of another owner's lock seen while waiting: if we get the lock and the alias still lacks
    # our build, that owner died or failed, and whichever waiter gets the lock next (not only the one that removed
    # the stale lock) deletes what it left half-built since then
    others_since: str | None = None
    while True:
        state = _inspect(client, alias)
        if state is not None and _matches(index, state, version, ids):
            log.info("attached to %s (%s, %d docs, index_version %s)", alias, state["index"], state["count"], version)
            return "attached"
        if text.build == "never":
            raise LookupError(
                f"alias {alias!r} on {index.url} does not hold index_version {version!r} and text.build is 'never'; "
                f"build it with `ray-icma index captions --backend elasticsearch --index-name {alias}`")
        doc = {"owner": owner, "index_version": version, "taken_at": _now_iso(), "heartbeat": _now_iso(), "beats": 0}
        # 400 = exists already (the normal case)
        client.options(ignore_status=400).indices.create(index=locks, settings={"number_of_shards": 1,
                                                                               "number_of_replicas": 0})
        try:
            client.create(index=locks, id=_LOCK_ID, document=doc, refresh="true")
        except ConflictError:
            try:
                lock = client.get(index=locks, id=_LOCK_ID)
            except NotFoundError:
                continue  # released meanwhile: look again
            key = int(lock["_seq_no"])
            taken = lock["_source"].get("taken_at")
            if taken and (others_since is None or taken < others_since):
                others_since = taken
            if seen is None or seen[0] != key:
                seen = (key, time.monotonic())
            elif time.monotonic() - seen[1] > text.build_lock_stale_s:
                try:  # compare-and-delete: of all waiters, only one removes this exact lock version
                    client.delete(index=locks, id=_LOCK_ID, if_seq_no=lock["_seq_no"],
                                  if_primary_term=lock["_primary_term"], refresh="true")
                    log.warning("build lock of %s held by %s went stale; taking over", alias, lock["_source"].get("owner"))
                except (ConflictError, NotFoundError):
                    pass
                seen = None
                continue
            if time.monotonic() > deadline:
                raise TimeoutError(f"{lock['_source'].get('owner')} has been building {alias!r} for longer than "
                                   f"text.build_wait_s={text.build_wait_s}s") from None  # the conflict is the normal wait
            time.sleep(0.5)
            continue
        # we hold the lock
        try:
            state = _inspect(client, alias)  # someone may have finished between our look and our lock
            if state is not None and _matches(index, state, version, ids):
                return "attached"
            if others_since is not None:
                gone = _delete_half_built(client, alias, others_since)
                if gone:
                    log.warning("deleted half-built index(es) of a dead builder: %s", gone)
            started = time.perf_counter()
            with _Heartbeat(client, locks, doc, max(text.build_lock_stale_s / 4, 0.2)):
                index.index([r.text for r in records], ids)
                target = sorted(client.indices.get_alias(name=alias).body)[0]
                client.indices.put_mapping(index=target, meta={
                    "index_version": version, "doc_count": len(ids), "built_by": owner, "built_at": _now_iso()})
            client.index(index=locks, id=f"built-{target}", refresh="true", document={
                "event": "built", "index": target, "index_version": version, "docs": len(ids), "owner": owner,
                "at": _now_iso(), "seconds": round(time.perf_counter() - started, 3)})
            log.info("built %s -> %s (%d docs, index_version %s) in %.1fs", alias, target, len(ids), version,
                     time.perf_counter() - started)
            return "built"
        finally:
            client.options(ignore_status=404).delete(index=locks, id=_LOCK_ID, refresh="true")
