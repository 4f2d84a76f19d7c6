"""A self-contained HTML report of one pipeline run: stages, data, retrieval, training, metrics.

Plots are embedded as base64 PNGs (and also saved next to the HTML), so the one file can be
mailed or attached to a CI run. Every section is optional: a run that skipped training still
gets a report with what it has.
"""
from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from os import PathLike
from pathlib import Path
from typing import Any

from ray_icma.report.plots import plot_losses, png_data_uri

__all__ = ["ReportData", "SECTION_IDS", "write_report"]

#: ids of the report's sections, in page order (tests and links use them).
SECTION_IDS = ("summary", "stages", "data", "retrieval", "training", "metrics", "generation", "samples")

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{font-size:1.6rem} h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem} th,td{border:1px solid #ddd;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#f4f4f4} td.num{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#777} img{max-width:100%;border:1px solid #eee} code,pre{background:#f7f7f7;padding:.1rem .3rem;font-size:.85rem}
pre{padding:.6rem;overflow:auto} td.text{max-width:420px;word-break:break-word}
"""


@dataclass
class ReportData:
    """Everything the report shows; every field but ``title`` may be empty.

    Attributes:
        title: page heading (the run name).
        run_dir: where the run's files are.
        config: the resolved pipeline config (shown as YAML-ish JSON).
        stages: ``{"name", "status" (ran|skipped|failed), "seconds", "detail"}`` per stage.
        data: one summary line per loaded file.
        retrieval: per task: retriever, k, score statistics, and optionally
            ``copy_baseline`` metrics (top-1 neighbour's answer used as the prediction).
        training: per task: ``loss_history``, ``metrics``, ``adapter_dir``, ``steps``.
        metrics: per task: ``{run label: {metric: value}}`` (e.g. ICMT vs retrieval copy).
        generation: per task: the predictions ``.meta.json`` (rows, invalid SMILES, tokens/s).
        samples: per task: a few prediction rows (input, reference, prediction).
    """

    title: str
    run_dir: str = ""
    config: Mapping[str, Any] = field(default_factory=dict)
    stages: Sequence[Mapping[str, Any]] = field(default_factory=list)
    data: Sequence[str] = field(default_factory=list)
    retrieval: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    training: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    metrics: Mapping[str, Mapping[str, Mapping[str, float]]] = field(default_factory=dict)
    generation: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    samples: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return _esc("-" if value is None else value)
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:.4f}" if abs(value) < 100 else f"{value:.1f}"
    return _esc(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], text_cols: Sequence[int] = ()) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for i, v in enumerate(row):
            cls = "text" if i in text_cols else ("num" if isinstance(v, (int, float)) and not isinstance(v, bool) else "")
            cells.append(f'<td class="{cls}">{_fmt(v)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _img(path: Path | None, alt: str) -> str:
    if path is None or not Path(path).is_file():
        return ""
    return f'<p><img alt="{_esc(alt)}" src="{png_data_uri(path)}"></p>'


def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{_esc(title)}</h2>{body or "<p class=muted>nothing recorded for this run</p>"}</section>'


def _summary(d: ReportData) -> str:
    rows = []
    for task, runs in d.metrics.items():
        for label, metrics in runs.items():
            rows.append((task, label, ", ".join(f"{k} {_fmt(v)}" for k, v in metrics.items())))
    total = sum(float(s.get("seconds") or 0) for s in d.stages)
    text = f"<p>Run dir: <code>{_esc(d.run_dir)}</code> &middot; total stage time {total:.1f} s</p>"
    return text + (_table(["task", "run", "metrics"], rows, text_cols=(2,)) if rows else "")


def _stages(d: ReportData) -> str:
    if not d.stages:
        return ""
    rows = [(s.get("name", ""), s.get("status", ""), float(s.get("seconds") or 0.0), s.get("detail", "")) for s in d.stages]
    return _table(["stage", "status", "seconds", "detail"], rows, text_cols=(3,))


def _data(d: ReportData) -> str:
    return "".join(f"<p><code>{_esc(line)}</code></p>" for line in d.data)


def _retrieval(d: ReportData, out_dir: Path) -> str:
    if not d.retrieval:
        return ""
    keys = ["retriever", "k", "queries", "mean_top1_score", "mean_topk_score", "empty"]
    rows = [[task] + [info.get(k, "") for k in keys] for task, info in d.retrieval.items()]
    body = _table(["task"] + keys, rows)
    baselines = {task: info["copy_baseline"] for task, info in d.retrieval.items() if info.get("copy_baseline")}
    if baselines:
        body += "<p>Retrieval quality as a prediction: the top-1 neighbour's answer copied as the output, scored with the same metrics.</p>"
        for task, metrics in baselines.items():
            body += f"<h3>{_esc(task)}</h3>" + _table(["metric", "value"], list(metrics.items()))
    return body


def _training(d: ReportData, out_dir: Path) -> str:
    if not d.training:
        return ""
    rows = []
    for task, info in d.training.items():
        metrics = info.get("metrics") or {}
        rows.append((task, info.get("steps", ""), info.get("adapter_dir") or info.get("model_dir") or "", ", ".join(f"{k} {_fmt(v)}" for k, v in metrics.items() if isinstance(v, (int, float)))))
    body = _table(["task", "steps", "adapter (or full model)", "final metrics"], rows, text_cols=(2, 3))
    png = plot_losses({task: info.get("loss_history") or [] for task, info in d.training.items()}, out_dir / "loss.png")
    return body + _img(png, "training loss")


def _metrics(d: ReportData, out_dir: Path) -> str:
    if not d.metrics:
        return ""
    body = []
    for task, runs in d.metrics.items():
        names = list(dict.fromkeys(m for metrics in runs.values() for m in metrics))  # first-seen order
        rows = [[label] + [metrics.get(m, float("nan")) for m in names] for label, metrics in runs.items()]
        body.append(f"<h3>{_esc(task)}</h3>" + _table(["run"] + names, rows))
        try:
            from ray_icma.evaluate import plot_runs

            png = plot_runs({label: dict(m) for label, m in runs.items()}, out_dir / f"metrics_{task}.png", title=f"{task} metrics")
            body.append(_img(png, f"{task} metrics"))
        except Exception as exc:  # noqa: BLE001 - a missing plot must not lose the table
            body.append(f"<p class=muted>plot unavailable: {_esc(exc)}</p>")
    return "".join(body)


def _generation(d: ReportData) -> str:
    if not d.generation:
        return ""
    keys = ["rows", "invalid_smiles", "errors", "empty_predictions", "mean_examples", "new_tokens", "seconds", "tokens_per_second", "max_new_tokens", "decoding"]
    rows = [[task] + [meta.get(k, "") for k in keys] for task, meta in d.generation.items()]
    return _table(["task"] + keys, rows)


def _samples(d: ReportData) -> str:
    body = []
    for task, rows in d.samples.items():
        table_rows = [(r.get("id", ""), r.get("input", ""), r.get("reference", ""), r.get("prediction", "")) for r in rows]
        body.append(f"<h3>{_esc(task)}</h3>" + _table(["id", "input", "reference", "prediction"], table_rows, text_cols=(1, 2, 3)))
    return "".join(body)


def write_report(data: ReportData, out_path: str | PathLike[str]) -> Path:
    """Write the HTML report (plots saved beside it and embedded inline).

    Args:
        data: what to show.
        out_path: the ``.html`` file; its folder also receives ``loss.png`` and ``metrics_<task>.png``.

    Returns:
        ``out_path``.
    """
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    sections = [
        _section("summary", "Summary", _summary(data)),
        _section("stages", "Stages", _stages(data)),
        _section("data", "Data", _data(data)),
        _section("retrieval", "Retrieval", _retrieval(data, out.parent)),
        _section("training", "Training (ICMT, LoRA)", _training(data, out.parent)),
        _section("metrics", "Evaluation metrics", _metrics(data, out.parent)),
        _section("generation", "Generation", _generation(data)),
        _section("samples", "Sample predictions", _samples(data)),
    ]
    config = f"<details><summary>config</summary><pre>{_esc(json.dumps(data.config, indent=2, default=str))}</pre></details>" if data.config else ""
    page = (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f"<title>ray-icma report: {_esc(data.title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>ray-icma report: {_esc(data.title)}</h1><p class=muted>generated {now}</p>{config}"
        + "".join(sections)
        + "</body></html>\n"
    )
    out.write_text(page, encoding="utf-8")
    return out
