"""The two baselines run next to ICMT: k-NN vote of the prompt's own neighbours, and a random forest.

* k-NN vote: P(Yes) = share of "Yes" among the very examples the prompt shows (the first
  ``n_shot`` training neighbours with the label measured). ``build_property_rows`` stores it in
  each row's ``knn``; a row without examples scores the training prevalence of the label.
* Random forest on Morgan fingerprints (radius 2, 2048 bits), one per label, trained on the
  training molecules with that label measured: the model chemists compare against
  (scikit-learn ``RandomForestClassifier``, seeded).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ray_icma.property.records import PropertyRecord

__all__ = ["morgan_matrix", "random_forest_scores", "knn_scores", "knn_vote"]


def morgan_matrix(smiles: Sequence[str], n_bits: int = 2048) -> np.ndarray:
    """uint8 [n, n_bits] Morgan (radius 2) bits; all-zero rows for unparsable SMILES."""
    from rdkit import DataStructs

    from retrieval.featurize import morgan_fingerprints

    fps = morgan_fingerprints(list(smiles), n_bits=n_bits)
    out = np.zeros((len(fps), n_bits), dtype=np.uint8)
    for i, fp in enumerate(fps.fps):
        if fp is not None:
            DataStructs.ConvertToNumpyArray(fp, out[i])
    return out


def random_forest_scores(train: Sequence[PropertyRecord], test: Sequence[PropertyRecord], n_labels: int, *,
                         n_estimators: int = 200, seed: int = 0, n_jobs: int = 1) -> np.ndarray:
    """P(Yes) [n_test, n_labels] from one random forest per label (NaN for labels with one class in train)."""
    from sklearn.ensemble import RandomForestClassifier

    x_train = morgan_matrix([r.smiles for r in train])
    x_test = morgan_matrix([r.smiles for r in test])
    out = np.full((len(test), n_labels), np.nan)
    for j in range(n_labels):
        known = np.array([r.labels[j] is not None for r in train])
        y = np.array([r.labels[j] for r in train if r.labels[j] is not None], dtype=np.int64)
        if len(set(y.tolist())) < 2:
            continue
        forest = RandomForestClassifier(n_estimators=n_estimators, random_state=seed, n_jobs=n_jobs)
        forest.fit(x_train[known], y)
        out[:, j] = forest.predict_proba(x_test)[:, list(forest.classes_).index(1)]
    return out


def knn_scores(rows: Sequence[dict], train: Sequence[PropertyRecord], label_columns: Sequence[str]) -> np.ndarray:
    """The rows' k-NN vote, with the label's training prevalence where a row had no examples."""
    prevalence = {}
    for j, column in enumerate(label_columns):
        known = [r.labels[j] for r in train if r.labels[j] is not None]
        prevalence[column] = float(np.mean(known)) if known else 0.5
    return np.array([r["knn"] if r["knn"] is not None else prevalence[r["label"]] for r in rows], dtype=np.float64)


def knn_vote(rows: Sequence[dict], neighbours: dict[str, list[str]], pool: dict[str, PropertyRecord], label_columns: Sequence[str],
             k: int) -> np.ndarray:
    """Share of Yes among the first ``k`` neighbours with the label measured (training prevalence if none)."""
    index = {c: j for j, c in enumerate(label_columns)}
    prevalence = {}
    for c, j in index.items():
        known = [r.labels[j] for r in pool.values() if r.labels[j] is not None]
        prevalence[c] = float(np.mean(known)) if known else 0.5
    out = np.empty(len(rows))
    for i, row in enumerate(rows):
        j = index[row["label"]]
        votes = [pool[n].labels[j] for n in neighbours.get(row["query_id"], ()) if n in pool and pool[n].labels[j] is not None][:k]
        out[i] = float(np.mean(votes)) if votes else prevalence[row["label"]]
    return out
