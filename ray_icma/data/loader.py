"""`load_records`: any supported file -> `MoleculeRecord`s plus a report of the bad rows.

A row is kept when it has a CID, a SMILES and a text (each stripped of surrounding
whitespace, as ICMA's loaders do with ``.strip()``), its CID was not kept earlier in the file,
and RDKit parses the SMILES. Anything else becomes a `Problem`; nothing is dropped silently.
"""
from __future__ import annotations

from os import PathLike
from pathlib import Path

from ray_icma.data.problems import (
    BAD_SMILES,
    DUPLICATE_CID,
    EMPTY_CID,
    EMPTY_SMILES,
    EMPTY_TEXT,
    DataError,
    LoadResult,
    Problem,
)
from ray_icma.data.readers import read_rows
from ray_icma.data.records import MoleculeRecord
from ray_icma.data.smiles_check import smiles_error

_SHOWN = 80  # characters of a SMILES quoted in a message


def default_source(path: Path) -> str:
    """`parent/stem`, e.g. ``chebi20/test`` for ``.../chebi20/test.txt``."""
    return f"{path.parent.name}/{path.stem}" if path.parent.name else path.stem


def _short(smiles: str) -> str:
    return smiles if len(smiles) <= _SHOWN else smiles[:_SHOWN] + "..."


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
    shown_path = str(path)
    records: list[MoleculeRecord] = []
    problems: list[Problem] = []
    kept_at: dict[str, tuple[int, str, str]] = {}  # cid -> (line, smiles, text) of the kept row

    def report(line: int, kind: str, message: str) -> None:
        problem = Problem(shown_path, line, kind, message)
        if strict:
            raise DataError.from_problem(problem)
        problems.append(problem)

    for row in read_rows(path):
        if row.problem is not None:
            report(row.line, *row.problem)
            continue
        cid, smiles, text = row.cid.strip(), row.smiles.strip(), row.text.strip()
        if not cid:
            report(row.line, EMPTY_CID, "empty CID; every row needs its PubChem CID")
            continue
        if not smiles:
            report(row.line, EMPTY_SMILES, f"empty SMILES for CID {cid}")
            continue
        if not text:
            report(row.line, EMPTY_TEXT, f"empty description for CID {cid}")
            continue
        if cid in kept_at:
            first_line, first_smiles, first_text = kept_at[cid]
            if (first_smiles, first_text) == (smiles, text):
                same = "an identical row"
            else:
                same = "a different SMILES" if first_smiles != smiles else "a different description"
            report(row.line, DUPLICATE_CID, f"duplicate CID {cid}: line {first_line} has it with {same}; that first row is kept")
            continue
        if validate_smiles:
            reason = smiles_error(smiles)
            if reason is not None:
                report(row.line, BAD_SMILES, f"RDKit cannot parse SMILES {_short(smiles)!r} of CID {cid}: {reason}")
                continue
        kept_at[cid] = (row.line, smiles, text)
        row_source = source if source is not None else (row.source or fallback_source)
        records.append(MoleculeRecord(cid=cid, smiles=smiles, text=text, source=row_source))
    return LoadResult(records=records, problems=problems, path=shown_path)
