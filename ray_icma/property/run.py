"""One set, one split, end to end: neighbours -> ICMT (train + score) -> k-NN vote and random forest
-> ROC-AUC (PR-AUC for HIV) with bootstrap intervals -> ``results.json``.

All three methods are scored on the same (molecule, label) test rows; the baselines are also
scored on the whole test split when the ICMT rows are a sample of it.
"""
from __future__ import annotations

import json
import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ray_icma.property.config import PropertyConfig
from ray_icma.property.datasets import PropertySet, get_set
from ray_icma.property.records import PropertyRecord

__all__ = ["property_rows", "label_stubs", "select_test_rows", "score_table", "evaluate_methods", "run_property"]

log = logging.getLogger(__name__)


def property_rows(queries: Sequence[PropertyRecord], train: Sequence[PropertyRecord], spec: PropertySet, *,
                  retriever: str, k: int, n_shot: int, seed: int = 0) -> tuple[list[dict], dict[str, list[str]]]:
    """In-context rows for every known (query, label), and the neighbour lists (from ``train`` only)."""
    from ray_icma.property.neighbours import retrieve_neighbours
    from ray_icma.property.prompts import build_property_rows

    neighbours, _ = retrieve_neighbours(queries, train, retriever, k, seed=seed)
    return build_property_rows(queries, {r.id: r for r in train}, neighbours, spec, n_shot), neighbours


def label_stubs(records: Sequence[PropertyRecord], spec: PropertySet) -> list[dict]:
    """One ``{id, query_id, label, y}`` per known (molecule, label): what `select_test_rows` needs, before any retrieval."""
    return [{"id": f"{r.id}|{c}", "query_id": r.id, "label": c, "y": r.labels[j]}
            for r in records for j, c in enumerate(spec.labels) if r.labels[j] is not None]


