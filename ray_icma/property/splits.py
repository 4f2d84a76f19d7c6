"""The two splits of each set: ICMA's files as given, and a deterministic Bemis-Murcko scaffold split.

The scaffold split is the one MoleculeNet/OGB report: molecules are grouped by their Bemis-Murcko
scaffold (RDKit ``MurckoScaffoldSmiles``, chirality ignored), groups are taken largest first (ties:
the group whose first molecule comes first), and each group goes whole to train until 80 % is
full, then validation to 90 %, then test (DeepChem's ``ScaffoldSplitter`` rule). The full set is
ICMA's train, validation and test files concatenated in that order, so the split depends only on
the data files. Test molecules share no scaffold with training molecules.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from os import PathLike
from pathlib import Path

from ray_icma.data.problems import DataError, LoadResult
from ray_icma.property.datasets import get_set
from ray_icma.property.records import PropertyRecord, load_property_file

__all__ = ["SPLITS", "SPLIT_KINDS", "DATA_ROOT_ENV", "default_property_root", "murcko_scaffold", "scaffold_split", "load_property_splits"]

SPLITS = ("train", "validation", "test")
SPLIT_KINDS = ("icma", "scaffold")
DATA_ROOT_ENV = "RAY_ICMA_MOLECULENET"
_SUFFIXES = (".csv", ".jsonl", ".parquet")


def default_property_root() -> Path:
    """$RAY_ICMA_MOLECULENET, else ../shared/data/moleculenet (the team's copy of ICMA's files)."""
    return Path(os.environ.get(DATA_ROOT_ENV, "../shared/data/moleculenet"))


def murcko_scaffold(smiles: str) -> str:
    """Bemis-Murcko scaffold SMILES (canonical, no chirality); "" for acyclic molecules."""
    from rdkit import Chem, RDLogger
    from rdkit.Chem.Scaffolds import MurckoScaffold

    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValueError(f"RDKit cannot parse SMILES {smiles!r}")
    return MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=False)


def scaffold_split(
    records: Sequence[PropertyRecord], fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
) -> dict[str, list[PropertyRecord]]:
    """Split records by scaffold (deterministic: no random choice is made).

    Args:
        records: the full set, in a fixed order.
        fractions: train, validation, test shares (must sum to 1).

    Returns:
        ``{"train": [...], "validation": [...], "test": [...]}``, each in input order.
    """
    if abs(sum(fractions) - 1.0) > 1e-9 or min(fractions) < 0:
        raise ValueError(f"fractions must be >= 0 and sum to 1, got {fractions}")
    groups: dict[str, list[int]] = {}
    for i, record in enumerate(records):
        groups.setdefault(murcko_scaffold(record.smiles), []).append(i)
    ordered = sorted(groups.values(), key=lambda g: (len(g), -g[0]), reverse=True)
    n = len(records)
    train_cut, valid_cut = fractions[0] * n, (fractions[0] + fractions[1]) * n
    parts: dict[str, list[int]] = {s: [] for s in SPLITS}
    for group in ordered:
        if len(parts["train"]) + len(group) > train_cut:
            if len(parts["train"]) + len(parts["validation"]) + len(group) > valid_cut:
                parts["test"].extend(group)
            else:
                parts["validation"].extend(group)
        else:
            parts["train"].extend(group)
    return {s: [records[i] for i in sorted(idx)] for s, idx in parts.items()}


def _split_file(folder: Path, split: str) -> Path:
    for suffix in _SUFFIXES:
        if (folder / f"{split}{suffix}").is_file():
            return folder / f"{split}{suffix}"
    raise DataError(f"{folder}: no {split} file ({', '.join(split + s for s in _SUFFIXES)}); point --root at ICMA's MoleculeNet files")


def load_property_splits(
    dataset: str,
    kind: str = "icma",
    *,
    root: str | PathLike[str] | None = None,
    strict: bool = False,
) -> tuple[dict[str, list[PropertyRecord]], list[LoadResult]]:
    """All three splits of a set.

    Args:
        dataset: ``bace``, ``bbbp``, ``clintox``, ``hiv``, ``sider`` or ``tox21``.
        kind: ``icma`` (the files as given) or ``scaffold`` (recomputed from their union).
        root: folder holding ``<set>/{train,validation,test}.csv`` (default `default_property_root`).
        strict: stop at the first bad row.

    Returns:
        ``({"train": [...], "validation": [...], "test": [...]}, [LoadResult per file])``; the
        results carry the bad rows (file:line) that were skipped.
    """
    spec = get_set(dataset)
    if kind not in SPLIT_KINDS:
        raise ValueError(f"unknown split kind {kind!r}; choose one of {', '.join(SPLIT_KINDS)}")
    folder = Path(root if root is not None else default_property_root()) / spec.name
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder; set {DATA_ROOT_ENV} or --root to the folder holding {spec.name}/train.csv")
    results = [load_property_file(_split_file(folder, s), spec, strict=strict) for s in SPLITS]
    splits = {s: list(r.records) for s, r in zip(SPLITS, results)}
    if kind == "scaffold":
        splits = scaffold_split([r for s in SPLITS for r in splits[s]])
    return splits, results
