"""Property records: one molecule, its labels (some may be unknown), for single- and multi-label sets.

    from ray_icma.property import load_property_file
    result = load_property_file("../shared/data/moleculenet/tox21/train.csv", "tox21")
    print(result.summary())           # ...: 6264 rows read, 6264 loaded, 0 skipped
    result.records[0].labels          # (0, 0, 1, None, ...) in the set's label order

Files: MoleculeNet CSV (the set's own columns, read with the csv module so quoted SIDER headers
work), and the project's JSONL / Parquet (columns ``id``, ``smiles``, one column per label with
0, 1 or null, optional ``source``). Bad rows (wrong column count, empty or unparsable SMILES, a
label that is not 0/1/empty, a row with no known label, a duplicate id, bytes that are not UTF-8)
become `ray_icma.data.Problem`s naming file and line; strict mode raises the first one.
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Iterator

from ray_icma.data.loader import collect_rows
from ray_icma.data.problems import BAD_SMILES, COLUMNS, EMPTY_SMILES, DataError, LoadResult, Rejected
from ray_icma.data.readers import jsonl_objects, parquet_columns
from ray_icma.property.datasets import PropertySet, get_set

__all__ = ["PropertyRecord", "load_property_file", "write_property_records", "BAD_LABEL", "NO_LABEL", "DUPLICATE_ID"]

BAD_LABEL = "bad_label"  # a label cell that is not 0, 1 or empty
NO_LABEL = "no_label"  # every label of the row is unknown
DUPLICATE_ID = "duplicate_id"  # JSONL/Parquet id seen on an earlier row (that row is kept)

_TRUE = {"1", "1.0", "true", "yes"}
_FALSE = {"0", "0.0", "false", "no"}
_SHOWN = 80


@dataclass(frozen=True, slots=True)
class PropertyRecord:
    """One molecule with its labels.

    Attributes:
        id: unique within the set: ``<file stem>:<line>`` for CSV rows (e.g. ``train:17``), the
            ``id`` column for JSONL/Parquet.
        smiles: the SMILES as given (stripped).
        labels: one entry per label of the set, in the set's order: 1, 0 or None (not measured).
        source: ``<set>/<file stem>``.
    """

    id: str
    smiles: str
    labels: tuple[int | None, ...]
    source: str = ""

    def to_dict(self, label_columns: tuple[str, ...]) -> dict[str, Any]:
        return {"id": self.id, "smiles": self.smiles, **dict(zip(label_columns, self.labels)), "source": self.source}


@dataclass(slots=True)
class _Raw:
    line: int
    id: str = ""
    smiles: str = ""
    cells: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    problem: tuple[str, str] | None = None


def _label(value: Any) -> tuple[int | None, bool]:
    """(label, ok): 1/0 for true/false spellings, None for empty/null/NaN; ok False for anything else."""
    if value is None:
        return None, True
    if isinstance(value, bool):
        return int(value), True
    if isinstance(value, (int, float)):
        if isinstance(value, float) and math.isnan(value):
            return None, True
        return (int(value), True) if value in (0, 1) else (None, False)
    text = str(value).strip().lower()
    if text in ("", "nan", "null", "none"):
        return None, True
    if text in _TRUE:
        return 1, True
    if text in _FALSE:
        return 0, True
    return None, False


def _read_csv(path: Path, spec: PropertySet) -> Iterator[_Raw]:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not valid UTF-8 (byte 0x{data[exc.start:exc.start + 1].hex()}); re-save the file as UTF-8") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise DataError(f"{path}: empty file; expected a header with {spec.smiles_column} and {', '.join(spec.labels)}") from None
    missing = [c for c in (spec.smiles_column, *spec.labels) if c not in header]
    if missing:
        raise DataError(f"{path}:1: header has no column(s) {', '.join(missing)} for {spec.name}; found {', '.join(header[:8])}")
    where = {name: header.index(name) for name in (spec.smiles_column, *spec.labels)}
    stem = path.stem
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield _Raw(start, problem=(COLUMNS, f"unreadable CSV row ({exc})"))
            continue
        if not row or all(not c.strip() for c in row):
            yield _Raw(start, problem=(COLUMNS, f"empty line; expected {len(header)} comma-separated columns"))
            continue
        if len(row) != len(header):
            yield _Raw(start, problem=(COLUMNS, f"expected {len(header)} comma-separated columns (as the header), found {len(row)}"))
            continue
        yield _Raw(start, f"{stem}:{start}", row[where[spec.smiles_column]], {c: row[where[c]] for c in spec.labels})


def _read_table_rows(path: Path, spec: PropertySet) -> Iterator[_Raw]:
    """JSONL (one object a line) or Parquet (row number as line) with id, smiles, label columns."""
    needed = ("id", "smiles", *spec.labels)
    if path.suffix.lower() == ".parquet":
        data, n_rows = parquet_columns(path, needed, f"{spec.name} needs id, smiles, {', '.join(spec.labels)}")
        for i in range(n_rows):
            yield _Raw(i + 1, str(data["id"][i] or ""), str(data["smiles"][i] or ""), {c: data[c][i] for c in spec.labels},
                       source=(data.get("source") or [None] * n_rows)[i])
        return
    for number, obj, problem in jsonl_objects(path, needed, f"{spec.name} rows need id, smiles and every label"):
        if problem is not None:
            yield _Raw(number, problem=problem)
            continue
        yield _Raw(number, str(obj["id"] if obj["id"] is not None else ""), str(obj["smiles"] or ""), {c: obj[c] for c in spec.labels},
                   source=obj.get("source"))


def load_property_file(
    path: str | PathLike[str],
    dataset: str | PropertySet,
    *,
    strict: bool = False,
    validate_smiles: bool = True,
    source: str | None = None,
) -> LoadResult:
    """Load a MoleculeNet CSV (or the project's JSONL/Parquet) of one set into `PropertyRecord`s.

    Args:
        path: ``.csv``, ``.jsonl`` or ``.parquet``.
        dataset: the set's name (or spec): it says which columns hold the SMILES and the labels.
        strict: raise `DataError` at the first bad row instead of skipping it.
        validate_smiles: skip (and report) SMILES that RDKit cannot parse.
        source: value for ``PropertyRecord.source`` (default ``<set>/<file stem>``).

    Returns:
        ``LoadResult`` whose ``records`` are `PropertyRecord`s in file order.

    Raises:
        DataError: missing/unreadable file, a header without the set's columns, or (strict) a bad row.
    """
    from ray_icma.data.smiles_check import smiles_error

    spec = dataset if isinstance(dataset, PropertySet) else get_set(dataset)
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows = _read_csv(path, spec)
    elif suffix in (".jsonl", ".parquet"):
        rows = _read_table_rows(path, spec)
    else:
        raise DataError(f"{path}: unknown file type {suffix or '(no extension)'!r}; use .csv, .jsonl or .parquet")
    fallback = source or f"{spec.name}/{path.stem}"
    seen: dict[str, int] = {}

    def keep(row: _Raw) -> PropertyRecord | Rejected:
        smiles, rid = row.smiles.strip(), row.id.strip()
        if not rid:
            return Rejected(COLUMNS, "empty id; every row needs a unique id")
        if rid in seen:
            return Rejected(DUPLICATE_ID, f"duplicate id {rid}: line {seen[rid]} has it; that first row is kept")
        if not smiles:
            return Rejected(EMPTY_SMILES, f"empty SMILES (row {rid})")
        labels: list[int | None] = []
        for column in spec.labels:
            value, ok = _label(row.cells[column])
            if not ok:
                return Rejected(BAD_LABEL, f"label {column} is {str(row.cells[column])!r}; expected 0, 1 or empty (not measured)")
            labels.append(value)
        if all(v is None for v in labels):
            return Rejected(NO_LABEL, f"no known label (all of {', '.join(spec.labels[:3])}{'...' if spec.n_labels > 3 else ''} empty)")
        if validate_smiles:
            reason = smiles_error(smiles)
            if reason is not None:
                shown = smiles if len(smiles) <= _SHOWN else smiles[:_SHOWN] + "..."
                return Rejected(BAD_SMILES, f"RDKit cannot parse SMILES {shown!r}: {reason}")
        seen[rid] = row.line
        return PropertyRecord(rid, smiles, tuple(labels), str(row.source or fallback))

    return collect_rows(str(path), rows, keep, strict=strict)


def write_property_records(records: list[PropertyRecord], path: str | PathLike[str], dataset: str | PropertySet) -> Path:
    """Write records as the project's JSONL or Parquet (by extension); `load_property_file` reads them back."""
    spec = dataset if isinstance(dataset, PropertySet) else get_set(dataset)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [r.to_dict(spec.labels) for r in records]
    if path.suffix.lower() == ".jsonl":
        with path.open("w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    elif path.suffix.lower() == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns = {"id": pa.string(), "smiles": pa.string(), **{c: pa.int8() for c in spec.labels}, "source": pa.string()}
        table = pa.table({c: pa.array([r[c] for r in rows], type=t) for c, t in columns.items()})
        pq.write_table(table, path)
    else:
        raise ValueError(f"{path}: write .jsonl or .parquet")
    return path
