"""One place that turns a missing optional dependency into an ImportError with the pip line."""
from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise ImportError naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            f"{module!r} is needed for this feature: pip install 'ray-icma[{extra}]'"
        ) from exc
