"""`read_split`: load one split of a registered data set (or of a folder) by name."""
from __future__ import annotations

from os import PathLike
from pathlib import Path

from ray_icma.data.loader import load_records
from ray_icma.data.problems import DataError, LoadResult
from ray_icma.data.readers import SUPPORTED_SUFFIXES
from ray_icma.data.registry import DATASETS

DATA_ROOT_ENV = "RAY_ICMA_DATA"


def default_root() -> Path:
    """$RAY_ICMA_DATA, else ./data."""
    from ray_icma.env import data_root

    return data_root()


def split_path(name_or_path: str | PathLike[str], split: str, *, root: str | PathLike[str] | None = None) -> Path:
    """Where split `split` of `name_or_path` lives.

    Args:
        name_or_path: a `DATASETS` key (``"chebi20"``, ``"pubchem324k"``, ``"pubchem324k-iupac"``)
            or a folder holding ``<split>.txt`` / ``.tsv`` / ``.jsonl`` / ``.parquet``.
        split: ``"train"``, ``"validation"`` or ``"test"``.
        root: data root for registered names (default `default_root()`).

    Raises:
        DataError: unknown split, or no file for it.
    """
    name = str(name_or_path)
    if name in DATASETS:
        spec = DATASETS[name]
        if split not in spec.splits:
            raise DataError(f"{name} has no split {split!r}; it has {', '.join(spec.splits)}")
        root_dir = Path(root if root is not None else default_root())
        path = root_dir / spec.local_dir / spec.splits[split]
        if not path.is_file():
            hint = f"run `ray-icma data download {name} --to {root_dir}`"
            if not spec.downloadable:
                hint = spec.note or f"see {spec.homepage}"
            raise DataError(f"{path}: no such file ({name} {split} split); {hint}")
        return path
    folder = Path(name)
    if not folder.is_dir():
        raise DataError(f"{name!r} is neither a known data set ({', '.join(DATASETS)}) nor a folder")
    for suffix in SUPPORTED_SUFFIXES:
        candidate = folder / f"{split}{suffix}"
        if candidate.is_file():
            return candidate
    raise DataError(f"{folder}: no {split} file ({', '.join(split + s for s in SUPPORTED_SUFFIXES)})")


def read_split(
    name_or_path: str | PathLike[str],
    split: str,
    *,
    root: str | PathLike[str] | None = None,
    strict: bool = False,
    validate_smiles: bool = True,
) -> LoadResult:
    """Load a split, e.g. ``read_split("chebi20", "test", root="../shared/data")``.

    Records get ``source="<name>/<split>"`` for registered names.

    Args:
        name_or_path: see `split_path`.
        split: split name.
        root: data root for registered names.
        strict: see `load_records`.
        validate_smiles: see `load_records`.

    Returns:
        The `LoadResult` of that file.
    """
    path = split_path(name_or_path, split, root=root)
    source = f"{name_or_path}/{split}" if str(name_or_path) in DATASETS else None
    return load_records(path, strict=strict, validate_smiles=validate_smiles, source=source)
