"""`ray-icma property ...`: MoleculeNet property prediction by in-context molecule tuning.

    ray-icma property inspect tox21 --split scaffold        # sizes, label balance, bad rows (file:line)
    ray-icma property split hiv --kind scaffold --out data/hiv_scaffold --format parquet
    ray-icma property run configs/pipeline/property_bbbp.yaml [key=value ...]
    ray-icma property predict bbbp "CC(=O)Oc1ccccc1C(=O)O" --adapter runs/property/bbbp_scaffold/icmt/adapter
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Literal, Optional

import typer

from ray_icma.cli._errors import fail as _fail

property_app = typer.Typer(
    name="property",
    help="MoleculeNet property prediction (BACE, BBBP, ClinTox, HIV, SIDER, Tox21): ICMA Yes/No prompts, ICMT, AUC.",
    no_args_is_help=True,
    rich_markup_mode=None,  # help texts and values are never rich markup
)

# choices are Literal options: a wrong value is a usage error (exit 2), as in every ray-icma command
_Set = Literal["bace", "bbbp", "clintox", "hiv", "sider", "tox21"]
_Split = Literal["icma", "scaffold"]

_ROOT_HELP = "Folder with <set>/{train,validation,test}.csv (default $RAY_ICMA_MOLECULENET or ../shared/data/moleculenet)."


def _splits(dataset: str, kind: str, root: Optional[Path]):
    from ray_icma.data import DataError
    from ray_icma.property import load_property_splits

    try:
        return load_property_splits(dataset, kind, root=root)
    except (DataError, ValueError) as exc:
        _fail(str(exc))


def _report_bad_rows(results) -> None:
    problems = [p for r in results for p in r.problems]
    if problems:
        typer.secho(f"skipped {len(problems)} bad row(s):", fg=typer.colors.YELLOW, err=True)
        for problem in problems[:5]:
            typer.echo(f"  {problem}", err=True)
        if len(problems) > 5:
            typer.echo(f"  ... and {len(problems) - 5} more", err=True)


@property_app.command("inspect")
def inspect(
    dataset: _Set = typer.Argument(..., help="bace, bbbp, clintox, hiv, sider or tox21."),
    split: _Split = typer.Option("icma", "--split", help="icma (ICMA's files) or scaffold (Bemis-Murcko, from their union)."),
    root: Optional[Path] = typer.Option(None, "--root", help=_ROOT_HELP),
) -> None:
    """Molecules per split, and per label: Yes / No / not measured."""
    from ray_icma.property import get_set

    splits, results = _splits(dataset, split, root)
    _report_bad_rows(results)
    spec = get_set(dataset)
    typer.echo(f"{spec.name} ({split} split): " + ", ".join(f"{k} {len(v)}" for k, v in splits.items()))
    for j, (column, name) in enumerate(zip(spec.labels, spec.label_names)):
        counts = []
        for part, records in splits.items():
            yes = sum(r.labels[j] == 1 for r in records)
            no = sum(r.labels[j] == 0 for r in records)
            unknown = len(records) - yes - no
            counts.append(f"{part} {yes}/{no}" + (f"/{unknown}?" if unknown else ""))
        typer.echo(f"  {column} ({name}): yes/no{'/unknown' if any('?' in c for c in counts) else ''}: " + ", ".join(counts))


@property_app.command("split")
def split(
    dataset: _Set = typer.Argument(..., help="bace, bbbp, clintox, hiv, sider or tox21."),
    out: Path = typer.Option(..., "--out", help="Folder to write train/validation/test into."),
    kind: _Split = typer.Option("scaffold", "--kind", help="scaffold (deterministic Bemis-Murcko) or icma (the files as given)."),
    fmt: Literal["jsonl", "parquet"] = typer.Option("jsonl", "--format", help="jsonl or parquet (the project's format: id, smiles, one column per label)."),
    root: Optional[Path] = typer.Option(None, "--root", help=_ROOT_HELP),
) -> None:
    """Write a split in the project's JSONL/Parquet format (readable by every `property` command)."""
    from ray_icma.property import write_property_records

    splits, results = _splits(dataset, kind, root)
    _report_bad_rows(results)
    for part, records in splits.items():
        path = write_property_records(records, out / f"{part}.{fmt}", dataset)
        typer.echo(f"wrote {path}: {len(records)} molecules")


@property_app.command("run")
def run(
    config: Path = typer.Argument(..., help="Property pipeline YAML, e.g. configs/pipeline/property_bbbp.yaml."),
    overrides: Optional[List[str]] = typer.Argument(None, help="dotted.key=value overrides, e.g. split=icma train.rows=200."),
) -> None:
    """Neighbours -> ICMT LoRA (Ray Train) -> P(Yes) scoring (Ray Data) -> ROC-AUC vs k-NN vote and random forest."""
    from ray_icma.config import ConfigError
    from ray_icma.data import DataError
    from ray_icma.property.config import load_property_config
    from ray_icma.property.run import run_property

    try:
        cfg = load_property_config(config, overrides or [])
    except ConfigError as exc:
        _fail(str(exc))
    try:
        result = run_property(cfg, say=lambda m: typer.echo(m, err=True))
    except (DataError, ValueError, FileNotFoundError, RuntimeError) as exc:
        _fail(str(exc))
    metric = "roc_auc"
    typer.echo(f"{result['dataset']} / {result['split']}: ROC-AUC (mean over labels), 95% bootstrap interval, "
               f"{result['sizes']['test_rows_scored']} test rows")
    for method, summary in result["same_rows"].items():
        m = summary[metric]
        line = f"  {method:6s} {m['mean']:.3f} [{m['ci95'][0]:.3f}, {m['ci95'][1]:.3f}]"
        if "pr_auc" in summary:
            line += f"   PR-AUC {summary['pr_auc']['mean']:.3f}"
        typer.echo(line)
    typer.echo(f"results: {Path(cfg.out_dir) / (result['dataset'] + '_' + result['split']) / 'results.json'}")


@property_app.command("predict")
def predict(
    dataset: _Set = typer.Argument(..., help="The set whose labels to predict (its training split gives the examples)."),
    smiles: List[str] = typer.Argument(..., help="One or more SMILES."),
    adapter: Optional[Path] = typer.Option(None, "--adapter", help="LoRA adapter dir from `property run` (default: base model)."),
    model: str = typer.Option("smollm2-135m", "--model", help="Base model spec."),
    split: _Split = typer.Option("scaffold", "--split", help="Whose training split supplies the neighbours."),
    n_shot: int = typer.Option(2, "--n-shot", min=0, help="Examples per prompt (as trained)."),
    root: Optional[Path] = typer.Option(None, "--root", help=_ROOT_HELP),
) -> None:
    """Print P(Yes) per label for each SMILES (JSON)."""
    from ray_icma.property.predict import BadSmiles, PropertyPredictor

    if adapter is not None and not (adapter / "adapter_config.json").is_file():
        _fail(f"--adapter {adapter} has no adapter_config.json (expected a LoRA dir from `ray-icma property run`)")
    splits, _ = _splits(dataset, split, root)
    predictor = PropertyPredictor({dataset: splits["train"]}, model=model, adapter=str(adapter) if adapter else None, n_shot=n_shot)
    try:
        out = predictor.predict(dataset, smiles)
    except BadSmiles as exc:
        _fail(str(exc))
    typer.echo(json.dumps(out, indent=1))


def register(app: typer.Typer) -> None:
    """Attach `ray-icma property ...` to the root app."""
    app.add_typer(property_app, name="property")
