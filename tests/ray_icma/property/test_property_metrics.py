"""ROC-AUC / PR-AUC against scikit-learn, MoleculeNet's mean over labels, bootstrap intervals."""
from __future__ import annotations

import numpy as np
import pytest

sk = pytest.importorskip("sklearn.metrics")

from ray_icma.property.metrics import bootstrap_interval, label_metrics, mean_over_labels, pr_auc, roc_auc, summarise  # noqa: E402


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_equals_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 200)
    score = np.round(rng.random(200) * 0.5 + 0.4 * y, 1)  # coarse: many ties
    assert roc_auc(y, score) == pytest.approx(sk.roc_auc_score(y, score), abs=1e-12)
    assert pr_auc(y, score) == pytest.approx(sk.average_precision_score(y, score), abs=1e-12)


def test_one_class_label_is_left_out_of_the_mean():
    y = np.array([[1, 0, np.nan], [0, 0, 1], [1, 0, 0], [0, 0, np.nan]], dtype=float)
    s = np.array([[0.9, 0.1, 0.5], [0.2, 0.3, 0.7], [0.4, 0.2, 0.1], [0.5, 0.9, 0.3]])
    per = label_metrics(y, s)
    assert np.isnan(per[1])  # label 2 has only negatives
    assert per[0] == pytest.approx(sk.roc_auc_score(y[:, 0], s[:, 0]))
    assert per[2] == pytest.approx(1.0)  # unknown cells are ignored
    assert mean_over_labels(y, s) == pytest.approx((per[0] + per[2]) / 2)
    out = summarise(y, s, ["a", "b", "c"], n_boot=50)
    assert out["roc_auc"]["labels_skipped"] == ["b"] and out["roc_auc"]["labels_used"] == 2


def test_bootstrap_interval_is_seeded_and_brackets_the_value():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, (120, 2)).astype(float)
    s = y * 0.3 + rng.random((120, 2))
    lo, hi = bootstrap_interval(y, s, n_boot=300, seed=7)
    assert (lo, hi) == bootstrap_interval(y, s, n_boot=300, seed=7)
    assert lo < mean_over_labels(y, s) < hi and hi - lo < 0.3
    assert bootstrap_interval(y, s, n_boot=300, seed=8) != (lo, hi)
