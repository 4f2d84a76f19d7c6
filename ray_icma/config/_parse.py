"""Read a YAML config and apply ``dotted.key=value`` command-line overrides (torchtune-style)."""
from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

from ray_icma.config._errors import ConfigError

__all__ = ["load_config", "apply_overrides", "parse_override"]


def parse_override(item: str) -> tuple[list[str], Any]:
    """Split ``"optim.lr=3e-4"`` into ``(["optim", "lr"], 0.0003)``; the value is parsed as YAML.

    Raises:
        ConfigError: no ``=`` or an empty key.
    """
    import yaml

    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError([f"{item!r}: overrides look like dotted.key=value, e.g. optim.lr=3e-4"], "command line")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw  # not YAML: keep the literal string
    if isinstance(value, str) and _looks_like_float(value):
        value = float(value)  # YAML 1.1 reads "3e-4" as a string
    return key.split("."), value


def _looks_like_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return any(ch in text.lower() for ch in "e.") and text.strip().lower() not in {"nan", "inf", "-inf", "+inf"}


def apply_overrides(config: Mapping[str, Any], overrides: Sequence[str] = ()) -> dict:
    """A copy of ``config`` with each ``dotted.key=value`` set (missing levels are created).

    Unknown keys are not rejected here: validation reports them with a "did you mean" hint.
    """
    out = copy.deepcopy(dict(config))
    problems = []
    for item in overrides:
        try:
            path, value = parse_override(item)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        node = out
        for depth, part in enumerate(path[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                problems.append(f"{item!r}: {'.'.join(path[: depth + 1])} is a value, not a section")
                break
            node = child
        else:
            node[path[-1]] = value
    if problems:
        raise ConfigError(problems, "command line")
    return out


def load_config(path: str | PathLike[str] | None, overrides: Sequence[str] = ()) -> dict:
    """Read a YAML mapping from ``path`` (None: start empty), then apply ``overrides``.

    Raises:
        ConfigError: the file is missing, is not YAML, or is not a mapping; or a bad override.
    """
    import yaml

    data: Any = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError([f"{p}: no such file (configs live under configs/, e.g. configs/train/...)"], str(p))
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError([f"{p}: not valid YAML: {exc}"], str(p)) from exc
        if not isinstance(data, dict):
            raise ConfigError([f"{p}: top level must be a mapping of keys, got {type(data).__name__}"], str(p))
    return apply_overrides(data, overrides)
