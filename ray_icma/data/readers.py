"""Turn TSV, JSONL and Parquet files into raw rows (line number + three strings).

Readers only split and decode; `loader` decides what is a good row. A row the reader cannot
even split (wrong column count, bytes that are not UTF-8, a JSONL line that is not an
object) comes out with its problem attached, so the loader reports it with its line number.
File-level failures (missing file, header without the needed columns) raise `DataError`.
"""
from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray_icma.data.problems import BAD_JSON, COLUMNS, ENCODING, DataError

TSV_SUFFIXES = (".txt", ".tsv")
JSONL_SUFFIXES = (".jsonl",)
PARQUET_SUFFIXES = (".parquet",)
SUPPORTED_SUFFIXES = TSV_SUFFIXES + JSONL_SUFFIXES + PARQUET_SUFFIXES

# Header names accepted for each field (lower-cased). ChEBI-20 and the PubChem324k caption
# splits say "CID SMILES description"; the IUPAC splits say "cid SMILES description".
HEADER_NAMES = {
    "cid": ("cid",),
    "smiles": ("smiles",),
    "text": ("description", "text", "caption", "iupac", "iupac name", "iupac_name"),
}
_ALL_HEADER_NAMES = {name for names in HEADER_NAMES.values() for name in names}


@dataclass(slots=True)
class RawRow:
    """One data row as read, before validation.

    `problem` is (kind, message) when the row could not be split into fields.
    """

    line: int
    cid: str = ""
    smiles: str = ""
    text: str = ""
    source: str | None = None
    problem: tuple[str, str] | None = None


def file_format(path: Path) -> str:
    """"tsv", "jsonl" or "parquet" from the file name; DataError for anything else."""
    suffix = path.suffix.lower()
    if suffix in TSV_SUFFIXES:
        return "tsv"
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    raise DataError(
        f"{path}: unknown file type {suffix or '(no extension)'!r}; "
        f"use one of {', '.join(SUPPORTED_SUFFIXES)}"
    )


