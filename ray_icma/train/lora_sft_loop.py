"""The per-worker in-context tuning loop that Ray Train runs on every worker (LoRA or full fine-tuning).

Reads top to bottom: threads + seed, model (+ LoRA), engine (DeepSpeed ZeRO or DDP), restore,
data (tokenized once on the driver, batched by length here), loop, checkpoint + report. It
reads only its ``config`` (built by ``trainer.build_trainer``).

Nothing constant is recomputed per step: rows arrive tokenized (packed, from the object store), every epoch's batches are one
seeded list computed once, and bf16 (where the hardware has it, ``ray_icma.precision``) runs
inside ``torch.autocast`` with fp32 weights and optimizer state.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from ray_icma.memory import peak_rss_mb
from ray_icma.train.loss import causal_lm_loss

__all__ = ["train_loop_per_worker", "TRAIN_STATE_FILE", "ADAPTER_DIR", "MODEL_DIR", "FAULT_ENV"]

TRAIN_STATE_FILE = "train_state.json"  # step, epoch, loss history (rank 0 writes it)
ADAPTER_DIR = "adapter"  # peft save_pretrained dir inside every checkpoint (LoRA runs)
MODEL_DIR = "model"  # save_pretrained dir of the whole model (lora.disable_lora runs)
_DS_TAG = "deepspeed"
_DDP_STATE = "ddp_state.pt"
#: Fault injection for recovery tests: a fresh (not restored) attempt raises right after it
#: checkpointed this step. Read on the workers; the driver forwards it (see trainer.build_trainer).
FAULT_ENV = "RAY_ICMA_TEST_FAIL_AFTER_STEP"


def _seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _worker_cpus(fallback: float) -> int:
    """The CPUs Ray gave this worker (its torch thread count)."""
    try:
        import ray

        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", fallback)
    except Exception:  # noqa: BLE001 - outside Ray: the configured value
        cpus = fallback
    return max(1, int(cpus))


class _DeepSpeedEngine:
    """DeepSpeed ZeRO 2/3 around the model; the optimizer is torch AdamW over the trainable weights."""

    def __init__(self, model: Any, optimizer: Any, scheduler: Any, ds_config: dict, autocast: Any, save_dir: str):
        import deepspeed

        self.zero_stage = ds_config["zero_optimization"]["stage"]
        self.engine, self.optimizer, _, self.scheduler = deepspeed.initialize(
            model=model, optimizer=optimizer, lr_scheduler=scheduler, config=ds_config
        )
        self.device = self.engine.device
        self.autocast, self.save_dir = autocast, save_dir

    def micro_step(self, batch: dict) -> tuple[float, bool]:
        """Forward + backward + (at an accumulation boundary) optimizer step: ``(loss, stepped)``."""
        with self.autocast():
            loss = causal_lm_loss(self.engine, batch)
        self.engine.backward(loss)
        boundary = self.engine.is_gradient_accumulation_boundary()
        self.engine.step()
        return float(loss.detach()), boundary

    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def save(self, directory: str, rank: int, tokenizer: Any) -> None:
        """Collective: every rank writes its ZeRO shard; rank 0 also writes the adapter (or model)."""
        self.engine.save_checkpoint(directory, tag=_DS_TAG, exclude_frozen_parameters=True)
        target = os.path.join(directory, self.save_dir)
        params = [p for p in self.engine.module.parameters() if p.requires_grad]
        gathered: Any = contextlib.nullcontext()
        if self.zero_stage == 3:
            import deepspeed

            gathered = deepspeed.zero.GatheredParameters(params, modifier_rank=None)
        with gathered:
            if rank == 0:
                _save_pretrained(self.engine.module, target, tokenizer)

    def load(self, directory: str) -> None:
        self.engine.load_checkpoint(directory, tag=_DS_TAG, load_module_strict=False)


class _DDPEngine:
    """Plain torch DDP (gloo on CPU, nccl on GPU); gradient accumulation all-reduces only at the boundary."""

    def __init__(self, model: Any, optimizer: Any, scheduler: Any, accumulation: int, max_grad_norm: float,
                 autocast: Any, save_dir: str):
        import ray.train.torch

        self.unwrapped = model
        self.model = ray.train.torch.prepare_model(model)
        self.device = ray.train.torch.get_device()
        self.optimizer, self.scheduler = optimizer, scheduler
        self.accumulation, self.max_grad_norm = accumulation, max_grad_norm
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.autocast, self.save_dir = autocast, save_dir
        self.micro = 0

    def micro_step(self, batch: dict) -> tuple[float, bool]:
        import torch

        boundary = (self.micro + 1) % self.accumulation == 0
        no_sync = getattr(self.model, "no_sync", None)  # DDP only (one worker is not wrapped)
        with (no_sync() if no_sync is not None and not boundary else contextlib.nullcontext()):
            with self.autocast():
                loss = causal_lm_loss(self.model, batch)
            (loss / self.accumulation).backward()
        self.micro += 1
        if not boundary:
            return float(loss.detach()), False
        torch.nn.utils.clip_grad_norm_(self.trainable, self.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(loss.detach()), True

    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def save(self, directory: str, rank: int, tokenizer: Any) -> None:
        import torch

        if rank == 0:
            _save_pretrained(self.unwrapped, os.path.join(directory, self.save_dir), tokenizer)
            torch.save({"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}, os.path.join(directory, _DDP_STATE))

    def load(self, directory: str) -> None:
        import torch
        from safetensors.torch import load_file

        weights = load_file(str(Path(directory) / self.save_dir / _weights_file(self.save_dir)), device=str(self.device))
        if self.save_dir == ADAPTER_DIR:
            from peft import set_peft_model_state_dict

            set_peft_model_state_dict(self.unwrapped, weights)
        else:
            self.unwrapped.load_state_dict(weights, strict=False)  # tied weights are stored once
        state = torch.load(os.path.join(directory, _DDP_STATE), map_location=self.device, weights_only=True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])


def _weights_file(save_dir: str) -> str:
    return "adapter_model.safetensors" if save_dir == ADAPTER_DIR else "model.safetensors"


def _save_pretrained(module: Any, directory: str, tokenizer: Any) -> None:
    """An adapter dir (peft) or, for full fine-tuning, a loadable model dir with its tokenizer."""
    if module.__class__.__name__.startswith("Peft"):
        module.save_pretrained(directory, save_embedding_layers=False)
    else:
        module.save_pretrained(directory)
        tokenizer.save_pretrained(directory)


def _mean_across_ranks(value: float, device: Any) -> float:
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / dist.get_world_size()


def _gather_across_ranks(value: float, device: Any) -> list[float]:
    """Every rank's ``value``, in rank order (one all-gather; ``[value]`` outside torch.distributed)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return [value]
    parts = [torch.zeros(1, dtype=torch.float64, device=device) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, torch.tensor([value], dtype=torch.float64, device=device))
    return [float(p.item()) for p in parts]


