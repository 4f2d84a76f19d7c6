"""`load_records`: any supported file -> `MoleculeRecord`s plus a report of the bad rows.

A row is kept when it has a CID, a SMILES and a text (each stripped of surrounding
whitespace, as ICMA's loaders do with ``.strip()``), its CID was not kept earlier in the file,
and RDKit parses the SMILES. Anything else becomes a `Problem`; nothing is dropped silently.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from os import PathLike
from pathlib import Path
from typing import Any, Protocol

from ray_icma.data.problems import (
    BAD_SMILES,
    DUPLICATE_CID,
    EMPTY_CID,
    EMPTY_SMILES,
    EMPTY_TEXT,
    DataError,
    LoadResult,
    Problem,
    Rejected,
)
from ray_icma.data.readers import RawRow, read_rows
from ray_icma.data.records import MoleculeRecord
from ray_icma.data.smiles_check import smiles_error

_SHOWN = 80  # characters of a SMILES quoted in a message


def default_source(path: Path) -> str:
    """`parent/stem`, e.g. ``chebi20/test`` for ``.../chebi20/test.txt``."""
    return f"{path.parent.name}/{path.stem}" if path.parent.name else path.stem


def _short(smiles: str) -> str:
    return smiles if len(smiles) <= _SHOWN else smiles[:_SHOWN] + "..."


class _RawRow(Protocol):
    line: int
    problem: tuple[str, str] | None


def collect_rows(path: str, rows: Iterable[_RawRow], keep: Callable[[Any], Any], *, strict: bool) -> LoadResult:
    """The one problem-collecting loop of every loader (molecule records here, property records in
    ``ray_icma.property.records``).

    Each raw row either carries its reader's ``problem``, or ``keep(row)`` turns it into a record
    or a :class:`Rejected`. Problems are collected in file order; ``strict`` raises the first.

    Raises:
        DataError: ``strict`` and a bad row (its message is ``<file>:<line>: <what is wrong>``).
    """
    records: list = []
    problems: list[Problem] = []
    for row in rows:
        outcome = Rejected(*row.problem) if row.problem is not None else keep(row)
        if isinstance(outcome, Rejected):
            problem = Problem(path, row.line, outcome.kind, outcome.message)
            if strict:
                raise DataError.from_problem(problem)
            problems.append(problem)
        else:
            records.append(outcome)
    return LoadResult(records=records, problems=problems, path=path)


def load_records(
    path: str | PathLike[str],
    *,
    strict: bool = False,
    validate_smiles: bool = True,
    source: str | None = None,
) -> LoadResult:
    """Load a TSV (.txt/.tsv), JSONL or Parquet file of molecules with their texts.

    Args:
        path: the file; its extension picks the format. TSV files may have a header
            (``CID<TAB>SMILES<TAB>description`` or ``cid<TAB>SMILES<TAB>description``).
        strict: raise `DataError` at the first bad row instead of skipping it.
        validate_smiles: parse each SMILES with RDKit (~0.1 ms a row) and skip the ones it
            rejects. Off: only empty SMILES are caught.
        source: value for `MoleculeRecord.source`; default: the file's own ``source``
            column (JSONL/Parquet) or ``<parent dir>/<file stem>``.

    Returns:
        LoadResult with the good records in file order and one `Problem` per skipped row.

    Raises:
        DataError: the file is missing, unreadable or has an unusable header; in strict mode
            also for the first bad row (message ``<file>:<line>: <what is wrong>``).
    """
    path = Path(path)
    fallback_source = source if source is not None else default_source(path)
    kept_at: dict[str, tuple[int, str, str]] = {}  # cid -> (line, smiles, text) of the kept row

    def keep(row: RawRow) -> MoleculeRecord | Rejected:
        cid, smiles, text = row.cid.strip(), row.smiles.strip(), row.text.strip()
        if not cid:
            return Rejected(EMPTY_CID, "empty CID; every row needs its PubChem CID")
        if not smiles:
            return Rejected(EMPTY_SMILES, f"empty SMILES for CID {cid}")
        if not text:
            return Rejected(EMPTY_TEXT, f"empty description for CID {cid}")
        if cid in kept_at:
            first_line, first_smiles, first_text = kept_at[cid]
            if (first_smiles, first_text) == (smiles, text):
                same = "an identical row"
            else:
                same = "a different SMILES" if first_smiles != smiles else "a different description"
            return Rejected(DUPLICATE_CID, f"duplicate CID {cid}: line {first_line} has it with {same}; that first row is kept")
        if validate_smiles:
            reason = smiles_error(smiles)
            if reason is not None:
                return Rejected(BAD_SMILES, f"RDKit cannot parse SMILES {_short(smiles)!r} of CID {cid}: {reason}")
        kept_at[cid] = (row.line, smiles, text)
        row_source = source if source is not None else (row.source or fallback_source)
        return MoleculeRecord(cid=cid, smiles=smiles, text=text, source=row_source)

    return collect_rows(str(path), read_rows(path), keep, strict=strict)
