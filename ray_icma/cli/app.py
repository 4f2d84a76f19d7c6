"""`ray-icma`: the command line. Each sub-command lives in its own module and imports its
heavy dependencies inside the command body, so `ray-icma --help` is instant.

Conventions every command follows (tests/ray_icma/cli):
- exit 0 on success; 1 when the command ran and failed (one ``error: ...`` line, no traceback);
  2 for command-line usage errors, a bad choice included (as click and argparse do);
- output never goes through rich markup (``_console.console``), so SMILES such as ``[nH]`` print as they are;
- ``-v``/``-vv``/``-q`` before the command set the log level (``_logging``); ``--version`` prints the version.
"""
from __future__ import annotations

from importlib.metadata import entry_points

import typer

from ray_icma import __version__
from ray_icma.cli import configs, contexts, data, evaluate, generate, index, pipeline, train
from ray_icma.cli._logging import configure_logging

app = typer.Typer(
    name="ray-icma",
    help=(
        "In-Context Molecule Adaptation on Ray: retrieve similar molecules/captions, re-rank them, "
        "LoRA-tune an LLM on in-context prompts, generate, evaluate and serve.\n\n"
        "Start with:  ray-icma pipeline quickstart   (or a YAML file of your own; `ray-icma configs list`)"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,  # help texts hold [key=value ...] and SMILES: never markup
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ray-icma {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More log output: -v INFO, -vv DEBUG."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors (also silences warnings)."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    configure_logging(verbose, quiet)


for module in (data, index, contexts, train, generate, evaluate, pipeline, configs):
    module.register(app)

from ray_icma.cli import property as _property  # noqa: E402 - `ray-icma property ...` (MoleculeNet)

_property.register(app)

# Commands of upper layers (`serve` registers `ray-icma serve`) arrive as plugins, so this package
# never imports them: entry points in group "ray_icma.cli" name a `register(app)` function.
for plugin in entry_points(group="ray_icma.cli"):
    plugin.load()(app)


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
