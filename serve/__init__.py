"""Ray Serve deployments for ICMA: retrieve -> re-rank -> generate, built from one config.

`build_icma_app` is imported lazily so `import serve` (and `serve.configs`) stays cheap.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from serve.configs import ICMAServingArgs

if TYPE_CHECKING:  # pragma: no cover
    from serve.builder import build_icma_app

__all__ = ["ICMAServingArgs", "build_icma_app"]


def __getattr__(name: str) -> Any:
    if name == "build_icma_app":
        from serve.builder import build_icma_app

        return build_icma_app
    raise AttributeError(f"module 'serve' has no attribute {name!r}")
