"""Show evaluation results: a rich table per task, a JSON file, and a bar chart comparing runs.

Every helper takes `results: {run name: result}` where a result is either an `evaluate_file`
record (`{"task", "metrics", ...}`) or a bare metrics dict.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path

from ray_icma.evaluate.molecule_metrics import CAP2MOL_METRICS
from ray_icma.evaluate.text_metrics import MOL2CAP_METRICS

__all__ = ["METRIC_LABELS", "LOWER_IS_BETTER", "print_table", "write_json", "plot_runs", "run_names"]

METRIC_LABELS = {
    "bleu2": "BLEU-2", "bleu4": "BLEU-4", "rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L",
    "meteor": "METEOR", "bleu": "BLEU", "exact": "Exact", "levenshtein": "Levenshtein",
    "maccs_fts": "MACCS FTS", "rdk_fts": "RDK FTS", "morgan_fts": "Morgan FTS", "validity": "Validity",
}
#: Metrics where a smaller value is better (edit distances).
LOWER_IS_BETTER = frozenset({"levenshtein"})
_ORDER = {name: i for i, name in enumerate(MOL2CAP_METRICS + CAP2MOL_METRICS)}


def _metrics(result: Mapping) -> Mapping[str, float]:
    return result["metrics"] if "metrics" in result else result


def _task(result: Mapping) -> str:
    if "task" in result:
        return str(result["task"])
    keys = set(_metrics(result))
    if keys >= set(MOL2CAP_METRICS):
        return "mol2cap"
    if keys >= set(CAP2MOL_METRICS):
        return "cap2mol"
    return "metrics"


def _ordered(names) -> list[str]:
    return sorted(names, key=lambda n: (_ORDER.get(n, len(_ORDER)), n))


def run_names(paths: list[str | os.PathLike[str]]) -> list[str]:
    """Short unique labels for files: their stems, or the full paths where stems collide."""
    stems = [Path(p).stem for p in paths]
    return [s if stems.count(s) == 1 else str(p) for s, p in zip(stems, paths)]


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.3f}"


def _by_task(results: Mapping[str, Mapping]) -> dict[str, dict[str, Mapping]]:
    groups: dict[str, dict[str, Mapping]] = {}
    for name, result in results.items():
        groups.setdefault(_task(result), {})[name] = result
    return groups


def _best(metrics_of: Mapping[str, Mapping[str, float]], names: list[str]) -> dict[str, float]:
    """Best value per metric when several runs are compared (none for a single run)."""
    best = {}
    for m in names:
        vals = [v[m] for v in metrics_of.values() if v.get(m) is not None and not math.isnan(v[m])]
        if len(metrics_of) > 1 and vals:
            best[m] = min(vals) if m in LOWER_IS_BETTER else max(vals)
    return best


def print_table(results: Mapping[str, Mapping], console=None) -> None:
    """Print one rich table per task: metrics as rows, runs as columns, best value in bold green.

    Args:
        results: `{run name: evaluate_file record or metrics dict}`.
        console: a `rich.console.Console`; default a new one on stdout.
    """
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = console or Console()
    for task, runs in _by_task(results).items():
        metrics_of = {name: _metrics(r) for name, r in runs.items()}
        names = _ordered({m for metrics in metrics_of.values() for m in metrics})
        best = _best(metrics_of, names)
        table = Table(title=task, caption="Levenshtein: lower is better" if LOWER_IS_BETTER & set(names) else None)
        table.add_column("metric", style="cyan", no_wrap=True)
        for name in runs:
            table.add_column(name, justify="right", overflow="fold", min_width=6)
        if any("rows" in r for r in runs.values()):
            table.add_row("rows", *(str(r.get("rows", "")) for r in runs.values()), end_section=True)
        for m in names:
            cells = []
            for metrics in metrics_of.values():
                text = _fmt(metrics.get(m))
                # Text, not markup: values are printed as they are; the style spans the value only, not the padding
                cells.append(Text.assemble((text, "bold green" if m in best and metrics.get(m) == best[m] else "")))
            table.add_row(METRIC_LABELS.get(m, m), *cells)
        console.print(table)


def _nan_to_none(obj):
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, Mapping):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_none(v) for v in obj]
    return obj


def write_json(results: Mapping[str, Mapping], path: str | os.PathLike[str]) -> Path:
    """Write `results` as indented JSON (NaN becomes null, so any JSON reader accepts it).

    Returns:
        The written path.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(_nan_to_none(dict(results)), indent=2, sort_keys=False) + "\n", encoding="utf8")
    return out


def plot_runs(results: Mapping[str, Mapping], out_png: str | os.PathLike[str], title: str | None = None) -> Path:
    """Grouped bar chart comparing runs, one panel per task.

    Scores in [0, 1] share a panel per task; Levenshtein (an unbounded distance) gets its own.

    Args:
        results: `{run name: metrics dict or evaluate_file record}`.
        out_png: where to save the PNG.
        title: figure title; default "MolT5 metrics".

    Returns:
        The written path.

    Raises:
        ValueError: `results` is empty.
    """
    if not results:
        raise ValueError("plot_runs needs at least one run")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    panels = []  # (task, metric names, {run: metrics}, is_distance)
    for task, runs in _by_task(results).items():
        metrics_of = {name: _metrics(r) for name, r in runs.items()}
        names = _ordered({m for metrics in metrics_of.values() for m in metrics})
        unit = [m for m in names if m not in LOWER_IS_BETTER]
        dist = [m for m in names if m in LOWER_IS_BETTER]
        if unit:
            panels.append((task, unit, metrics_of, False))
        if dist:
            panels.append((task, dist, metrics_of, True))
    widths = [len(p[1]) + 1 for p in panels]
    n_runs = max(len(p[2]) for p in panels)
    fig, axes = plt.subplots(
        1, len(panels), figsize=(min(3 + 0.7 * sum(widths) * max(1.0, n_runs / 2), 24), 5),
        gridspec_kw={"width_ratios": widths}, squeeze=False,
    )
    for ax, (task, metrics, metrics_of, is_distance) in zip(axes[0], panels):
        x = np.arange(len(metrics))
        bar = 0.8 / len(metrics_of)
        values_seen = []
        for i, (run, values) in enumerate(metrics_of.items()):
            heights = [np.nan if values.get(m) is None else float(values[m]) for m in metrics]
            values_seen += [h for h in heights if not math.isnan(h)]
            bars = ax.bar(x - 0.4 + bar * (i + 0.5), heights, bar, label=run)
            ax.bar_label(bars, labels=[_fmt(h) for h in heights], fontsize=7, rotation=90, padding=2)
        ax.set_xticks(x, [METRIC_LABELS.get(m, m) for m in metrics], rotation=20, ha="right")
        if is_distance:
            ax.set_title(f"{task}: lower is better", fontsize=10)
            ax.set_ylim(0, max(values_seen, default=1.0) * 1.3 or 1.0)
        else:
            ax.set_title(task, fontsize=10)
            ax.set_ylim(0, 1.18)
            ax.legend(fontsize=8, loc="upper left")
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title or "MolT5 metrics")
    fig.tight_layout()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
