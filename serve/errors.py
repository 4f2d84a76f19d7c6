"""Errors the deployments raise on purpose; the ingress maps each to one HTTP status.

They cross process boundaries (Ray wraps them in RayTaskError, which still subclasses them), so
they keep their message in ``args`` and carry nothing unpicklable.
"""
from __future__ import annotations

__all__ = ["StageUnavailable", "BadRequest", "UnknownAdapter"]


class StageUnavailable(RuntimeError):
    """A backing service or model is down right now (Elasticsearch unreachable...): HTTP 503 + Retry-After."""


class BadRequest(ValueError):
    """The request is well-formed JSON but cannot be served as asked: HTTP 422 with this message."""


class UnknownAdapter(BadRequest):
    """A LoRA adapter name that the Generator does not serve: HTTP 422 listing the served ones."""
