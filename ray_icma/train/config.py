"""The training config: what `configs/train/**.yaml` may contain, with defaults from ICMA's code."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike
from typing import Any, Literal

from pydantic import Field, model_validator

from ray_icma.config import Section
from ray_icma.precision import Precision

__all__ = [
    "TrainConfig",
    "ModelSection",
    "LoraSection",
    "DataSection",
    "OptimSection",
    "ScalingSection",
    "RunSection",
    "load_train_config",
]


_Section = Section  # the one config-section base (ray_icma.config.Section)


class ModelSection(_Section):
    name: str = Field("smollm2-135m", description="Hub id, local dir, or preset (smollm2-135m, tiny-random-llama)")
    gguf_file: str | None = Field(None, description="GGUF file name inside `name` (needs the gguf package)")
    trust_remote_code: bool = False


class LoraSection(_Section):
    r: int = Field(32, gt=0, description="LoRA rank (ICMA 32)")
    alpha: int = Field(64, gt=0, description="LoRA alpha (ICMA 64)")
    dropout: float = Field(0.1, ge=0, lt=1, description="LoRA dropout (ICMA 0.1)")
    target: str | list[str] = Field("all-linear", description="all-linear (every nn.Linear but lm_head) or module names")
    disable_lora: bool = Field(False, description="ICMA's --disable_lora: full fine-tuning of every weight, no adapter")


class DataSection(_Section):
    task: Literal["mol2cap", "cap2mol"] = "mol2cap"
    train: str = Field(..., description="records file (TSV CID/SMILES/description, JSONL or Parquet)")
    pool: str | None = Field(None, description="records the examples come from; default: the train file")
    contexts: str | None = Field(None, description="contexts JSONL from `ray-icma contexts`; null: zero-shot rows")
    n_shot: int = Field(2, ge=0, description="examples per prompt (ICMA models: 2 mol2cap, 4 cap2mol)")
    strategy: Literal["code", "probabilistic", "top"] = Field("code", description="example selection, see retrieval.rerank")
    start_pos: int = Field(0, ge=0, description="first usable neighbor rank after the query itself is removed")
    window: int | Literal["icma"] = Field(
        10, description="candidates the walk chooses among; icma: ICMA's windows (cap2mol training rows 9 = its start_pos=1)"
    )
    reverse: bool = Field(True, description="sequence reversal: most similar example last (ICMA); false: best first")
    p_take: float = Field(0.5, gt=0, le=1, description="take probability of strategy=probabilistic (this project's walk)")
    max_rows: int | None = Field(None, gt=0, description="train on a seeded random sample of this many rows")
    cutoff_len: int = Field(1024, gt=16, description="token budget for prompt + answer (ICMA 1024; their models 2048)")
    train_on_inputs: bool = Field(False, description="ICMA's train_on_inputs: the loss also covers the prompt tokens")
    bucket_by_length: bool = Field(
        True, description="batch rows of similar length together (seeded), so micro-batches carry little padding"
    )


class OptimSection(_Section):
    lr: float = Field(2e-4, gt=0, description="peak learning rate (ICMA code default 2e-5; logged runs 2e-4..3e-4)")
    weight_decay: float = Field(0.0, ge=0)
    warmup_steps: int = Field(0, ge=0, description="linear warm-up optimizer steps (ICMA 1000 on 26k rows)")
    epochs: int = Field(1, gt=0)
    max_steps: int | None = Field(None, gt=0, description="stop after this many optimizer steps (overrides epochs)")
    micro_batch_size: int = Field(4, gt=0, description="rows per worker per forward pass (ICMA 4)")
    gradient_accumulation_steps: int = Field(1, gt=0, description="micro-batches per optimizer step")
    max_grad_norm: float = Field(1.0, gt=0)
    gradient_checkpointing: bool = Field(False, description="recompute activations in backward: less memory, ~30% slower")


class ScalingSection(_Section):
    num_workers: int = Field(2, gt=0, description="Ray Train workers (one per GPU on GPU clusters)")
    use_gpu: bool = False
    cpus_per_worker: float = Field(1, gt=0)


class RunSection(_Section):
    name: str = Field("icmt", description="run name; a run dir storage_path/name is resumed when it exists")
    storage_path: str = Field("runs", description="local dir (shared by all nodes) or s3:// / gs:// URI")
    output_dir: str = Field("outputs/icmt", description="where the adapter, merged model and loss.csv go")
    checkpoint_every: int | None = Field(None, gt=0, description="checkpoint every N steps (always at the end)")
    keep_checkpoints: int | None = Field(2, gt=0, description="checkpoints kept in storage (null: all)")
    max_failures: int = Field(0, ge=-1, description="worker failures tolerated, resuming from the last checkpoint")
    resume_from: str | None = Field(None, description="checkpoint dir to start from (else the run dir's latest)")
    log_every: int = Field(10, gt=0, description=(
        "report metrics to Ray Train every N optimizer steps (and at every checkpoint). Each report is a barrier "
        "across the workers and a one-slot queue the controller drains every 2 s; rank 0 prints every step and "
        "loss.csv keeps every step either way"))
    merge: bool = Field(False, description="also export a merged (base + adapter) model")


class TrainConfig(_Section):
    """In-context molecule tuning (LoRA) on Ray Train: model, adapter, data, optimizer, scaling, run."""

    model: ModelSection = Field(default_factory=ModelSection)
    lora: LoraSection = Field(default_factory=LoraSection)
    data: DataSection
    optim: OptimSection = Field(default_factory=OptimSection)
    precision: Precision = Field(
        "auto",
        description="auto: bf16 where the CPU has AMX/AVX512-BF16 or the GPU supports it, else fp32; "
        "bf16 autocasts the forward pass, weights and optimizer state stay fp32 (see ray_icma.precision)",
    )
    strategy: Literal["deepspeed", "ddp"] = Field("deepspeed", description="deepspeed (ZeRO) or plain torch DDP")
    zero_stage: Literal[2, 3] = Field(2, description="DeepSpeed ZeRO stage; 3 also shards the frozen base weights")
    scaling: ScalingSection = Field(default_factory=ScalingSection)
    run: RunSection = Field(default_factory=RunSection)
    seed: int = 42

    @model_validator(mode="after")
    def _check_combinations(self) -> "TrainConfig":
        if self.lora.disable_lora and self.run.merge:
            raise ValueError("run.merge needs a LoRA adapter; with lora.disable_lora the exported model is already full")
        return self


def load_train_config(path: str | PathLike[str] | None, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read, override and validate a training config.

    Raises:
        ConfigError: every problem of the file and the overrides at once.
    """
    from ray_icma.config import load_config, validate_config

    return validate_config(TrainConfig, load_config(path, overrides), source=str(path or "config"))


def as_train_config(cfg: TrainConfig | Mapping[str, Any]) -> TrainConfig:
    """Accept a validated config or a plain dict (validated here)."""
    if isinstance(cfg, TrainConfig):
        return cfg
    from ray_icma.config import validate_config

    return validate_config(TrainConfig, cfg)
