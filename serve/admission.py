"""Admission control in the ingress: count the requests in flight on this ingress replica and refuse past a
limit at once (503 + Retry-After), before the body is read or any stage works on the request.

Two counters per ingress replica: every API request (`/v1/...`), and among them the generation requests
(`/v1/mol2cap`, `/v1/cap2mol` and their `/batch`; a batch counts once), whose limit is the Generator's
capacity. Probes, docs and admin routes are never counted. The limits come from `ingress.admission`
through `serve.builder.admission_limits` (the one place they are derived, together with the Serve queue
options that must agree with them); the check runs in a pure ASGI middleware of serve/ingress.py.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Gate", "Refusal", "install", "installed", "GENERATION_PATHS", "API_PREFIX"]

API_PREFIX = "/v1/"
GENERATION_PATHS = frozenset({"/v1/mol2cap", "/v1/cap2mol", "/v1/mol2cap/batch", "/v1/cap2mol/batch"})


@dataclass(frozen=True)
class Refusal:
    """Why a request was refused: which limit (``"api"`` or ``"generation"``), its value, and the message."""

    limit: str
    value: int
    detail: str


class Gate:
    """In-flight counters of one ingress replica. `enter` admits (and counts) or refuses; `leave` uncounts.

    Called from one event loop (the replica's ASGI app), so plain integers are enough.

    Args:
        api_limit: most `/v1/` requests in flight; None = no limit.
        generation_limit: most generation requests in flight; None = no limit.
    """

    def __init__(self, api_limit: int | None, generation_limit: int | None):
        for name, value in (("api_limit", api_limit), ("generation_limit", generation_limit)):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or None, got {value}")
        self.api_limit, self.generation_limit = api_limit, generation_limit
        self.in_flight = 0
        self.generations = 0

    @staticmethod
    def kind(path: str) -> str | None:
        """``"generation"``, ``"api"`` or None (not counted) for a request path (without the route prefix)."""
        path = path.rstrip("/") or "/"
        if path in GENERATION_PATHS:
            return "generation"
        return "api" if path.startswith(API_PREFIX) else None

    def enter(self, kind: str | None) -> Refusal | None:
        """Admit one request of ``kind`` (counted until `leave`), or say why not."""
        if kind is None:
            return None
        if self.api_limit is not None and self.in_flight >= self.api_limit:
            return Refusal("api", self.api_limit,
                           f"over the admission limit: {self.api_limit} requests in flight on this ingress replica "
                           f"(ingress.admission.max_in_flight); retry after the Retry-After seconds")
        if kind == "generation":
            if self.generation_limit is not None and self.generations >= self.generation_limit:
                return Refusal("generation", self.generation_limit,
                               f"over the admission limit for generation: {self.generation_limit} generation requests "
                               f"in flight on this ingress replica, the Generator's capacity "
                               f"(ingress.admission.max_generations_in_flight); retry after the Retry-After seconds")
            self.generations += 1
        self.in_flight += 1
        return None

    def leave(self, kind: str | None) -> None:
        if kind is None:
            return
        self.in_flight -= 1
        if kind == "generation":
            self.generations -= 1


# The gate of this process's ingress replica; kept in an importable module for the reason given in serve/auth.py
# (Serve pickles the ingress class by value, so a global of the ingress module would be a copy).
_INSTALLED: dict[str, object] = {"gate": None, "retry_after": 1}


def install(gate: Gate | None, retry_after_s: int = 1) -> None:
    _INSTALLED["gate"], _INSTALLED["retry_after"] = gate, retry_after_s


def installed() -> tuple[Gate | None, int]:
    return _INSTALLED["gate"], _INSTALLED["retry_after"]  # type: ignore[return-value]
