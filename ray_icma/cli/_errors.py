"""The two ways every `ray-icma` command reports a user error (README "CLI"):

- ``fail(message)``: the command ran and could not finish (missing file, bad data, dead server):
  one plain ``error: ...`` line on stderr, exit 1.
- ``bad_choice(...)``, or a ``Literal[...]`` annotation on the option: the command line itself is wrong
  (a value outside the allowed choices): a usage error, exit 2, as for an unknown option or a missing argument.

Plain text on purpose (no rich markup): messages quote SMILES such as `[C@@H]`, which markup would eat.
"""
from __future__ import annotations

from typing import NoReturn

import typer

USAGE_ERROR = 2  # a usage error's exit status in click and argparse


def fail(message: str) -> NoReturn:
    """Print ``error: message`` on stderr and exit with status 1 (no traceback)."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def bad_choice(param_hint: str, message: str) -> NoReturn:
    """A usage error for one parameter (exit 2, with the command's usage line)."""
    raise typer.BadParameter(message, param_hint=param_hint)
