"""Gather what a run dir holds into `ReportData` (the report never recomputes anything)."""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ray_icma.pipeline.config import PipelineConfig
from ray_icma.report import ReportData

__all__ = ["collect_report_data", "retrieval_stats"]

_SAMPLES = 5


def _load(path: Path) -> Any | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def retrieval_stats(contexts_path: Path) -> dict[str, Any] | None:
    """Score statistics of a contexts file: mean top-1 / top-k score, queries without neighbours."""
    from ray_icma.jobs.contexts import read_contexts

    if not contexts_path.is_file():
        return None
    table = read_contexts(contexts_path)
    top1, topk, empty = [], [], 0
    for query_id in table:
        _, scores = table[query_id]
        if not scores:
            empty += 1
            continue
        top1.append(float(scores[0]))
        topk.append(sum(scores) / len(scores))
    return {
        "retriever": table.retriever,
        "k": table.meta.get("k", max((len(table[q][0]) for q in table), default=0)),
        "queries": len(table),
        "mean_top1_score": sum(top1) / len(top1) if top1 else float("nan"),
        "mean_topk_score": sum(topk) / len(topk) if topk else float("nan"),
        "empty": empty,
    }


def _samples(path: Path, n: int = _SAMPLES) -> list[dict]:
    rows = []
    if path.is_file():
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    rows.append(json.loads(line))
                if len(rows) >= n:
                    break
    return rows


def collect_report_data(cfg: PipelineConfig, stages: Sequence[dict]) -> ReportData:
    """Build the report's content from the files in ``cfg.run_dir``."""
    run_dir = cfg.run_dir
    data_summary = _load(run_dir / "data" / "summary.json") or {}
    data_lines = [data_summary[k] for k in ("queries", "pool") if k in data_summary]
    if "n_queries_used" in data_summary:
        data_lines.append(f"queries used: {data_summary['n_queries_used']} ({cfg.data.query_sample} sample, seed {cfg.run.seed})")
    retrieval, training, metrics, generation, samples = {}, {}, {}, {}, {}
    for task in cfg.tasks:
        stats = retrieval_stats(run_dir / "contexts" / f"{task}_test.jsonl")
        copy = _load(run_dir / "metrics" / f"{task}_retrieval_copy.json")
        if stats is not None:
            if copy:
                stats["copy_baseline"] = copy["metrics"]
            retrieval[task] = stats
        result = _load(run_dir / "train" / task / "result.json")
        if result:
            training[task] = result
        label = f"ICMT {cfg.n_shot(task)}-shot" if cfg.train.enabled else f"base model {cfg.n_shot(task)}-shot"
        runs: dict[str, dict[str, float]] = {}
        evaluated = _load(run_dir / "metrics" / f"{task}.json")
        if evaluated:
            runs[label] = evaluated["metrics"]
        if copy:
            runs["retrieval top-1 copy"] = copy["metrics"]
        if runs:
            metrics[task] = runs
        meta = _load(run_dir / "predictions" / f"{task}.jsonl.meta.json")
        if meta:
            generation[task] = meta
        rows = _samples(run_dir / "predictions" / f"{task}.jsonl")
        if rows:
            samples[task] = rows
    return ReportData(
        title=cfg.run.name,
        run_dir=str(run_dir),
        config=cfg.model_dump(),
        stages=list(stages),
        data=data_lines,
        retrieval=retrieval,
        training=training,
        metrics=metrics,
        generation=generation,
        samples=samples,
    )
