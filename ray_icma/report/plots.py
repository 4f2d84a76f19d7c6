"""PNG plots for the run report (matplotlib, Agg backend, no display needed)."""
from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

__all__ = ["loss_points", "plot_losses", "png_data_uri"]


def loss_points(history: Sequence[Any]) -> tuple[list[float], list[float]]:
    """``(steps, losses)`` from a loss history in any of the shapes training code writes.

    Accepts plain floats (step = position + 1), ``(step, loss)`` pairs, or dicts with a
    ``step`` (or ``iteration``) key and a ``loss`` (or ``train_loss``) key. Entries without a
    finite loss are skipped.
    """
    steps: list[float] = []
    losses: list[float] = []
    for pos, item in enumerate(history):
        if isinstance(item, Mapping):
            step = item.get("step", item.get("iteration", pos + 1))
            loss = item.get("loss", item.get("train_loss"))
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            step, loss = item
        else:
            step, loss = pos + 1, item
        try:
            loss = float(loss)
            step = float(step)
        except (TypeError, ValueError):
            continue
        if math.isfinite(loss):
            steps.append(step)
            losses.append(loss)
    return steps, losses


def plot_losses(histories: Mapping[str, Sequence[Any]], out_png: str | PathLike[str], title: str = "Training loss") -> Path | None:
    """One line per run (e.g. per task) of loss against optimizer step.

    Returns:
        The PNG path, or None when no history has a single finite point.
    """
    curves = {name: loss_points(h) for name, h in histories.items()}
    curves = {name: c for name, c in curves.items() if c[0]}
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for name, (steps, losses) in curves.items():
        ax.plot(steps, losses, marker="o" if len(steps) < 30 else None, markersize=3, label=name)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def png_data_uri(path: str | PathLike[str]) -> str:
    """``data:image/png;base64,...`` for embedding a PNG in a self-contained HTML file."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")
