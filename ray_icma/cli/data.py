"""`ray-icma data`: download the public data sets, inspect a file's rows, convert formats.

Heavy imports (rdkit, pyarrow, requests) happen inside the commands so `ray-icma --help`
stays instant. User errors print one line and exit 1; no tracebacks.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ray_icma.cli._console import console as _console
from ray_icma.cli._errors import fail as _fail

data_app = typer.Typer(
    name="data",
    help="Data sets: download ChEBI-20 / PubChem324k, inspect a file's problems, convert TSV to JSONL/Parquet.",
    no_args_is_help=True,
    rich_markup_mode=None,  # help texts and values are never rich markup
)


@data_app.command("list")
def list_datasets() -> None:
    """List the registered data sets and where they come from."""
    from rich.table import Table

    from ray_icma.data import DATASETS

    table = Table("name", "splits", "source", "description")
    for spec in DATASETS.values():
        table.add_row(spec.name, ", ".join(spec.splits), spec.base_url or spec.homepage, spec.description)
    _console().print(table)


@data_app.command("download")
def download(
    name: str = typer.Argument(..., help="Data set: chebi20 or pubchem324k (see `ray-icma data list`)."),
    to: Path = typer.Option(Path("data"), "--to", help="Data root; files land in <to>/<data set>/."),
    base_url: Optional[str] = typer.Option(
        None, "--base-url", envvar="RAY_ICMA_DATA_MIRROR",
        help="Fetch from this URL (a mirror) instead of the official one; same file names, checksums still checked.",
    ),
    split: Optional[list[str]] = typer.Option(
        None, "--split", help="Only these splits (repeatable, e.g. --split validation --split test); default: all."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Download a data set (resumable, sha256-checked) and print where its splits are."""
    import dataclasses

    from ray_icma.data import DATASETS, DataError, DownloadError, download_dataset

    if name not in DATASETS:
        raise typer.BadParameter(f"unknown data set {name!r}; choose from {', '.join(DATASETS)}", param_hint="NAME")
    spec = DATASETS[name]
    if split:
        unknown = sorted(set(split) - set(spec.splits))
        if unknown:
            raise typer.BadParameter(f"unknown split(s) {unknown} of {name}; choose from {', '.join(spec.splits)}", param_hint="--split")
        wanted = {Path(spec.splits[s]).name for s in split}
        files = tuple(f for f in spec.files if f.name in wanted)
        if spec.extract or len(files) != len(wanted):
            _fail(f"{name} ships its splits in one archive: download it without --split")
        spec = dataclasses.replace(spec, files=files)

    def warn(message: str) -> None:
        typer.secho(f"warning: {message}", fg=typer.colors.YELLOW, err=True)

    try:
        paths = download_dataset(spec, to, base_url=base_url or None, progress=progress, warn=warn)
    except (DownloadError, DataError) as exc:
        _fail(str(exc))
    for path in paths:
        typer.echo(str(path))
    typer.echo(f"{name}: {len(paths)} split file(s) under {Path(to) / DATASETS[name].local_dir}")


@data_app.command("inspect")
def inspect(
    path: Path = typer.Argument(..., help="A .txt/.tsv, .jsonl or .parquet file."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 when the file has any problem."),
    validate_smiles: bool = typer.Option(True, "--validate-smiles/--no-validate-smiles", help="Parse every SMILES with RDKit."),
    max_problems: int = typer.Option(50, "--max-problems", min=0, help="Problems to list (all are counted)."),
) -> None:
    """Print row counts and every problem (file:line kind message)."""
    from rich.table import Table

    from ray_icma.data import DataError, load_records
    from ray_icma.data.stats import file_stats

    try:
        result = load_records(path, validate_smiles=validate_smiles)
    except DataError as exc:
        _fail(str(exc))
    stats = file_stats(result, smiles_checked=validate_smiles)
    out = _console()
    counts = Table(title=str(path), show_header=False)
    counts.add_row("rows", str(stats.rows))
    counts.add_row("records loaded", str(stats.records))
    counts.add_row("unique CIDs", str(stats.unique_cids))
    counts.add_row("valid SMILES", "not checked" if stats.valid_smiles is None else str(stats.valid_smiles))
    counts.add_row("invalid SMILES (skipped)", str(stats.invalid_smiles))
    counts.add_row("mean caption length", f"{stats.mean_text_chars:.1f} chars, {stats.mean_text_words:.1f} words")
    counts.add_row("problems", ", ".join(f"{k} {n}" for k, n in sorted(stats.problems.items())) or "none")
    out.print(counts)
    if result.problems:
        # Plain tab-separated lines, never truncated or wrapped: file:line stays clickable/greppable.
        typer.echo(f"{len(result.problems)} problem(s):\nlocation\tkind\tmessage")
        for problem in result.problems[:max_problems]:
            typer.echo(f"{problem.location}\t{problem.kind}\t{problem.message}")
        if len(result.problems) > max_problems:
            typer.echo(f"... and {len(result.problems) - max_problems} more (--max-problems)")
    typer.echo(result.summary())
    if strict and result.problems:
        raise typer.Exit(1)


@data_app.command("convert")
def convert(
    src: Path = typer.Argument(..., metavar="IN", help="Input file (.txt/.tsv, .jsonl or .parquet)."),
    dst: Path = typer.Argument(..., metavar="OUT", help="Output file (.jsonl, .parquet or .tsv)."),
    strict: bool = typer.Option(False, "--strict", help="Stop at the first bad row instead of skipping it."),
    validate_smiles: bool = typer.Option(True, "--validate-smiles/--no-validate-smiles", help="Skip rows RDKit cannot parse."),
    source: Optional[str] = typer.Option(None, "--source", help="Value for the source column (default: <dir>/<stem> of IN)."),
) -> None:
    """Convert between formats; bad rows are skipped and counted (or stop with --strict)."""
    from ray_icma.data import DataError, load_records, write_records

    try:
        result = load_records(src, strict=strict, validate_smiles=validate_smiles, source=source)
        write_records(result.records, dst)
    except DataError as exc:
        _fail(str(exc))
    for problem in result.problems[:20]:
        typer.secho(f"skipped {problem}", fg=typer.colors.YELLOW, err=True)
    if len(result.problems) > 20:
        typer.echo(f"... and {len(result.problems) - 20} more skipped rows (see `ray-icma data inspect {src}`)", err=True)
    typer.echo(f"{result.summary()}; wrote {len(result.records)} records to {dst}")


def register(app: typer.Typer) -> None:
    """Attach `ray-icma data ...` to the root app."""
    app.add_typer(data_app, name="data")
