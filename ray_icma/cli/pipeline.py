"""`ray-icma pipeline CONFIG [key=value ...]`: the whole ICMA flow in one resumable command."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ray_icma.cli._console import console as _console
from ray_icma.cli._errors import bad_choice
from ray_icma.cli._errors import fail as _fail


def pipeline(
    config: Path = typer.Argument(..., help="Pipeline YAML, or a packaged one by name (quickstart, tiny; `ray-icma configs list`)."),
    overrides: Optional[List[str]] = typer.Argument(None, help="dotted.key=value overrides, e.g. run.name=try2 train.optim.max_steps=20."),
    rerun: Optional[List[str]] = typer.Option(None, "--rerun", help="Rerun this stage (and every later one) even if its outputs exist."),
) -> None:
    """Data -> contexts -> ICMT LoRA training (Ray Train) -> generation (Ray Data) -> evaluation -> HTML report.

    Each stage writes into runs/<run.name>/ and is skipped when its outputs exist, so rerunning
    the same command resumes an interrupted run.
    """
    import time

    from rich.table import Table
    from rich.text import Text

    from ray_icma.config import ConfigError
    from ray_icma.pipeline import STAGES, load_pipeline_config, run_pipeline

    from ray_icma.resources import resolve_config

    try:
        config = resolve_config(config, kind="pipeline")
    except FileNotFoundError as exc:
        _fail(str(exc))
    bad = [s for s in (rerun or []) if s not in STAGES]
    if bad:
        bad_choice("--rerun", f"{', '.join(bad)}: stages are {', '.join(STAGES)}")
    try:
        cfg = load_pipeline_config(config, overrides or [])
    except ConfigError as exc:
        _fail(str(exc))
    for label, path in (("data.queries", cfg.data.queries), ("data.pool", cfg.data.pool)):
        if not Path(path).is_file():
            _fail(f"{label}: {path} not found (relative paths: from the current directory, else the folder above the config's configs/)")
    console = _console()
    console.print(Text.assemble(
        "ray-icma pipeline: run ", (cfg.run.name, "bold"),
        f" -> {cfg.run_dir}/  (tasks {', '.join(cfg.tasks)}, model {cfg.model.name})",
    ))
    start = time.perf_counter()
    try:
        result = run_pipeline(cfg, rerun=rerun or [], say=lambda line: console.print(line))
    except KeyboardInterrupt:
        _fail(f"interrupted; rerun the same command to resume from {cfg.run_dir}")
    except Exception as exc:  # noqa: BLE001 - one line for users; stages.json has the stage that failed
        _fail(f"pipeline failed: {type(exc).__name__}: {exc}  (finished stages are kept in {cfg.run_dir}; rerun to resume)")
    table = Table("task", "metric", "value", title="metrics")
    for task, metrics in result.metrics.items():
        for name, value in metrics.items():
            table.add_row(task, name, f"{value:.4f}" if isinstance(value, float) else str(value))
    console.print(table)
    console.print(Text.assemble(f"done in {time.perf_counter() - start:.0f} s. Report: ", (str(result.report_path), "bold")))


def register(app: typer.Typer) -> None:
    """Attach this module's command(s) to the root app."""
    app.command("pipeline")(pipeline)
