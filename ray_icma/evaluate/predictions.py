"""Read prediction files: MolT5's TSVs and this project's JSONL, with the task detected.

MolT5 TSV (read as MolT5 does: `csv.DictReader`, tab delimiter, `QUOTE_NONE`):
  - mol2cap: header `SMILES<TAB>ground truth<TAB>output`
  - cap2mol: header `description<TAB>ground truth<TAB>output`
Project JSONL, one object per line (what `ray-icma generate` writes):
  `{"id": str, "task": "mol2cap"|"cap2mol", "input": str, "reference": str, "prediction": str, ...}`
  A `null` prediction (a failed generation) is read as the empty string.

Any malformed row stops the read with the file and line: dropping rows would silently change
the scores.
"""
from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TASKS", "PredictionFileError", "Predictions", "read_predictions"]

TASKS = ("mol2cap", "cap2mol")
_TSV_INPUT_COLUMN = {"mol2cap": "SMILES", "cap2mol": "description"}
_TSV_COLUMNS = ("ground truth", "output")
_JSONL_KEYS = ("input", "reference", "prediction")


class PredictionFileError(ValueError):
    """A prediction file is missing, empty or malformed (the message names the file and line)."""


@dataclass(frozen=True)
class Predictions:
    """One prediction file, column-wise.

    Attributes:
        task: "mol2cap" (molecule -> caption) or "cap2mol" (caption -> molecule).
        inputs: the model inputs (SMILES for mol2cap, captions for cap2mol).
        references: ground-truth outputs.
        predictions: generated outputs.
        ids: row ids (JSONL `id`; the 0-based data row number for TSV files).
    """

    task: str
    inputs: list[str]
    references: list[str]
    predictions: list[str]
    ids: list[str]

    def __len__(self) -> int:
        return len(self.predictions)


def _check_task(task: str | None) -> None:
    if task is not None and task not in TASKS:
        raise PredictionFileError(f"unknown task {task!r}: use one of {', '.join(TASKS)}")


def _looks_like_jsonl(path: Path) -> bool:
    if path.suffix.lower() in {".jsonl", ".json", ".ndjson"}:
        return True
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        for line in fh:
            if line.strip():
                return line.lstrip().startswith("{")
    return False


def _tsv_task(path: Path, fieldnames: list[str], task: str | None) -> str:
    missing_common = [c for c in _TSV_COLUMNS if c not in fieldnames]
    candidates = [t for t, col in _TSV_INPUT_COLUMN.items() if col in fieldnames]
    expected = " or ".join(f"'{_TSV_INPUT_COLUMN[t]}\\tground truth\\toutput' ({t})" for t in TASKS)
    if missing_common or not candidates:
        raise PredictionFileError(
            f"{path}:1: header {fieldnames!r} lacks the MolT5 columns; expected {expected}"
        )
    if task is not None:
        if task not in candidates:
            raise PredictionFileError(
                f"{path}:1: task {task} needs a '{_TSV_INPUT_COLUMN[task]}' column; header is {fieldnames!r}"
            )
        return task
    if len(candidates) > 1:
        raise PredictionFileError(f"{path}:1: header has both SMILES and description columns; pass the task explicitly")
    return candidates[0]


def _read_tsv(path: Path, task: str | None) -> Predictions:
    with open(path, encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        fieldnames = reader.fieldnames
        if not fieldnames:
            raise PredictionFileError(f"{path}: the file is empty (expected a MolT5 TSV header line)")
        task = _tsv_task(path, list(fieldnames), task)
        input_col = _TSV_INPUT_COLUMN[task]
        inputs, refs, preds = [], [], []
        for row in reader:
            extra = row.get(None) or []
            missing = sum(1 for k in fieldnames if row.get(k) is None)
            if missing or extra:
                found = len(fieldnames) - missing + len(extra)
                raise PredictionFileError(
                    f"{path}:{reader.line_num}: expected {len(fieldnames)} tab-separated fields, found {found}"
                )
            inputs.append(row[input_col])
            refs.append(row["ground truth"])
            preds.append(row["output"])
    if not preds:
        raise PredictionFileError(f"{path}: header only, no prediction rows")
    return Predictions(task, inputs, refs, preds, [str(i) for i in range(len(preds))])


def _read_jsonl(path: Path, task: str | None) -> Predictions:
    ids: list[str] = []
    inputs: list[str] = []
    refs: list[str] = []
    preds: list[str] = []
    file_task, task_line = None, 0
    with open(path, encoding="utf-8-sig") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise PredictionFileError(f"{path}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(obj, dict):
                raise PredictionFileError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            row_task = obj.get("task")
            if row_task not in TASKS:
                raise PredictionFileError(f"{path}:{lineno}: 'task' is {row_task!r}; expected one of {', '.join(TASKS)}")
            if file_task is None:
                file_task, task_line = row_task, lineno
            elif row_task != file_task:
                raise PredictionFileError(
                    f"{path}:{lineno}: task {row_task} differs from {file_task} on line {task_line}; "
                    "keep one task per file"
                )
            if obj.get("prediction", "") is None:
                obj = {**obj, "prediction": ""}
            for key in _JSONL_KEYS:
                if not isinstance(obj.get(key), str):
                    got = "missing" if key not in obj else f"a {type(obj[key]).__name__}"
                    raise PredictionFileError(f"{path}:{lineno}: field {key!r} is {got}; expected a string")
            row_id = obj.get("id", str(len(ids)))
            if not isinstance(row_id, (str, int)) or isinstance(row_id, bool):
                raise PredictionFileError(f"{path}:{lineno}: field 'id' must be a string")
            ids.append(str(row_id))
            inputs.append(obj["input"])
            refs.append(obj["reference"])
            preds.append(obj["prediction"])
    if file_task is None:
        raise PredictionFileError(f"{path}: the file is empty (expected one JSON object per line)")
    if task is not None and task != file_task:
        raise PredictionFileError(f"{path}: rows are task {file_task}, but task {task} was requested")
    return Predictions(file_task, inputs, refs, preds, ids)


def read_predictions(path: str | os.PathLike[str], task: str | None = None) -> Predictions:
    """Read a MolT5 TSV or a project JSONL prediction file.

    Args:
        path: the file; JSONL when it ends in .jsonl/.json/.ndjson or starts with "{", else TSV.
        task: expected task; default: detected from the TSV header or the JSONL `task` field.

    Returns:
        The file's rows, column-wise.

    Raises:
        PredictionFileError: missing or empty file, unknown header, a row with the wrong number of
            fields, bad JSON, a missing field, mixed tasks, or a task other than `task`.
    """
    _check_task(task)
    p = Path(path)
    if not p.is_file():
        raise PredictionFileError(f"{p}: no such file")
    if p.stat().st_size == 0:
        raise PredictionFileError(f"{p}: the file is empty")
    try:
        return _read_jsonl(p, task) if _looks_like_jsonl(p) else _read_tsv(p, task)
    except UnicodeDecodeError as exc:
        raise PredictionFileError(f"{p}: not UTF-8 text ({exc.reason})") from None
