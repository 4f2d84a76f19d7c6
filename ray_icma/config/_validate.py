"""Validate a config dict against a pydantic model and turn every error into one ConfigError."""
from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, TypeVar

from ray_icma.config._errors import ConfigError

__all__ = ["validate_config", "unknown_key_hint"]

M = TypeVar("M")


def unknown_key_hint(model_cls: Any, loc: tuple) -> str:
    """``"did you mean 'lr'?"`` for an unknown key, looked up among the fields at that level."""
    cls = model_cls
    for part in loc[:-1]:
        field = getattr(cls, "model_fields", {}).get(part)
        ann = getattr(field, "annotation", None)
        if not hasattr(ann, "model_fields"):
            return ""
        cls = ann
    known = list(getattr(cls, "model_fields", {}))
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    if close:
        return f"unknown key; did you mean {close[0]!r}?"
    return f"unknown key; allowed here: {', '.join(known)}" if known else "unknown key"


def validate_config(model_cls: type[M], data: Mapping[str, Any], source: str = "config") -> M:
    """``model_cls.model_validate(data)``, with all errors collected into one ``ConfigError``.

    Raises:
        ConfigError: listing every problem as ``dotted.key: message``.
    """
    from pydantic import ValidationError

    try:
        return model_cls.model_validate(dict(data))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            where = ".".join(str(p) for p in loc) or "(top level)"
            if err["type"] == "extra_forbidden":
                problems.append(f"{where}: {unknown_key_hint(model_cls, loc)}")
            else:
                got = err.get("input")
                shown = "" if isinstance(got, (dict, list)) or got is None else f" (got {got!r})"
                problems.append(f"{where}: {err['msg']}{shown}")
        raise ConfigError(problems, source) from None
