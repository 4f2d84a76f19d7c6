"""Files that ship inside the package: the example configs and the small data they name.

``ray_icma/_project/`` mirrors the repository's layout with symlinks (``configs/`` and the few
``tests/assets`` files the configs use). A wheel copies the files, so an installed ray-icma has
the same tree under site-packages; in a checkout the links lead back to the real files. Relative
paths in those configs therefore resolve the same way in both ("the folder above ``configs/``"),
and no code locates anything through the source tree.

A config argument is a file path or, when no such file exists, a packaged name such as
``pipeline/quickstart`` or ``serve/icma_app`` (``ray-icma configs list``).
"""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["config_names", "packaged_config", "project_dir", "project_root_of", "resolve_config"]


def project_dir() -> Path:
    """The packaged project tree (``<site-packages>/ray_icma/_project`` once installed)."""
    return Path(str(files("ray_icma") / "_project"))


def config_names() -> list[str]:
    """Every packaged config as ``kind/name`` (``pipeline/quickstart``, ``train/tiny/ci_deepspeed_zero2``, ...)."""
    root = project_dir() / "configs"
    return sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.yaml"))


def packaged_config(name: str) -> Path | None:
    """The packaged config called ``name`` (with or without ``.yaml``), or None."""
    rel = name.removesuffix(".yaml").removesuffix(".yml").strip("/")
    if not rel or ".." in Path(rel).parts:
        return None
    path = project_dir() / "configs" / f"{rel}.yaml"
    return path if path.is_file() else None


def resolve_config(arg: str | Path, kind: str | None = None) -> Path:
    """``arg`` if it is a file, else the packaged config of that name (``kind/`` may be left out).

    Raises:
        FileNotFoundError: neither; the message lists the packaged configs of ``kind``.
    """
    path = Path(arg)
    if path.is_file():
        return path
    name = str(arg)
    found = packaged_config(name) or (packaged_config(f"{kind}/{name}") if kind else None)
    if found is not None:
        return found
    names = [n for n in config_names() if kind is None or n.startswith(f"{kind}/")]
    raise FileNotFoundError(f"config {arg} not found: no such file, and no packaged config of that name "
                            f"(packaged: {', '.join(names) or 'none'})")


def project_root_of(config: str | Path) -> Path | None:
    """The folder above ``configs/`` for a config at ``.../configs/<kind>/.../x.yaml``, else None.

    Relative data paths in such a config are resolved against it (the repository root in a
    checkout, :func:`project_dir` for a packaged config).
    """
    resolved = Path(config).resolve()
    for parent in resolved.parents:
        if parent.name == "configs":
            return parent.parent
    return None
