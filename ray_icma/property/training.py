"""ICMT for property prediction: the caption tasks' Ray Train LoRA loop on property rows.

The rows are the in-context rows of `build_property_rows` (task ``property/<set>/<label>``, the
SMILES as input, "Yes"/"No" as reference, the neighbours as examples); the training collate
tokenizes them with the property templates, so the loss is on ``"Prediction:Yes"`` / ``"...No"``
and EOS only. Everything else -- model + LoRA, DeepSpeed/DDP, checkpoints, resume, adapter
export -- is ``ray_icma.train``'s.
"""
from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["property_train_config", "sample_training_rows", "train_property_adapter"]


def sample_training_rows(rows: Sequence[dict], n: int | None, *, seed: int = 0, positive_share: float | None = 0.5) -> list[dict]:
    """A seeded sample of ``n`` training rows (all when ``n`` is None or larger).

    With ``positive_share``, positives ("Yes") make up that share where the rows have enough of them
    (rare actives, e.g. HIV's 3.5 %, would otherwise teach the model to always say No; ROC-AUC
    does not depend on prevalence).
    """
    rows = list(rows)
    rng = random.Random(seed)
    if n is None or n >= len(rows):
        return rng.sample(rows, len(rows))
    if positive_share is None:
        return rng.sample(rows, n)
    pos = [r for r in rows if r["reference"] == "Yes"]
    neg = [r for r in rows if r["reference"] != "Yes"]
    n_pos = min(len(pos), round(n * positive_share))
    n_neg = min(len(neg), n - n_pos)
    n_pos = min(len(pos), n - n_neg)
    picked = rng.sample(pos, n_pos) + rng.sample(neg, n_neg)
    rng.shuffle(picked)
    return picked


def property_train_config(
    *,
    model: str = "smollm2-135m",
    run_name: str = "icmt-property",
    storage_path: str = "runs",
    output_dir: str = "outputs/icmt-property",
    max_steps: int | None = None,
    epochs: int = 1,
    lr: float = 2e-4,
    micro_batch_size: int = 4,
    num_workers: int = 1,
    cpus_per_worker: float = 2,
    cutoff_len: int = 1024,
    strategy: str = "ddp",
    seed: int = 0,
    precision: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict:
    """A ``ray_icma.train.TrainConfig`` dict for property rows (LoRA: ICMA's r 32, alpha 64, dropout 0.1).

    ``data.train`` only labels the run: the rows are passed to the trainer in memory.
    ``precision`` is set where the training config has such a field (bf16 autocast on CPUs that
    have it); otherwise training runs in the loop's default precision.
    """
    from ray_icma.train.config import TrainConfig

    cfg: dict[str, Any] = {
        "model": {"name": model},
        "data": {"task": "mol2cap", "train": "<property rows in memory>", "cutoff_len": cutoff_len},
        "optim": {"lr": lr, "epochs": epochs, "max_steps": max_steps, "micro_batch_size": micro_batch_size},
        "strategy": strategy,
        "scaling": {"num_workers": num_workers, "cpus_per_worker": cpus_per_worker},
        "run": {"name": run_name, "storage_path": storage_path, "output_dir": output_dir, "keep_checkpoints": 1},
        "seed": seed,
    }
    if precision is not None:
        if "precision" in TrainConfig.model_fields:
            cfg["precision"] = precision
        else:
            for section in ("model", "optim"):
                fields = TrainConfig.model_fields[section].annotation.model_fields  # type: ignore[union-attr]
                if "precision" in fields:
                    cfg[section]["precision"] = precision
    for key, value in (overrides or {}).items():
        section, _, field = key.partition(".")
        cfg.setdefault(section, {})[field] = value
    return cfg


def train_property_adapter(rows: Sequence[dict], cfg: dict) -> dict:
    """Train a LoRA adapter on property rows with Ray Train; returns adapter dir, loss history, seconds.

    Connects to ``RAY_ADDRESS`` when set (else a local Ray). A finished run (its
    ``output_dir/adapter`` exists) is not trained again.
    """
    import os
    import time

    import ray

    from ray_icma.train import build_trainer, export_adapter, read_loss_history
    from ray_icma.train.config import as_train_config

    config = as_train_config(cfg)
    out = Path(config.run.output_dir)
    done = out / "train_result.json"
    if done.is_file() and (out / "adapter" / "adapter_config.json").is_file():
        return json.loads(done.read_text())
    rows = [dict(r) for r in rows]
    for row in rows:  # Arrow wants one type per column
        row["y"] = -1 if row.get("y") is None else int(row["y"])
        row["knn"] = -1.0 if row.get("knn") is None else float(row["knn"])
    if not ray.is_initialized():
        address = os.environ.get("RAY_ADDRESS")
        ray.init(address=address or None, ignore_reinit_error=True, log_to_driver=True)
    started = time.perf_counter()
    result = build_trainer(config, rows).fit()
    if getattr(result, "error", None):
        raise RuntimeError(f"property training {config.run.name!r} failed: {result.error}") from result.error
    if result.checkpoint is None:
        raise RuntimeError(f"property training {config.run.name!r} finished without a checkpoint")
    with result.checkpoint.as_directory() as ckpt:
        adapter = export_adapter(ckpt, out / "adapter")
        history = read_loss_history(ckpt)
    summary = {"adapter_dir": str(adapter), "loss_history": history, "seconds": round(time.perf_counter() - started, 1),
               "rows": len(rows), "steps": len(history)}
    out.mkdir(parents=True, exist_ok=True)
    done.write_text(json.dumps(summary, indent=1))
    return summary
