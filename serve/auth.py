"""API keys and per-key rate limits, checked in the ingress before a request body is even read.

Keys come from the environment of the ingress replicas (a Kubernetes Secret mapped to env vars, or
`ray_actor_options.runtime_env.env_vars`): `RAY_ICMA_API_KEYS="alice:KEY1,bob:KEY2"` (a bare `KEY` gets
the name `key-<n>`); admin keys likewise in `RAY_ICMA_ADMIN_KEYS` (an admin key also works on every other
route). Callers send `Authorization: Bearer KEY` or `X-API-Key: KEY`.

- /healthz, /readyz, /docs, /openapi.json: open (probes and discovery need no key).
- /admin/...: an admin key, else 401 (no/unknown key) or 403 (a valid non-admin key).
- everything else: a valid key, else 401 with `WWW-Authenticate: Bearer`.
- each key has a token bucket (`rate_per_s`, `burst`) per ingress replica: past it, 429 + Retry-After.

Keys are kept only as SHA-256 digests; logs and metrics see the key's name, never the key.
"""
from __future__ import annotations

import hashlib
import math
import os
import threading
import time
from dataclasses import dataclass

__all__ = ["KeyGuard", "Verdict", "parse_keys", "install", "installed", "OPEN_PATHS", "ADMIN_PREFIX"]

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
ADMIN_PREFIX = "/admin/"


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def parse_keys(value: str | None, what: str) -> dict[bytes, str]:
    """`name:key,name:key` (or bare keys) -> {sha256(key): name}. ValueError names the bad entry's position."""
    out: dict[bytes, str] = {}
    for n, raw in enumerate((value or "").split(","), start=1):
        entry = raw.strip()
        if not entry:
            continue
        name, sep, key = entry.partition(":")
        if not sep:
            name, key = f"key-{n}", entry
        name, key = name.strip(), key.strip()
        if not key or not name:
            raise ValueError(f"{what}: entry {n} has an empty name or key (expected name:key)")
        if len(key) < 8:
            raise ValueError(f"{what}: the key of {name!r} is shorter than 8 characters")
        out[_digest(key)] = name
    return out


@dataclass(frozen=True)
class Verdict:
    """A refusal: HTTP status, message and headers."""

    status: int
    detail: str
    headers: dict[str, str]
    key_name: str | None = None


class _Bucket:
    __slots__ = ("tokens", "stamp")

    def __init__(self, burst: float):
        self.tokens, self.stamp = burst, time.monotonic()


class KeyGuard:
    """Decides, per request path and headers, whether to let it through (None) or how to refuse (Verdict)."""

    def __init__(self, keys: dict[bytes, str], admin_keys: dict[bytes, str], rate_per_s: float | None, burst: int):
        self.keys = {**keys, **admin_keys}
        self.admin = set(admin_keys)
        self.rate, self.burst = rate_per_s, float(burst)
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, keys_env: str, admin_keys_env: str, rate_per_s: float | None, burst: int) -> "KeyGuard":
        keys = parse_keys(os.environ.get(keys_env), keys_env)
        admin = parse_keys(os.environ.get(admin_keys_env), admin_keys_env)
        if not keys and not admin:
            raise ValueError(
                f"ingress.auth.enabled is true but neither {keys_env} nor {admin_keys_env} holds a key in the ingress "
                f"replica's environment; set them (a Kubernetes Secret as env vars, or ingress.deployment_options."
                f"ray_actor_options.runtime_env.env_vars) or turn auth off")
        return cls(keys, admin, rate_per_s, burst)

    @staticmethod
    def presented(headers: dict[str, str]) -> str | None:
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            return auth[7:].strip() or None
        return headers.get("x-api-key") or None

    def check(self, path: str, headers: dict[str, str]) -> Verdict | None:
        if path in OPEN_PATHS:
            return None
        key = self.presented(headers)
        challenge = {"WWW-Authenticate": 'Bearer realm="ray-icma"'}
        if key is None:
            return Verdict(401, "missing API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`", challenge)
        digest = _digest(key)
        name = self.keys.get(digest)
        if name is None:
            return Verdict(401, "unknown API key", challenge)
        if path.startswith(ADMIN_PREFIX) and digest not in self.admin:
            return Verdict(403, f"{path} needs an admin key; {name!r} is not one", {}, name)
        wait = self._take(name)
        if wait > 0:
            return Verdict(429, f"rate limit of {self.rate:g} requests/s (burst {self.burst:g}) for key {name!r} "
                                f"exceeded; retry after the Retry-After seconds",
                           {"Retry-After": str(max(1, math.ceil(wait)))}, name)
        return None

    def _take(self, name: str) -> float:
        """Take one token from the key's bucket: 0 if taken, else seconds until one is there."""
        if not self.rate:
            return 0.0
        with self._lock:
            bucket = self._buckets.get(name)
            if bucket is None:
                bucket = self._buckets[name] = _Bucket(self.burst)
            now = time.monotonic()
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.rate


# The guard (and the metrics its refusals go to) of this process's ingress replica. Kept here, in an importable
# module, because Serve pickles the ingress class by value: a global of the ingress module written in
# __init__ would land in a copy that the middleware never reads.
_INSTALLED: dict[str, object] = {"guard": None, "metrics": None}


def install(guard: KeyGuard | None, metrics: object = None) -> None:
    _INSTALLED["guard"], _INSTALLED["metrics"] = guard, metrics


def installed() -> tuple[KeyGuard | None, object]:
    return _INSTALLED["guard"], _INSTALLED["metrics"]  # type: ignore[return-value]
