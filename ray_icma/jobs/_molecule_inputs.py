"""(id, SMILES) pairs for the embedding job, from a data file or from records in memory.

Caption files go through :func:`ray_icma.data.load_records` (its bad-row report is kept) with
SMILES validation off: an unparsable SMILES is the embedding job's to count, as an invalid
molecule with a zero vector. Files without a text column (e.g. ChEBI-20
``train_smiles_only.tsv``: ``CID, SMILES, flag``) are read as plain id/SMILES tables.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Iterable, Mapping

_ID_COLUMNS = ("cid", "id", "CID", "ID", "molecule_id")
_SMILES_COLUMNS = ("smiles", "SMILES", "Smiles")


@dataclass
class MoleculeInputs:
    """What to embed.

    Attributes:
        ids: unique string ids, input order.
        smiles: SMILES per id.
        problems: one line per input row that was skipped (unreadable, no id, duplicate id).
    """

    ids: list[str]
    smiles: list[str]
    problems: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)


def _pick(columns: Iterable[str], choices: tuple[str, ...]) -> str | None:
    columns = list(columns)
    return next((c for c in choices if c in columns), None)


def _plain_table(path: Path) -> MoleculeInputs:
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame = pd.read_parquet(path)
    elif suffix in (".jsonl", ".json"):
        frame = pd.read_json(path, lines=True, dtype=False)
    else:
        frame = pd.read_csv(path, sep="\t" if suffix in (".tsv", ".txt") else ",", dtype=str, keep_default_na=False)
    id_col, smiles_col = _pick(frame.columns, _ID_COLUMNS), _pick(frame.columns, _SMILES_COLUMNS)
    if smiles_col is None:
        raise ValueError(f"{path}: no SMILES column among {list(frame.columns)}; expected one of {_SMILES_COLUMNS}")
    ids = frame[id_col].astype(str).tolist() if id_col else [str(i) for i in range(len(frame))]
    return _dedupe(ids, frame[smiles_col].fillna("").astype(str).tolist(), str(path))


def _dedupe(ids: list[str], smiles: list[str], where: str, problems: list[str] | None = None) -> MoleculeInputs:
    problems = list(problems or [])
    seen: set[str] = set()
    kept_ids, kept_smiles = [], []
    for row, (id_, smi) in enumerate(zip(ids, smiles)):
        id_ = id_.strip()
        if not id_:
            problems.append(f"{where}: row {row}: empty id, skipped")
        elif id_ in seen:
            problems.append(f"{where}: row {row}: duplicate id {id_}, first one kept")
        else:
            seen.add(id_)
            kept_ids.append(id_)
            kept_smiles.append(smi.strip())
    return MoleculeInputs(kept_ids, kept_smiles, problems)


def read_molecule_inputs(source: str | PathLike[str] | Iterable[Any]) -> MoleculeInputs:
    """Turn a file path or records into unique (id, SMILES) pairs.

    Args:
        source: a TSV/JSONL/Parquet path, or an iterable of ``MoleculeRecord``s, mappings with
            ``cid``/``id`` and ``smiles`` keys, or ``(id, smiles)`` pairs.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: no SMILES column / unusable record.
    """
    if isinstance(source, (str, PathLike)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"input file {path} not found")
        from ray_icma.data import DataError, load_records

        try:
            loaded = load_records(path, validate_smiles=False)
        except DataError as exc:
            if "no column for text" not in str(exc):
                raise ValueError(str(exc)) from exc
            return _plain_table(path)
        return MoleculeInputs([r.cid for r in loaded.records], [r.smiles for r in loaded.records], [str(p) for p in loaded.problems])

    ids, smiles = [], []
    for n, item in enumerate(source):
        if hasattr(item, "smiles") and hasattr(item, "cid"):
            ids.append(str(item.cid)), smiles.append(str(item.smiles))
        elif isinstance(item, Mapping):
            id_key, smiles_key = _pick(item, _ID_COLUMNS), _pick(item, _SMILES_COLUMNS)
            if smiles_key is None:
                raise ValueError(f"record {n} has no 'smiles' key: {dict(item)!r:.120}")
            ids.append(str(item[id_key]) if id_key else str(n)), smiles.append(str(item[smiles_key]))
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            ids.append(str(item[0])), smiles.append(str(item[1]))
        else:
            raise ValueError(f"record {n} is a {type(item).__name__}; pass MoleculeRecords, dicts or (id, smiles) pairs")
    return _dedupe(ids, smiles, "<records>")
