"""Driver side: config -> ICL rows -> Ray Dataset -> TorchTrainer; run it and export the adapter."""
from __future__ import annotations

import csv
import json
import logging
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ray_icma.train.config import TrainConfig, as_train_config

__all__ = ["TrainResult", "build_train_rows", "build_trainer", "run_training", "read_loss_history", "resolve_train_precision", "tokenize_train_rows"]

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a finished run left behind.

    Attributes:
        checkpoint_path: the last Ray Train checkpoint (adapter + optimizer state + step).
        adapter_dir: the exported peft adapter (``save_pretrained`` dir); None for full fine-tuning.
        metrics: the last reported metrics (step, loss, lr, tokens/s, peak memory).
        loss_history: one ``{"step", "epoch", "loss", "lr"}`` per optimizer step, resumed runs included.
        merged_dir: the merged model dir when ``run.merge`` was set.
        model_dir: the fully fine-tuned model dir (``lora.disable_lora``; ``adapter_dir`` is None then).
    """

    checkpoint_path: str
    adapter_dir: str | None
    metrics: dict
    loss_history: list[dict] = field(default_factory=list)
    merged_dir: str | None = None
    model_dir: str | None = None


def _is_uri(path: str) -> bool:
    return "://" in path


def build_train_rows(cfg: TrainConfig) -> list[dict]:
    """The in-context training rows of a config: records (+ seeded sample) + contexts + prompts.

    Raises:
        ray_icma.data.DataError / ContextsFileError: unreadable inputs (messages name the file).
        ValueError: no rows left.
    """
    from ray_icma.data import load_records
    from ray_icma.prompts import build_icl_rows

    data = cfg.data
    loaded = load_records(data.train)
    if loaded.problems:
        log.warning("%s: skipped %d bad rows", data.train, len(loaded.problems))
    queries = list(loaded.records)
    pool = queries if data.pool in (None, data.train) else list(load_records(data.pool).records)
    if data.max_rows is not None and data.max_rows < len(queries):
        queries = random.Random(cfg.seed).sample(queries, data.max_rows)
    contexts = None
    if data.contexts and data.n_shot > 0:
        from ray_icma.jobs.contexts import read_contexts

        contexts = read_contexts(data.contexts)
    rows = build_icl_rows(queries, pool, contexts, data.task, data.n_shot, strategy=data.strategy, start_pos=data.start_pos, seed=cfg.seed,
                          reverse=data.reverse, window=data.window, p_take=data.p_take)
    if not rows:
        raise ValueError(f"{data.train} gave no training rows")
    random.Random(cfg.seed).shuffle(rows)  # a fixed global order; epochs reshuffle locally with seed + epoch
    return rows


def resolve_train_precision(cfg: TrainConfig) -> str:
    """``bf16`` or ``fp32`` for this run (``precision: auto`` looks at the CPU flags / the GPU)."""
    from ray_icma.precision import resolve_precision

    return resolve_precision(cfg.precision, "cuda" if cfg.scaling.use_gpu else "cpu")


def tokenize_train_rows(cfg: TrainConfig, rows: list[dict]) -> tuple[list[dict], Any]:
    """``(rows, tokenizer)``: the rows as the workers train on them (``input_ids`` + ``labels``), tokenized once, here."""
    from ray_icma.models import load_tokenizer
    from ray_icma.train.collate import tokenize_rows

    tokenizer = load_tokenizer(cfg.model.name, gguf_file=cfg.model.gguf_file, trust_remote_code=cfg.model.trust_remote_code)
    return tokenize_rows(tokenizer, rows, cfg.data.cutoff_len, train_on_inputs=cfg.data.train_on_inputs), tokenizer


def build_trainer(cfg: TrainConfig | Mapping[str, Any], rows: list[dict] | None = None) -> Any:
    """A ``ray.train.torch.TorchTrainer`` for the config (call ``.fit()`` on it).

    Args:
        cfg: validated config or a plain dict.
        rows: in-context rows to train on; default ``build_train_rows(cfg)``. They are tokenized
            here, once; the workers only pad and batch them.
    """
    import ray
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from ray_icma.allocator import allocator_env
    from ray_icma.models import hub_id
    from ray_icma.train.collate import PackedRows
    from ray_icma.train.deepspeed_config import deepspeed_config
    from ray_icma.train.lora_sft_loop import FAULT_ENV, train_loop_per_worker

    cfg = as_train_config(cfg)
    resume = cfg.run.resume_from
    if resume and not _is_uri(resume):
        resume = str(Path(resume).resolve())
        if not Path(resume).is_dir():
            raise FileNotFoundError(f"run.resume_from={cfg.run.resume_from}: no such checkpoint dir")
    rows = build_train_rows(cfg) if rows is None else rows
    tokenized, tokenizer = tokenize_train_rows(cfg, rows)
    use_gpu = cfg.scaling.use_gpu
    precision = resolve_train_precision(cfg)
    ds_config = (
        deepspeed_config(cfg.zero_stage, cfg.optim.micro_batch_size, cfg.optim.gradient_accumulation_steps, cfg.optim.max_grad_norm,
                         bf16=use_gpu and precision == "bf16")
        if cfg.strategy == "deepspeed"
        else None
    )
    storage = cfg.run.storage_path if _is_uri(cfg.run.storage_path) else str(Path(cfg.run.storage_path).resolve())
    env = {} if use_gpu else {"DS_ACCELERATOR": "cpu", **allocator_env()}  # CPU workers: tcmalloc (ray_icma.allocator)
    if os.environ.get(FAULT_ENV):  # recovery tests: the workers read it (see lora_sft_loop.FAULT_ENV)
        env[FAULT_ENV] = os.environ[FAULT_ENV]
    # The tokenized rows go into the object store once, packed (train.collate.PackedRows); every worker
    # reads all of them (each cuts its own slice of every global batch) without a copy on its node.
    # (Ray Data here cost each worker a streaming executor that kept a thread busy for the whole run.)
    _ensure_ray()
    rows_ref = ray.put(PackedRows.pack(tokenized).arrays)
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"train": cfg.model_dump(), "rows": rows_ref, "num_rows": len(tokenized), "deepspeed": ds_config, "resume_from": resume,
                           "precision": precision, "pad_id": tokenizer.pad_token_id, "base_model_id": hub_id(cfg.model.name)},
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        scaling_config=ScalingConfig(num_workers=cfg.scaling.num_workers, use_gpu=use_gpu, resources_per_worker={"CPU": cfg.scaling.cpus_per_worker}),
        run_config=RunConfig(
            name=cfg.run.name,
            storage_path=storage,
            failure_config=FailureConfig(max_failures=cfg.run.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=cfg.run.keep_checkpoints),
            worker_runtime_env={"env_vars": env},
        ),
    )


def read_loss_history(checkpoint_dir: str | os.PathLike[str]) -> list[dict]:
    """The per-step loss history stored in a checkpoint (``train_state.json``)."""
    from ray_icma.train.lora_sft_loop import TRAIN_STATE_FILE

    return json.loads((Path(checkpoint_dir) / TRAIN_STATE_FILE).read_text())["loss_history"]


def _write_loss_files(history: list[dict], output_dir: Path) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "loss.json").write_text(json.dumps(history, indent=1))
    with (output_dir / "loss.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["step", "epoch", "loss", "lr"])
        writer.writeheader()
        writer.writerows(history)


def _ensure_ray() -> None:
    from ray_icma.ray_connect import connect_ray

    connect_ray(log_to_driver=True)  # workers' per-step loss lines are the progress display


def _failure_message(exc: BaseException) -> str:
    """One line from a Ray Train failure: each failed worker's last error line (its exception)."""
    failures = getattr(exc, "worker_failures", None) or {}
    parts = []
    for rank, err in sorted(failures.items()):
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        last = lines[-1] if lines else ""
        name = type(err).__name__
        parts.append(f"worker {rank}: {last if last.startswith(name) or 'Error' in last.split(':')[0] else f'{name}: {last}'}")
    if not parts:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        parts.append(lines[-1] if lines else type(exc).__name__)
    return "; ".join(dict.fromkeys(parts))