def train_loop_per_worker(config: dict) -> None:
    """Ray Train worker entry point.

    Args:
        config: ``{"train": TrainConfig.model_dump(), "rows": ObjectRef, "num_rows": int, "deepspeed": dict | None,
            "precision": "bf16" | "fp32", "pad_id": int}``, optionally ``"resume_from": str`` (a
            checkpoint dir/URI used when the run has none of its own yet). ``rows`` refers to the
            rows the driver tokenized, packed (``collate.PackedRows.arrays``).
    """
    import ray
    import ray.train
    import torch
    import torch.distributed as dist
    from transformers import get_linear_schedule_with_warmup

    from ray_icma.allocator import loaded_allocator
    from ray_icma.models import apply_lora, load_causal_lm, lora_config
    from ray_icma.precision import autocast as precision_autocast
    from ray_icma.precision import describe, store_frozen_weights
    from ray_icma.train.collate import PackedRows, global_batches, rank_micro_batch

    cfg, num_rows = config["train"], config["num_rows"]
    optim, data, run = cfg["optim"], cfg["data"], cfg["run"]
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    use_gpu = cfg["scaling"]["use_gpu"]
    if not use_gpu:
        torch.set_num_threads(_worker_cpus(cfg["scaling"]["cpus_per_worker"]))
    _seed_everything(cfg["seed"])

    # Model (+ LoRA: ICMA r 32, alpha 64, dropout 0.1, every linear layer but lm_head).
    precision = config["precision"]
    device_type = "cuda" if use_gpu else "cpu"
    # GPU + DeepSpeed bf16: DeepSpeed holds bf16 weights and fp32 master copies; everywhere else
    # the weights stay fp32 and bf16 is an autocast of the forward pass.
    ds_bf16 = bool(config["deepspeed"] and config["deepspeed"]["bf16"]["enabled"])
    model, tokenizer = load_causal_lm(
        cfg["model"]["name"], gguf_file=cfg["model"]["gguf_file"], torch_dtype="bfloat16" if ds_bf16 else "float32",
        trust_remote_code=cfg["model"]["trust_remote_code"],
    )
    model.config.use_cache = False
    lora = cfg["lora"]
    save_dir = MODEL_DIR if lora["disable_lora"] else ADAPTER_DIR
    if optim["gradient_checkpointing"]:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if not lora["disable_lora"]:
        model = apply_lora(model, lora_config(r=lora["r"], alpha=lora["alpha"], dropout=lora["dropout"], target=lora["target"], model=model))
        for peft_cfg in model.peft_config.values():  # the real model id (ray-icma maps it back offline)
            peft_cfg.base_model_name_or_path = config["base_model_id"]
    model.train()
    if cfg["strategy"] != "deepspeed":  # DDP: frozen weights stored in the autocast dtype (no per-step casts);
        store_frozen_weights(model, precision)  # DeepSpeed keeps one dtype per model (its ZeRO partitioning)
    autocast = (lambda: contextlib.nullcontext()) if ds_bf16 else (lambda: precision_autocast(precision, device_type))
    if rank == 0:
        print(f"[ray-icma] {describe(precision, device_type)}; allocator {loaded_allocator()}; "
              f"{'full fine-tuning' if lora['disable_lora'] else 'LoRA'}"
              f"{', gradient checkpointing' if optim['gradient_checkpointing'] else ''}", flush=True)

    # Steps: every worker sees global batches of micro_batch_size * world rows (drop_last).
    micro, accumulation = optim["micro_batch_size"], optim["gradient_accumulation_steps"]
    global_batch_count = num_rows // (micro * world)
    steps_per_epoch = global_batch_count // accumulation
    if steps_per_epoch < 1:
        raise ValueError(
            f"{num_rows} rows make no optimizer step with micro_batch_size={micro} x {world} workers x "
            f"gradient_accumulation_steps={accumulation}; use more rows or smaller batches"
        )
    total_steps = optim["max_steps"] or optim["epochs"] * steps_per_epoch

    # Engine: DeepSpeed ZeRO or DDP, with torch AdamW over the trainable weights (fp32).
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=optim["lr"], weight_decay=optim["weight_decay"])
    scheduler = get_linear_schedule_with_warmup(optimizer, optim["warmup_steps"], total_steps)
    if cfg["strategy"] == "deepspeed":
        engine: Any = _DeepSpeedEngine(model, optimizer, scheduler, config["deepspeed"], autocast, save_dir)
    else:
        engine = _DDPEngine(model, optimizer, scheduler, accumulation, optim["max_grad_norm"], autocast, save_dir)

    # Restore: after a worker failure, a stopped run, or `run.resume_from`.
    state: dict[str, Any] = {"step": 0, "loss_history": [], "tokens": 0}
    checkpoint = ray.train.get_checkpoint()  # this run's latest (after a failure or a restart)
    if checkpoint is None and config.get("resume_from"):  # else a checkpoint of another run
        checkpoint = ray.train.Checkpoint(config["resume_from"])
    if checkpoint:
        with checkpoint.as_directory() as directory:
            engine.load(directory)
            state = json.loads((Path(directory) / TRAIN_STATE_FILE).read_text())
        if rank == 0:
            print(f"[ray-icma] resumed at step {state['step']} from {checkpoint.path}", flush=True)
    step = state["step"]
    fail_after = int(os.environ.get(FAULT_ENV, "0") or 0)

    def save_and_report(metrics: dict) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            engine.save(tmp, rank, tokenizer)
            if rank == 0:
                Path(tmp, TRAIN_STATE_FILE).write_text(json.dumps(state))
            dist.barrier()
            has_files = rank == 0 or cfg["strategy"] == "deepspeed"
            ray.train.report(
                metrics,
                checkpoint=ray.train.Checkpoint.from_directory(tmp) if has_files else None,
                checkpoint_dir_name=f"checkpoint_{step:06d}",
            )

    # Data: every worker reads all tokenized rows once; each global batch is a seeded,
    # length-bucketed list of row ids, and each rank pads its own slice.
    started = time.perf_counter()
    rows = PackedRows(ray.get(config["rows"]))  # the driver's packed rows, from the object store
    lengths = rows.lengths()
    pad_id = config["pad_id"]
    tokens_here = padded_here = 0
    window: list[float] = []
    for epoch in range(step // steps_per_epoch, math.ceil(total_steps / steps_per_epoch)):
        if step >= total_steps:
            break
        skip = (step - epoch * steps_per_epoch) * accumulation  # micro-batches already trained this epoch
        batches = global_batches(lengths, micro * world, seed=cfg["seed"], epoch=epoch, bucket=data["bucket_by_length"])
        for index in range(skip, steps_per_epoch * accumulation):
            if step >= total_steps:
                break
            batch = rank_micro_batch(rows, batches[index], rank, world, pad_id)
            batch = {k: v.to(engine.device) for k, v in batch.items()}
            loss, stepped = engine.micro_step(batch)
            window.append(loss)
            step_tokens = int(batch["attention_mask"].sum())
            tokens_here += step_tokens
            padded_here += int(batch["attention_mask"].numel())
            state["tokens"] += step_tokens
            if not stepped:
                continue
            step += 1
            step_loss = _mean_across_ranks(sum(window) / len(window), engine.device)
            window = []
            state.update(step=step, epoch=epoch)
            state["loss_history"].append({"step": step, "epoch": epoch, "loss": step_loss, "lr": engine.lr()})
            elapsed = time.perf_counter() - started
            rates = _gather_across_ranks(tokens_here / elapsed if elapsed > 0 else 0.0, engine.device)
            metrics = {
                "step": step,
                "epoch": epoch,
                "loss": step_loss,
                "lr": engine.lr(),
                "tokens_per_s_per_worker": rates[rank],
                "tokens_per_s_workers": rates,  # every worker's own rate; their sum is the run's throughput
                "tokens_per_s_total": sum(rates),
                "padding_fraction": 1.0 - tokens_here / padded_here if padded_here else 0.0,
                "precision": precision,
                "allocator": loaded_allocator(),  # what this worker process runs on (ray_icma.allocator)
                "peak_rss_mb": peak_rss_mb(),
            }
            if rank == 0:
                print(f"[ray-icma] step {step}/{total_steps} epoch {epoch} loss {step_loss:.4f} lr {engine.lr():.2e} "
                      f"{metrics['tokens_per_s_per_worker']:.0f} tok/s/worker", flush=True)
            every = run["checkpoint_every"]
            if step == total_steps or (every and step % every == 0):
                save_and_report(metrics)
                if fail_after and step == fail_after and checkpoint is None:
                    raise RuntimeError(f"{FAULT_ENV}={fail_after}: injected worker error after the step-{step} checkpoint")
            elif step % run["log_every"] == 0:
                ray.train.report(metrics)
