"""Load a records file for a command: bad rows are listed (first five) and skipped, a file with
no usable row or a strict-mode error ends the command with one clear line."""
from __future__ import annotations

import logging
from pathlib import Path

import typer

from ray_icma.cli._errors import fail

log = logging.getLogger(__name__)


def load_records_or_fail(path: Path, what: str, *, validate_smiles: bool) -> list:
    """The records of ``path``; ``what`` names the file in messages ("queries", "pool")."""
    from ray_icma.data import DataError, load_records

    try:
        result = load_records(path, validate_smiles=validate_smiles)
    except DataError as exc:
        fail(f"cannot load {what}: {exc}")
    if result.problems:
        # plain text: problem messages quote SMILES such as [C@@H], which rich markup would eat
        typer.secho(f"{what}: skipped {len(result.problems)} bad row(s) of {path}", fg=typer.colors.YELLOW, err=True)
        for problem in result.problems[:5]:
            typer.echo(f"  {problem}", err=True)
        if len(result.problems) > 5:
            typer.echo(f"  ... and {len(result.problems) - 5} more", err=True)
    if not result.records:
        fail(f"{what} file {path} has no usable rows")
    log.info("%s: %d record(s) from %s", what, len(result.records), path)
    return result.records
