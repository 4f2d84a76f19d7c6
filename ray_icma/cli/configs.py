"""`ray-icma configs`: the example configs that ship inside the package (usable from any folder)."""
from __future__ import annotations

import typer

from ray_icma.cli._errors import fail as _fail

configs_app = typer.Typer(
    name="configs",
    help="Packaged example configs: list them, print one, or print its path. Every CONFIG argument "
    "also takes such a name (e.g. `ray-icma pipeline quickstart`, `ray-icma serve serve/icma_app`).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@configs_app.command("list")
def list_configs() -> None:
    """Print the packaged configs as kind/name."""
    from ray_icma.resources import config_names

    for name in config_names():
        typer.echo(name)


@configs_app.command("show")
def show(name: str = typer.Argument(..., help="A packaged config, e.g. pipeline/quickstart.")) -> None:
    """Print a packaged config (redirect it to a file to start your own)."""
    from ray_icma.resources import resolve_config

    try:
        typer.echo(resolve_config(name).read_text(), nl=False)
    except FileNotFoundError as exc:
        _fail(str(exc))


@configs_app.command("path")
def path(name: str = typer.Argument(..., help="A packaged config, e.g. serve/icma_app.")) -> None:
    """Print where a packaged config lives (relative paths in it resolve from the folder above configs/)."""
    from ray_icma.resources import resolve_config

    try:
        typer.echo(str(resolve_config(name)))
    except FileNotFoundError as exc:
        _fail(str(exc))


def register(app: typer.Typer) -> None:
    """Attach `ray-icma configs ...` to the root app."""
    app.add_typer(configs_app, name="configs")
