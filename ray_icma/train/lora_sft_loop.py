"""The per-worker LoRA in-context tuning loop that Ray Train runs on every worker.

Reads top to bottom: seed, model + LoRA, engine (DeepSpeed ZeRO or DDP), restore, data shard,
loop, checkpoint + report. It reads only its ``config`` (built by ``trainer.build_trainer``).
"""
from __future__ import annotations

import json
import math
import os
import random
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["train_loop_per_worker", "TRAIN_STATE_FILE", "ADAPTER_DIR"]

TRAIN_STATE_FILE = "train_state.json"  # step, epoch, loss history (rank 0 writes it)
ADAPTER_DIR = "adapter"  # peft save_pretrained dir inside every checkpoint
_DS_TAG = "deepspeed"
_DDP_STATE = "ddp_state.pt"


def _seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _warmup_linear(warmup_steps: int, total_steps: int):
    """LR multiplier: linear warm-up, then linear decay to 0 (the HF Trainer schedule ICMA uses)."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return factor


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class _DeepSpeedEngine:
    """DeepSpeed ZeRO 2/3 around a peft model; the optimizer is torch AdamW over the LoRA weights."""

    def __init__(self, model: Any, optimizer: Any, scheduler: Any, ds_config: dict):
        import deepspeed

        self.zero_stage = ds_config["zero_optimization"]["stage"]
        self.engine, self.optimizer, _, self.scheduler = deepspeed.initialize(
            model=model, optimizer=optimizer, lr_scheduler=scheduler, config=ds_config
        )
        self.device = self.engine.device

    def loss(self, batch: dict) -> Any:
        return self.engine(**batch).loss

    def backward_step(self, loss: Any) -> bool:
        """Backward + (at an accumulation boundary) optimizer step; True when a step happened."""
        self.engine.backward(loss)
        boundary = self.engine.is_gradient_accumulation_boundary()
        self.engine.step()
        return boundary

    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def save(self, directory: str, rank: int) -> None:
        """Collective: every rank writes its ZeRO shard; rank 0 also writes the adapter."""
        self.engine.save_checkpoint(directory, tag=_DS_TAG, exclude_frozen_parameters=True)
        self._save_adapter(os.path.join(directory, ADAPTER_DIR), rank)

    def _save_adapter(self, directory: str, rank: int) -> None:
        if self.zero_stage == 3:
            import deepspeed

            params = [p for p in self.engine.module.parameters() if p.requires_grad]
            with deepspeed.zero.GatheredParameters(params, modifier_rank=None):
                if rank == 0:
                    self.engine.module.save_pretrained(directory, save_embedding_layers=False)
        elif rank == 0:
            self.engine.module.save_pretrained(directory, save_embedding_layers=False)

    def load(self, directory: str) -> None:
        self.engine.load_checkpoint(directory, tag=_DS_TAG, load_module_strict=False)


class _DDPEngine:
    """Plain torch DDP (gloo on CPU, nccl on GPU) with manual gradient accumulation."""

    def __init__(self, model: Any, optimizer: Any, scheduler: Any, accumulation: int, max_grad_norm: float):
        import ray.train.torch

        self.peft_model = model
        self.model = ray.train.torch.prepare_model(model)
        self.device = ray.train.torch.get_device()
        self.optimizer, self.scheduler = optimizer, scheduler
        self.accumulation, self.max_grad_norm = accumulation, max_grad_norm
        self.micro = 0

    def loss(self, batch: dict) -> Any:
        return self.model(**batch).loss

    def backward_step(self, loss: Any) -> bool:
        import torch

        (loss / self.accumulation).backward()
        self.micro += 1
        if self.micro % self.accumulation:
            return False
        torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad], self.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return True

    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def save(self, directory: str, rank: int) -> None:
        import torch

        if rank == 0:
            self.peft_model.save_pretrained(os.path.join(directory, ADAPTER_DIR), save_embedding_layers=False)
            torch.save({"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}, os.path.join(directory, _DDP_STATE))

    def load(self, directory: str) -> None:
        import torch
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        adapter = Path(directory) / ADAPTER_DIR / "adapter_model.safetensors"
        set_peft_model_state_dict(self.peft_model, load_file(str(adapter), device=str(self.device)))
        state = torch.load(os.path.join(directory, _DDP_STATE), map_location=self.device, weights_only=True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])


def _mean_across_ranks(value: float, device: Any) -> float:
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / dist.get_world_size()


def train_loop_per_worker(config: dict) -> None:
    """Ray Train worker entry point.

    Args:
        config: ``{"train": TrainConfig.model_dump(), "num_rows": int, "deepspeed": dict | None}``,
            optionally ``"resume_from": str`` (a checkpoint dir/URI used when the run has none
            of its own yet) and ``"fail_once_at_step": int``: a fresh (not restored) attempt raises right
            after checkpointing that step, to test recovery (``run.max_failures`` >= 1).
    """
    import ray.train
    import torch
    import torch.distributed as dist

    from ray_icma.models import apply_lora, load_causal_lm, lora_config
    from ray_icma.train.collate import make_collate_fn

    cfg, num_rows = config["train"], config["num_rows"]
    optim, data, run = cfg["optim"], cfg["data"], cfg["run"]
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    _seed_everything(cfg["seed"])

    # Model + LoRA (ICMA: r 32, alpha 64, dropout 0.1, every linear layer but lm_head).
    use_gpu = cfg["scaling"]["use_gpu"]
    dtype = cfg["model"]["dtype"]
    dtype = ("bfloat16" if use_gpu else "float32") if dtype == "auto" else dtype
    model, tokenizer = load_causal_lm(
        cfg["model"]["name"], gguf_file=cfg["model"]["gguf_file"], torch_dtype=dtype, trust_remote_code=cfg["model"]["trust_remote_code"]
    )
    model.config.use_cache = False
    lora = cfg["lora"]
    model = apply_lora(model, lora_config(r=lora["r"], alpha=lora["alpha"], dropout=lora["dropout"], target=lora["target"], model=model))
    for peft_cfg in model.peft_config.values():  # exported adapters name the spec they load with
        peft_cfg.base_model_name_or_path = cfg["model"]["name"]

    # Steps: every worker sees global batches of micro_batch_size * world rows (drop_last).
    micro, accumulation = optim["micro_batch_size"], optim["gradient_accumulation_steps"]
    global_batches = num_rows // (micro * world)
    steps_per_epoch = global_batches // accumulation
    if steps_per_epoch < 1:
        raise ValueError(
            f"{num_rows} rows make no optimizer step with micro_batch_size={micro} x {world} workers x "
            f"gradient_accumulation_steps={accumulation}; use more rows or smaller batches"
        )
    total_steps = optim["max_steps"] or optim["epochs"] * steps_per_epoch

    # Engine: DeepSpeed ZeRO or DDP, with torch AdamW over the trainable (LoRA) weights.
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=optim["lr"], weight_decay=optim["weight_decay"])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup_linear(optim["warmup_steps"], total_steps))
    if cfg["strategy"] == "deepspeed":
        engine: Any = _DeepSpeedEngine(model, optimizer, scheduler, config["deepspeed"])
    else:
        engine = _DDPEngine(model, optimizer, scheduler, accumulation, optim["max_grad_norm"])

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

    # Data: the (unsplit) ICL rows, each rank keeps its slice of every global batch.
    shard = ray.train.get_dataset_shard("train")
    collate = make_collate_fn(tokenizer, data["cutoff_len"], rank, world)

    def save_and_report(metrics: dict) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            engine.save(tmp, rank)
            if rank == 0:
                Path(tmp, TRAIN_STATE_FILE).write_text(json.dumps(state))
            dist.barrier()
            has_files = rank == 0 or cfg["strategy"] == "deepspeed"
            ray.train.report(
                metrics,
                checkpoint=ray.train.Checkpoint.from_directory(tmp) if has_files else None,
                checkpoint_dir_name=f"checkpoint_{step:06d}",
            )

    started, tokens_here = time.perf_counter(), 0
    micro_per_epoch = steps_per_epoch * accumulation
    window: list[float] = []
    for epoch in range(step // steps_per_epoch, math.ceil(total_steps / steps_per_epoch)):
        if step >= total_steps:
            break
        skip = (step - epoch * steps_per_epoch) * accumulation  # micro-batches already trained this epoch
        batches = shard.iter_torch_batches(
            batch_size=micro * world,
            collate_fn=collate,
            drop_last=True,
            local_shuffle_buffer_size=min(num_rows, 1024),
            local_shuffle_seed=cfg["seed"] + epoch,
        )
        for index, batch in enumerate(batches):
            if index >= micro_per_epoch or step >= total_steps:
                break
            if index < skip:
                continue
            batch = {k: v.to(engine.device) for k, v in batch.items()}
            loss = engine.loss(batch)
            window.append(float(loss.detach()))
            step_tokens = int(batch["attention_mask"].sum())
            tokens_here += step_tokens
            state["tokens"] += step_tokens
            if not engine.backward_step(loss):
                continue
            step += 1
            step_loss = _mean_across_ranks(sum(window) / len(window), engine.device)
            window = []
            state.update(step=step, epoch=epoch)
            state["loss_history"].append({"step": step, "epoch": epoch, "loss": step_loss, "lr": engine.lr()})
            elapsed = time.perf_counter() - started
            metrics = {
                "step": step,
                "epoch": epoch,
                "loss": step_loss,
                "lr": engine.lr(),
                "tokens_per_s_per_worker": tokens_here / elapsed if elapsed > 0 else 0.0,
                "peak_rss_mb": _peak_rss_mb(),
            }
            if rank == 0:
                print(f"[ray-icma] step {step}/{total_steps} epoch {epoch} loss {step_loss:.4f} lr {engine.lr():.2e}", flush=True)
            every = run["checkpoint_every"]
            if step == total_steps or (every and step % every == 0):
                save_and_report(metrics)
                if step == config.get("fail_once_at_step") and checkpoint is None:
                    raise RuntimeError(f"injected worker failure after the step-{step} checkpoint (fault-tolerance test)")
            elif step % run["log_every"] == 0:
                ray.train.report(metrics)
