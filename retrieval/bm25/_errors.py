"""Errors a BM25 user can act on: the server is not there, or the index is not there."""
from __future__ import annotations

__all__ = ["BM25BackendUnavailable", "IndexNotFound"]


class BM25BackendUnavailable(RuntimeError):
    """The search server cannot be reached (message names the URL, the cause and what to do)."""


class IndexNotFound(LookupError):
    """The named index or alias does not exist on the server (build it with ``index()`` first)."""
