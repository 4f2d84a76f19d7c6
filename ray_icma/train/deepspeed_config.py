"""Fill the ZeRO JSON templates (`deepspeed/zero{2,3}.json`) from the training config."""
from __future__ import annotations

import json
from importlib import resources
from typing import Any

__all__ = ["deepspeed_config"]


def deepspeed_config(zero_stage: int, micro_batch_size: int, gradient_accumulation_steps: int, max_grad_norm: float, bf16: bool) -> dict:
    """A DeepSpeed config dict: the stage's JSON with its ``"auto"`` values filled in.

    Args:
        zero_stage: 2 (shard optimizer state + gradients) or 3 (also the weights).
        micro_batch_size: rows per worker per forward pass.
        gradient_accumulation_steps: micro-batches per optimizer step.
        max_grad_norm: gradient clipping norm.
        bf16: bfloat16 training (GPU); False trains in fp32 (CPU).
    """
    if zero_stage not in (2, 3):
        raise ValueError(f"zero_stage must be 2 or 3, got {zero_stage}")
    text = resources.files("ray_icma.train").joinpath(f"deepspeed/zero{zero_stage}.json").read_text(encoding="utf-8")
    cfg: dict[str, Any] = json.loads(text)
    cfg["train_micro_batch_size_per_gpu"] = micro_batch_size
    cfg["gradient_accumulation_steps"] = gradient_accumulation_steps
    cfg["gradient_clipping"] = max_grad_norm
    cfg["bf16"] = {"enabled": bool(bf16)}
    return cfg