def read_rows(path: Path) -> Iterator[RawRow]:
    """Rows of `path`, format chosen by extension."""
    fmt = file_format(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if fmt == "tsv":
        return read_tsv(path)
    if fmt == "jsonl":
        return read_jsonl(path)
    return read_parquet(path)


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, bytes without the line ending); no phantom last line."""
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):  # UTF-8 byte-order mark written by some editors
        data = data[3:]
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the file's final newline does not start a row
    for number, raw in enumerate(lines, start=1):
        yield number, raw[:-1] if raw.endswith(b"\r") else raw


def _decode(raw: bytes) -> tuple[str | None, tuple[str, str] | None]:
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        bad = raw[exc.start : exc.start + 1].hex()
        return None, (ENCODING, f"not valid UTF-8: byte 0x{bad} at byte {exc.start + 1} of the line; re-save the file as UTF-8")


def _header_columns(path: Path, fields: list[str]) -> dict[str, int] | None:
    """Column index of cid/smiles/text when `fields` is a header line, else None."""
    lowered = [f.strip().lower() for f in fields]
    if not any(name in _ALL_HEADER_NAMES for name in lowered):
        return None
    columns: dict[str, int] = {}
    for key, names in HEADER_NAMES.items():
        for index, name in enumerate(lowered):
            if name in names:
                columns[key] = index
                break
    missing = [k for k in HEADER_NAMES if k not in columns]
    if missing:
        raise DataError(
            f"{path}:1: header {fields!r} has no column for {', '.join(missing)}; "
            "expected CID<TAB>SMILES<TAB>description"
        )
    return columns


def read_tsv(path: Path) -> Iterator[RawRow]:
    """Tab-separated rows, header optional (detected by its column names).

    No quoting: ChEBI-20 captions contain double quotes that are plain text, as MolT5 and
    ICMA read them (``line.split("\\t")``).
    """
    columns = {"cid": 0, "smiles": 1, "text": 2}
    n_columns = 3
    names = "CID, SMILES, description"
    for number, raw in _lines(path):
        line, problem = _decode(raw)
        if problem is not None:
            yield RawRow(number, problem=problem)
            continue
        fields = line.split("\t")
        if number == 1:
            header = _header_columns(path, fields)
            if header is not None:
                columns, n_columns = header, len(fields)
                names = ", ".join(f.strip() for f in fields)
                continue
        if line.strip() == "":
            yield RawRow(number, problem=(COLUMNS, f"empty line; expected {n_columns} tab-separated columns ({names})"))
            continue
        if len(fields) != n_columns:
            yield RawRow(
                number,
                problem=(COLUMNS, f"expected {n_columns} tab-separated columns ({names}), found {len(fields)}"),
            )
            continue
        yield RawRow(number, fields[columns["cid"]], fields[columns["smiles"]], fields[columns["text"]])


def jsonl_objects(path: Path, needed: Sequence[str], needs: str) -> Iterator[tuple[int, dict[str, Any], tuple[str, str] | None]]:
    """``(line, object, problem)`` per line of a JSONL file whose objects must hold ``needed`` keys.

    A line that is not UTF-8, is empty, is not a JSON object or lacks a key comes with its
    ``(kind, message)`` problem (and an empty object); ``needs`` ends the missing-key message
    (e.g. ``"each line needs cid, smiles, text"``). Shared by every JSONL reader of the project.
    """
    for number, raw in _lines(path):
        line, problem = _decode(raw)
        if line is None:
            yield number, {}, problem
            continue
        if line.strip() == "":
            yield number, {}, (BAD_JSON, f"empty line; expected a JSON object with {', '.join(needed)}")
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, {}, (BAD_JSON, f"not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(obj, dict):
            yield number, {}, (BAD_JSON, f"expected a JSON object, found {type(obj).__name__}")
            continue
        missing = [k for k in needed if k not in obj]
        if missing:
            yield number, {}, (COLUMNS, f"missing key(s) {', '.join(missing)}; {needs}")
            continue
        yield number, obj, None


def parquet_columns(path: Path, needed: Sequence[str], expected: str) -> tuple[dict[str, list], int]:
    """A Parquet file's columns as lists, and its row count.

    Raises:
        DataError: unreadable, or a column of ``needed`` is missing (``expected`` ends the message).
    """
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise DataError(f"{path}: cannot read as Parquet ({exc})") from exc
    missing = [k for k in needed if k not in table.column_names]
    if missing:
        raise DataError(
            f"{path}: Parquet file has no column(s) {', '.join(missing)} (has {', '.join(table.column_names)}); {expected}"
        )
    return table.to_pydict(), table.num_rows


def read_jsonl(path: Path) -> Iterator[RawRow]:
    """One JSON object per line with keys cid, smiles, text (source optional)."""
    for number, obj, problem in jsonl_objects(path, ("cid", "smiles", "text"), "each line needs cid, smiles, text"):
        if problem is not None:
            yield RawRow(number, problem=problem)
            continue
        source = obj.get("source")
        yield RawRow(
            number,
            _as_text(obj["cid"]),
            _as_text(obj["smiles"]),
            _as_text(obj["text"]),
            source=str(source) if source else None,
        )


def read_parquet(path: Path) -> Iterator[RawRow]:
    """Rows of a Parquet file with columns cid, smiles, text (source optional).

    `RawRow.line` is the 1-based row number.
    """
    data, n_rows = parquet_columns(path, ("cid", "smiles", "text"), "expected cid, smiles, text")
    sources = data.get("source", [None] * n_rows)
    for index in range(n_rows):
        source = sources[index]
        yield RawRow(
            index + 1,
            _as_text(data["cid"][index]),
            _as_text(data["smiles"][index]),
            _as_text(data["text"][index]),
            source=str(source) if source else None,
        )


def _as_text(value: object) -> str:
    return "" if value is None else str(value)
