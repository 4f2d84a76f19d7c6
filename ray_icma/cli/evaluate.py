"""`ray-icma evaluate`: score prediction files with MolT5's metrics and compare runs.

Heavy imports (nltk, transformers, rdkit, matplotlib) happen inside the command so
`ray-icma --help` stays instant. User errors print one line and exit 1; no tracebacks.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ray_icma.cli._console import console as _console
from ray_icma.cli._errors import fail as _fail


def evaluate(
    pred_files: List[Path] = typer.Argument(
        ...,
        help="Prediction files: MolT5 TSVs (SMILES|description, ground truth, output) or ray-icma JSONL. "
        "Several files are compared as runs.",
        show_default=False,
        metavar="PRED_FILE...",
    ),
    task: Optional[str] = typer.Option(
        None, "--task", help="mol2cap or cap2mol; default: detected from each file's header / 'task' field."
    ),
    tokenizer: Optional[str] = typer.Option(
        None,
        "--tokenizer",
        help="SciBERT tokenizer folder or hub id for the caption metrics "
        "(default: $RAY_ICMA_SCIBERT, else allenai/scibert_scivocab_uncased).",
    ),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the results as JSON here."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also draw a bar chart comparing the runs (PNG)."),
) -> None:
    """Score prediction files exactly as MolT5's evaluation scripts do.

    mol2cap: BLEU-2/4, ROUGE-1/2/L, METEOR. cap2mol: BLEU, Exact, Levenshtein, MACCS/RDK/Morgan
    FTS, Validity. Several files are compared in one table (and chart with --plot).
    """
    from ray_icma.evaluate import (
        TASKS,
        PredictionFileError,
        TokenizerLoadError,
        WordNetMissingError,
        evaluate_predictions,
        plot_runs,
        print_table,
        read_predictions,
        run_names,
        write_json,
    )

    if task is not None and task not in TASKS:
        raise typer.BadParameter(f"unknown task {task!r}; choose {' or '.join(TASKS)}", param_hint="--task")
    if plot is not None and plot.suffix.lower() != ".png":
        raise typer.BadParameter(f"{plot} should end in .png", param_hint="--plot")

    # Read every file first, so a typo in the last one fails before minutes of scoring.
    loaded = []
    for path in pred_files:
        try:
            loaded.append(read_predictions(path, task=task))
        except PredictionFileError as exc:
            _fail(str(exc))

    err = _console(stderr=True)
    results = {}
    for name, path, preds in zip(run_names(list(pred_files)), pred_files, loaded):
        with err.status(f"scoring {path} ({preds.task}, {len(preds)} rows)"):
            try:
                metrics = evaluate_predictions(preds, tokenizer=tokenizer)
            except (TokenizerLoadError, WordNetMissingError) as exc:
                _fail(str(exc))
        results[name] = {"path": str(path), "task": preds.task, "rows": len(preds), "metrics": metrics}

    print_table(results, console=_console())
    if json_out is not None:
        err.print(f"wrote {write_json(results, json_out)}")
    if plot is not None:
        err.print(f"wrote {plot_runs(results, plot)}")


def register(app: typer.Typer) -> None:
    """Attach `evaluate` to the root app."""
    app.command("evaluate", no_args_is_help=True)(evaluate)