def run_training(cfg: TrainConfig | Mapping[str, Any]) -> TrainResult:
    """Train, then export the adapter (or, with ``lora.disable_lora``, the whole model) into ``run.output_dir``.

    Connects to ``RAY_ADDRESS`` when set (else starts a local Ray). Resumes from the run dir's
    latest checkpoint when ``storage_path/name`` already holds the run, or from ``run.resume_from``.

    Raises:
        RuntimeError: training failed (one line: each failed worker's error).
    """
    import ray.train

    from ray_icma.train.export import export_adapter, export_model, merge_adapter

    cfg = as_train_config(cfg)
    rows = build_train_rows(cfg)  # data errors surface before any cluster work
    _ensure_ray()
    trainer = build_trainer(cfg, rows)
    try:
        result = trainer.fit()
    except ray.train.TrainingFailedError as exc:
        raise RuntimeError(f"training run {cfg.run.name!r} failed: {_failure_message(exc)}") from exc
    if getattr(result, "error", None):
        raise RuntimeError(f"training run {cfg.run.name!r} failed: {_failure_message(result.error)}") from result.error
    if result.checkpoint is None:
        raise RuntimeError(f"training run {cfg.run.name!r} finished without a checkpoint")
    output_dir = Path(cfg.run.output_dir)
    adapter_dir = model_dir = None
    with result.checkpoint.as_directory() as ckpt_dir:
        if cfg.lora.disable_lora:
            model_dir = export_model(ckpt_dir, output_dir / "model")
        else:
            adapter_dir = export_adapter(ckpt_dir, output_dir / "adapter")
        history = read_loss_history(ckpt_dir)
    _write_loss_files(history, output_dir)
    merged = None
    if cfg.run.merge:
        merged = merge_adapter(adapter_dir, output_dir / "merged", base_model=cfg.model.name, gguf_file=cfg.model.gguf_file)
    return TrainResult(
        checkpoint_path=result.checkpoint.path,
        adapter_dir=str(adapter_dir) if adapter_dir else None,
        metrics=dict(result.metrics or {}),
        loss_history=history,
        merged_dir=str(merged) if merged else None,
        model_dir=str(model_dir) if model_dir else None,
    )
