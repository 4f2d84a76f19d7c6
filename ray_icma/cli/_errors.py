"""The one way every `ray-icma` command reports a user error: one plain line on stderr, exit 1.

Plain text on purpose (no rich markup): messages quote SMILES such as `[C@@H]`, which markup would eat.
"""
from __future__ import annotations

from typing import NoReturn

import typer


def fail(message: str) -> NoReturn:
    """Print ``error: message`` on stderr and exit with status 1 (no traceback)."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)
