"""`ray-icma`: the command line. Each sub-command lives in its own module and imports its
heavy dependencies inside the command body, so `ray-icma --help` is instant."""
from __future__ import annotations

import typer

from importlib.metadata import entry_points

from ray_icma.cli import contexts, data, evaluate, generate, index, pipeline, train

app = typer.Typer(
    name="ray-icma",
    help=(
        "In-Context Molecule Adaptation on Ray: retrieve similar molecules/captions, re-rank them, "
        "LoRA-tune an LLM on in-context prompts, generate, evaluate and serve.\n\n"
        "Start with:  ray-icma pipeline configs/pipeline/quickstart.yaml"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

for module in (data, index, contexts, train, generate, evaluate, pipeline):
    module.register(app)

# Commands of upper layers (`serve` registers `ray-icma serve`) arrive as plugins, so this package
# never imports them: entry points in group "ray_icma.cli" name a `register(app)` function.
for plugin in entry_points(group="ray_icma.cli"):
    plugin.load()(app)


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
