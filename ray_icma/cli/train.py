"""`ray-icma train CONFIG [key=value ...]`: LoRA in-context molecule tuning on Ray Train.

Heavy imports (torch, ray, deepspeed) happen inside the command so `ray-icma --help` stays fast.
Config and data errors print their problems and exit 1; no tracebacks.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ray_icma.cli._console import console as _console
from ray_icma.cli._errors import fail as _fail


def train(
    config: Path = typer.Argument(..., help="Training YAML, e.g. configs/train/smollm2_135m/icmt_mol2cap.yaml."),
    overrides: Optional[List[str]] = typer.Argument(None, help="dotted.key=value overrides, e.g. optim.lr=3e-4 zero_stage=3."),
    validate_only: bool = typer.Option(False, "--validate", help="Check the config (and overrides), print it, do not train."),
) -> None:
    """Fine-tune a LoRA adapter on in-context prompts (ICMA), then export it.

    Connects to RAY_ADDRESS when set, else starts a local Ray. Re-running with the same run.name and run.storage_path resumes from the run's latest checkpoint.
    """
    import json

    from ray_icma.config import ConfigError
    from ray_icma.train.config import load_train_config

    console = _console()  # no markup: paths and run names print as written
    try:
        cfg = load_train_config(config, overrides or [])
    except ConfigError as exc:
        _fail(str(exc))
    if validate_only:
        console.print_json(json.dumps(cfg.model_dump()))
        console.print(f"ok: {config} is valid", style="green")
        return

    from ray_icma.data.problems import DataError
    from ray_icma.train import run_training

    data = cfg.data
    console.print(
        f"ray-icma train {cfg.model.name} | {data.task} {data.n_shot}-shot "
        f"({'contexts ' + data.contexts if data.contexts else 'zero-shot'}) | {cfg.strategy}"
        f"{f' ZeRO-{cfg.zero_stage}' if cfg.strategy == 'deepspeed' else ''} x {cfg.scaling.num_workers} workers "
        f"({'GPU' if cfg.scaling.use_gpu else 'CPU'}, precision {cfg.precision}) | run {cfg.run.storage_path}/{cfg.run.name}"
    )
    try:
        result = run_training(cfg)
    except (DataError, FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    except RuntimeError as exc:  # run_training turns ray.train.TrainingFailedError into one line
        _fail(str(exc).splitlines()[0] + " (see the worker logs above)")
    except Exception as exc:  # anything else Ray Train raises (re-raised unless TrainingFailedError): one line
        import ray.train

        if not isinstance(exc, ray.train.TrainingFailedError):
            raise
        _fail(f"training failed: {str(exc).strip().splitlines()[-1]} (see the worker logs above)")
    history = result.loss_history
    if history:
        console.print(f"steps {history[-1]['step']}, loss {history[0]['loss']:.4f} -> {history[-1]['loss']:.4f}")
    console.print(f"checkpoint: {result.checkpoint_path}")
    console.print(f"loss curve: {Path(cfg.run.output_dir) / 'loss.csv'}")
    if result.merged_dir:
        console.print(f"merged model: {result.merged_dir}")
    if result.model_dir:
        console.print(f"model (full fine-tuning): {result.model_dir}", style="green")
    else:
        console.print(f"adapter: {result.adapter_dir}", style="green")


def register(app: typer.Typer) -> None:
    """Attach this module's command(s) to the root app."""
    app.command("train")(train)
