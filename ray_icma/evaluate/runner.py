"""Evaluate a prediction file end to end: read it, pick the task's metrics, return one record."""
from __future__ import annotations

import os
from pathlib import Path

from ray_icma.evaluate.molecule_metrics import cap2mol_metrics
from ray_icma.evaluate.predictions import Predictions, read_predictions
from ray_icma.evaluate.text_metrics import mol2cap_metrics

__all__ = ["evaluate_file", "evaluate_predictions"]


def evaluate_predictions(predictions: Predictions, tokenizer: str | os.PathLike[str] | None = None) -> dict[str, float]:
    """The task's MolT5 metrics for already-read predictions.

    Args:
        predictions: rows from `read_predictions` (or built in memory).
        tokenizer: SciBERT tokenizer folder or hub id (mol2cap only).

    Returns:
        `mol2cap_metrics(...)` or `cap2mol_metrics(...)` for `predictions.task`.
    """
    if predictions.task == "mol2cap":
        return mol2cap_metrics(predictions.references, predictions.predictions, tokenizer=tokenizer)
    if predictions.task == "cap2mol":
        return cap2mol_metrics(predictions.references, predictions.predictions)
    raise ValueError(f"unknown task {predictions.task!r}: use mol2cap or cap2mol")


def evaluate_file(
    path: str | os.PathLike[str],
    task: str | None = None,
    tokenizer: str | os.PathLike[str] | None = None,
) -> dict:
    """Score one prediction file with MolT5's metrics.

    Args:
        path: a MolT5 TSV or project JSONL prediction file.
        task: "mol2cap" or "cap2mol"; default: detected from the file.
        tokenizer: SciBERT tokenizer folder or hub id (mol2cap only).

    Returns:
        `{"path": str, "task": str, "rows": int, "metrics": {name: float}}`.

    Raises:
        PredictionFileError: the file is missing or malformed.
        TokenizerLoadError, WordNetMissingError: mol2cap resources are unavailable.
    """
    preds = read_predictions(path, task=task)
    return {
        "path": str(Path(path)),
        "task": preds.task,
        "rows": len(preds),
        "metrics": evaluate_predictions(preds, tokenizer=tokenizer),
    }
