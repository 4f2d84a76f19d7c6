"""ROC-AUC and PR-AUC per label, their mean over labels (MoleculeNet's convention), bootstrap intervals.

MoleculeNet/OGB average ROC-AUC over the labels whose test rows hold both classes; a label with
only one class is left out (and reported). ROC-AUC here is the Mann-Whitney statistic with ties
counted half (identical to ``sklearn.metrics.roc_auc_score``); PR-AUC is average precision
(identical to ``sklearn.metrics.average_precision_score``). Intervals: percentile bootstrap over
test molecules (all of a molecule's labels move together), seeded.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["roc_auc", "pr_auc", "label_metrics", "mean_over_labels", "bootstrap_interval", "summarise"]


def roc_auc(y: Sequence[int], score: Sequence[float]) -> float:
    """ROC-AUC of scores for binary labels; NaN when only one class is present."""
    y = np.asarray(y, dtype=np.int64)
    score = np.asarray(score, dtype=np.float64)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    # average rank of each distinct score (1-based), ties share the mean rank
    ends = np.cumsum(counts)
    mean_rank = ends - (counts - 1) / 2.0
    ranks = mean_rank[inverse]
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def pr_auc(y: Sequence[int], score: Sequence[float]) -> float:
    """Average precision (step-wise PR-AUC, sklearn's rule); NaN without positives."""
    y = np.asarray(y, dtype=np.int64)
    score = np.asarray(score, dtype=np.float64)
    n_pos = int(y.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-score, kind="mergesort")
    y_sorted, s_sorted = y[order], score[order]
    # one threshold per distinct score (ties enter together)
    last_of_tie = np.r_[np.flatnonzero(np.diff(s_sorted)), len(s_sorted) - 1]
    tp = np.cumsum(y_sorted)[last_of_tie]
    fp = (last_of_tie + 1) - tp
    precision = tp / (tp + fp)
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def label_metrics(y: np.ndarray, score: np.ndarray, metric: str = "roc_auc") -> np.ndarray:
    """Per-label metric for matrices [n_molecules, n_labels] with NaN where a label is unknown."""
    fn = roc_auc if metric == "roc_auc" else pr_auc
    out = np.full(y.shape[1], np.nan)
    for j in range(y.shape[1]):
        known = ~np.isnan(y[:, j])
        if known.any():
            out[j] = fn(y[known, j].astype(np.int64), score[known, j])
    return out


def mean_over_labels(y: np.ndarray, score: np.ndarray, metric: str = "roc_auc") -> float:
    """Mean of the per-label metric over labels with both classes present (NaN if none)."""
    values = label_metrics(y, score, metric)
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else float("nan")


def bootstrap_interval(y: np.ndarray, score: np.ndarray, metric: str = "roc_auc", *, n_boot: int = 1000,
                       level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of `mean_over_labels` over molecule resamples (resamples without both classes skipped)."""
    rng = np.random.default_rng(seed)
    n = y.shape[0]
    values = []
    for _ in range(n_boot):
        pick = rng.integers(0, n, n)
        value = mean_over_labels(y[pick], score[pick], metric)
        if not np.isnan(value):
            values.append(value)
    if not values:
        return float("nan"), float("nan")
    alpha = (1 - level) / 2
    return float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))


def summarise(y: np.ndarray, score: np.ndarray, label_columns: Sequence[str], *, metrics: Sequence[str] = ("roc_auc",),
              n_boot: int = 1000, seed: int = 0) -> dict:
    """Per-label values, the mean over labels with both classes, and its bootstrap interval, per metric."""
    out: dict = {"n_molecules": int(y.shape[0]), "n_rows": int((~np.isnan(y)).sum())}
    for metric in metrics:
        per_label = label_metrics(y, score, metric)
        lo, hi = bootstrap_interval(y, score, metric, n_boot=n_boot, seed=seed)
        out[metric] = {
            "mean": mean_over_labels(y, score, metric),
            "ci95": [lo, hi],
            "per_label": {c: (None if np.isnan(v) else float(v)) for c, v in zip(label_columns, per_label)},
            "labels_used": int((~np.isnan(per_label)).sum()),
            "labels_skipped": [c for c, v in zip(label_columns, per_label) if np.isnan(v)],
        }
    return out