def select_test_rows(rows: Sequence[dict], cap: int | None, *, seed: int = 0) -> list[dict]:
    """All rows, or at most ``cap`` of them: an equal quota per label, half positives where there are
    enough (seeded). Sampling positives and negatives separately leaves ROC-AUC unbiased."""
    rows = list(rows)
    if cap is None or len(rows) <= cap:
        return rows
    by_label: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_label[row["label"]].append(row)
    quota = max(2, cap // len(by_label))
    rng = random.Random(seed)
    picked: list[dict] = []
    for label in sorted(by_label):
        pos = [r for r in by_label[label] if r["y"] == 1]
        neg = [r for r in by_label[label] if r["y"] == 0]
        n_pos = min(len(pos), quota // 2)
        n_neg = min(len(neg), quota - n_pos)
        n_pos = min(len(pos), quota - n_neg)
        picked += rng.sample(pos, n_pos) + rng.sample(neg, n_neg)
    order = {id(r): i for i, r in enumerate(rows)}
    return sorted(picked, key=lambda r: order[id(r)])


def score_table(rows: Sequence[dict], scores: Sequence[float], spec: PropertySet) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(molecule ids, y [n, n_labels], score [n, n_labels]) with NaN where a (molecule, label) was not scored."""
    ids = sorted({r["query_id"] for r in rows})
    at = {m: i for i, m in enumerate(ids)}
    y = np.full((len(ids), spec.n_labels), np.nan)
    s = np.full((len(ids), spec.n_labels), np.nan)
    for row, score in zip(rows, scores):
        i, j = at[row["query_id"]], spec.label_index(row["label"])
        y[i, j], s[i, j] = row["y"], score
    return ids, y, s


def evaluate_methods(rows: Sequence[dict], method_scores: dict[str, Sequence[float]], spec: PropertySet, *, n_boot: int, seed: int) -> dict:
    """``summarise`` per method on the same rows (ROC-AUC; PR-AUC too where the set reports it)."""
    from ray_icma.property.metrics import summarise

    metrics = ("roc_auc",) + ((spec.extra_metric,) if spec.extra_metric else ())
    out = {}
    for name, scores in method_scores.items():
        _, y, s = score_table(rows, scores, spec)
        out[name] = summarise(y, s, spec.labels, metrics=metrics, n_boot=n_boot, seed=seed)
    return out


def _rf_row_scores(rows: Sequence[dict], test: Sequence[PropertyRecord], matrix: np.ndarray, spec: PropertySet) -> np.ndarray:
    at = {r.id: i for i, r in enumerate(test)}
    return np.array([matrix[at[r["query_id"]], spec.label_index(r["label"])] for r in rows])


def run_property(cfg: PropertyConfig, *, adapter: str | None = None, say: Callable[[str], None] | None = None) -> dict:
    """Run one config; writes ``<out_dir>/<set>_<split>/results.json`` (and returns it).

    Args:
        cfg: the validated config.
        adapter: an adapter dir to score with (overrides ``train``; the benchmark passes the one it trained).
        say: progress messages.
    """
    from ray_icma.property.baselines import knn_scores, knn_vote, random_forest_scores
    from ray_icma.property.scoring import score_rows
    from ray_icma.property.splits import load_property_splits
    from ray_icma.property.training import property_train_config, sample_training_rows, train_property_adapter

    say = say or (lambda m: log.info(m))
    spec = get_set(cfg.dataset)
    out = Path(cfg.out_dir) / f"{spec.name}_{cfg.split}"
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    splits, loads = load_property_splits(spec.name, cfg.split, root=cfg.data_root)
    bad = [str(p) for r in loads for p in r.problems]
    train, test = splits["train"], splits["test"]
    say(f"{spec.name}/{cfg.split}: {len(train)} train, {len(splits['validation'])} validation, {len(test)} test molecules; {len(bad)} bad rows skipped")
    timings["load"] = time.perf_counter() - t0

    r = cfg.retrieval
    t0 = time.perf_counter()
    stubs = label_stubs(test, spec)
    chosen = {x["id"] for x in select_test_rows(stubs, cfg.score.test_rows, seed=cfg.seed)}
    sampled = len(chosen) < len(stubs)
    need = test if (not sampled or cfg.baselines.full_test) else [m for m in test if any(f"{m.id}|{c}" in chosen for c in spec.labels)]
    all_test_rows, test_neighbours = property_rows(need, train, spec, retriever=r.retriever, k=r.k, n_shot=r.n_shot, seed=cfg.seed)
    rows = [x for x in all_test_rows if x["id"] in chosen]
    timings["retrieve_test"] = time.perf_counter() - t0
    pool = {m.id: m for m in train}

    train_info: dict = {}
    adapter = adapter or cfg.train.adapter
    if adapter is None and cfg.train.enabled:
        t0 = time.perf_counter()
        t = cfg.train
        rng = random.Random(cfg.seed)
        # neighbours for a sample of training molecules (enough for `rows` after label expansion)
        n_mol = len(train) if t.rows is None else min(len(train), max(t.rows * 4 // spec.n_labels + 50, t.rows))
        queries = rng.sample(train, n_mol)
        train_rows = sample_training_rows(property_rows(queries, train, spec, retriever=r.retriever, k=r.k, n_shot=r.n_shot, seed=cfg.seed)[0],
                                          t.rows, seed=cfg.seed, positive_share=t.positive_share)
        tcfg = property_train_config(
            model=cfg.model, run_name=f"property-{spec.name}-{cfg.split}", storage_path=str((out / "ray_runs").resolve()),
            output_dir=str(out / "icmt"), max_steps=t.max_steps, epochs=t.epochs, lr=t.lr, micro_batch_size=t.micro_batch_size,
            num_workers=t.num_workers, cpus_per_worker=t.cpus_per_worker, cutoff_len=cfg.cutoff_len, strategy=t.strategy,
            seed=cfg.seed, precision=t.precision,
        )
        say(f"training ICMT on {len(train_rows)} rows ({sum(x['reference'] == 'Yes' for x in train_rows)} Yes)")
        train_info = train_property_adapter(train_rows, tcfg)
        adapter = train_info["adapter_dir"]
        timings["train"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    say(f"scoring {len(rows)} test rows with {cfg.model}{' + ' + str(adapter) if adapter else ''}")
    p_icmt, score_meta = score_rows(rows, model=cfg.model, adapter=adapter, cutoff_len=cfg.cutoff_len, batch_size=cfg.score.batch_size,
                                    concurrency=cfg.score.concurrency, num_cpus_per_actor=cfg.score.num_cpus, precision=cfg.score.precision)
    timings["score"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    rf_matrix = random_forest_scores(train, test, spec.n_labels, n_estimators=cfg.baselines.rf_trees, seed=cfg.seed, n_jobs=cfg.baselines.rf_jobs)
    timings["random_forest"] = time.perf_counter() - t0
    methods = {"icmt": p_icmt, "knn": knn_scores(rows, train, spec.labels),
               f"knn{cfg.baselines.knn_k}": knn_vote(rows, test_neighbours, pool, spec.labels, cfg.baselines.knn_k),
               "rf": _rf_row_scores(rows, test, rf_matrix, spec)}
    result = {
        "dataset": spec.name,
        "split": cfg.split,
        "sizes": {
            "train_molecules": len(train), "test_molecules": len(test), "test_rows_all": len(stubs),
            "test_rows_scored": len(rows), "test_molecules_scored": len({x["query_id"] for x in rows}),
            "train_rows": train_info.get("rows"), "train_steps": train_info.get("steps"), "bad_rows": len(bad),
        },
        "settings": {"retriever": r.retriever, "k": r.k, "n_shot": r.n_shot, "model": cfg.model, "adapter": adapter,
                     "cutoff_len": cfg.cutoff_len, "score_precision": cfg.score.precision, "seed": cfg.seed, "rf_trees": cfg.baselines.rf_trees, "knn_k": cfg.baselines.knn_k},
        "same_rows": evaluate_methods(rows, methods, spec, n_boot=cfg.n_boot, seed=cfg.seed),
        "score_meta": score_meta,
        "train": {k: v for k, v in train_info.items() if k != "loss_history"} | (
            {"loss_first": train_info["loss_history"][0]["loss"], "loss_last": train_info["loss_history"][-1]["loss"]} if train_info.get("loss_history") else {}),
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "bad_rows": bad[:50],
    }
    if sampled and cfg.baselines.full_test:  # baselines on the whole test split as well
        full = {"knn": knn_scores(all_test_rows, train, spec.labels),
                f"knn{cfg.baselines.knn_k}": knn_vote(all_test_rows, test_neighbours, pool, spec.labels, cfg.baselines.knn_k),
                "rf": _rf_row_scores(all_test_rows, test, rf_matrix, spec)}
        result["full_test"] = evaluate_methods(all_test_rows, full, spec, n_boot=cfg.n_boot, seed=cfg.seed)
    (out / "results.json").write_text(json.dumps(result, indent=1))
    (out / "predictions.jsonl").write_text("".join(
        json.dumps({"id": x["id"], "y": x["y"], **{m: float(v[i]) for m, v in methods.items()}}) + "\n"
        for i, x in enumerate(rows)))
    return result
