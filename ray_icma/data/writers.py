"""`write_records`: records -> JSONL, Parquet or TSV, chosen by the file extension.

All three formats hold the same columns (cid, smiles, text, source; TSV keeps the ChEBI-20
layout ``CID<TAB>SMILES<TAB>description`` and drops source) and read back with
`load_records` into equal records. Files are written to a temporary name and renamed, so a
crash never leaves half a file under the real name.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable
from os import PathLike
from pathlib import Path

from ray_icma.data.problems import DataError
from ray_icma.data.readers import file_format
from ray_icma.data.records import MoleculeRecord

COLUMNS = ("cid", "smiles", "text", "source")


def write_records(records: Iterable[MoleculeRecord], path: str | PathLike[str]) -> Path:
    """Write `records` to `path` (.jsonl, .parquet, or .txt/.tsv).

    Args:
        records: the records, written in order.
        path: destination; parent folders are created.

    Returns:
        The path written.

    Raises:
        DataError: unknown extension, or a TSV field containing a tab or newline (it would
            not read back as one row).
    """
    path = Path(path)
    fmt = file_format(path)
    records = list(records)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        if fmt == "jsonl":
            _write_jsonl(records, tmp)
        elif fmt == "parquet":
            _write_parquet(records, tmp)
        else:
            _write_tsv(records, tmp, path)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _write_jsonl(records: list[MoleculeRecord], tmp: Path) -> None:
    with tmp.open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r.to_dict(), ensure_ascii=False) + "\n")


def _write_parquet(records: list[MoleculeRecord], tmp: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(name, pa.string()) for name in COLUMNS])
    columns = {name: [getattr(r, name) for r in records] for name in COLUMNS}
    pq.write_table(pa.Table.from_pydict(columns, schema=schema), tmp)


def _write_tsv(records: list[MoleculeRecord], tmp: Path, path: Path) -> None:
    with tmp.open("w", encoding="utf-8", newline="\n") as f:
        f.write("CID\tSMILES\tdescription\n")
        for i, r in enumerate(records):
            fields = (r.cid, r.smiles, r.text)
            if any(ch in field for field in fields for ch in "\t\n\r"):
                raise DataError(
                    f"{path}: record {i} (CID {r.cid}) has a tab or newline in a field; write JSONL or Parquet instead"
                )
            f.write("\t".join(fields) + "\n")
