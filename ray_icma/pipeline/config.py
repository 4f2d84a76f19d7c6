"""The pipeline config: what `configs/pipeline/*.yaml` may contain (defaults = the offline quickstart)."""
from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["PipelineConfig", "load_pipeline_config", "STAGES"]

#: stage names in run order (`--rerun` takes these).
STAGES = ("data", "embed", "contexts", "train", "generate", "evaluate", "report")
Task = Literal["mol2cap", "cap2mol"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class RunSection(_Section):
    name: str = Field("quickstart", description="run name; outputs go to <root>/<name>/ and are resumed from there")
    root: str = Field("runs", description="folder holding run dirs")
    seed: int = Field(0, description="seeds query sampling, example selection, training and sampling")


class DataSection(_Section):
    queries: str = Field("tests/assets/chebi20_test_200.txt", description="records to predict for (TSV/JSONL/Parquet)")
    pool: str = Field("tests/assets/chebi20_validation_300.txt", description="retrieval pool and training rows")
    n_queries: int | None = Field(24, gt=0, description="use this many queries (null: all)")
    query_sample: Literal["first", "random"] = Field("random", description="first N rows, or a seeded random sample")
    validate_smiles: bool = Field(True, description="skip rows whose SMILES RDKit rejects (reported in the data stage)")


class RetrievalSection(_Section):
    mol2cap: str = Field("morgan", description="morgan | topological | gnn:<checkpoint.pth> | random")
    cap2mol: str = Field("bm25", description="bm25 (bm25s) | bm25-icma | bm25-es:<url> | random")
    k: int = Field(10, gt=0, description="neighbours kept per query (ICMA 10)")
    embed_batch_size: int = Field(256, gt=0, description="molecules per GNN forward pass (gnn only)")
    embed_concurrency: int = Field(1, gt=0, description="GNN encoder actors (gnn only)")


class ModelSection(_Section):
    name: str = Field("smollm2-135m", description="smollm2-135m (offline GGUF), tiny-random-llama, a local dir or Hub id")
    gguf_file: str | None = Field(None, description="GGUF file inside `name` when it is a dir/Hub repo")


class TrainSection(_Section):
    enabled: bool = Field(True, description="false: generate with the base model (no tuning)")
    n_shot: dict[str, int] = Field(default_factory=lambda: {"mol2cap": 2, "cap2mol": 2},
                                   description="examples per prompt per task, in training and generation (0 = plain fine-tuning)")
    max_steps: int = Field(8, gt=0, description="optimizer steps per task")
    max_rows: int | None = Field(None, gt=0, description="train on a seeded sample of this many pool rows (null: all)")
    micro_batch_size: int = Field(2, gt=0)
    gradient_accumulation_steps: int = Field(1, gt=0)
    lr: float = Field(3e-4, gt=0)
    warmup_steps: int = Field(0, ge=0)
    cutoff_len: int = Field(512, gt=16, description="token budget for prompt + answer (ICMA 1024)")
    lora_r: int = Field(8, gt=0, description="LoRA rank (ICMA 32; small ranks train faster on CPU)")
    lora_alpha: int = Field(16, gt=0)
    lora_dropout: float = Field(0.1, ge=0, lt=1)
    strategy: Literal["ddp", "deepspeed"] = Field("ddp", description="Ray Train backend strategy")
    num_workers: int = Field(1, gt=0, description="Ray Train workers")
    cpus_per_worker: float = Field(1, gt=0)
    use_gpu: bool = False

    @field_validator("n_shot")
    @classmethod
    def _check_n_shot(cls, value: dict[str, int]) -> dict[str, int]:
        bad = [f"{k}={v}" for k, v in value.items() if k not in ("mol2cap", "cap2mol") or not isinstance(v, int) or v < 0]
        if bad:
            raise ValueError(f"n_shot takes mol2cap/cap2mol -> integer >= 0, got {', '.join(bad)}")
        return value


class GenerateSection(_Section):
    max_new_tokens: int = Field(64, gt=0, description="answer budget (ICMA 256)")
    num_beams: int = Field(1, gt=0)
    do_sample: bool = Field(False, description="sample at `temperature` (ICMA samples at 0.7; greedy is reproducible)")
    temperature: float = Field(0.7, gt=0)
    batch_size: int = Field(8, gt=0)
    concurrency: int = Field(1, gt=0, description="generator actors (one model copy each)")
    num_cpus_per_actor: float = Field(2, gt=0, description="CPUs per actor (also its torch threads)")
    num_gpus_per_actor: float = Field(0, ge=0)


class EvaluateSection(_Section):
    tokenizer: str | None = Field("tests/assets/scibert_scivocab_uncased",
                                  description="SciBERT vocab dir or Hub id for caption metrics (null: $RAY_ICMA_SCIBERT or the Hub)")
    retrieval_copy_baseline: bool = Field(True, description="also score the top-1 neighbour's answer as a prediction")


class PipelineConfig(_Section):
    """Data -> (GNN embedding) -> contexts -> ICMT LoRA training -> generation -> evaluation -> report."""

    run: RunSection = Field(default_factory=RunSection)
    tasks: list[Task] = Field(default_factory=lambda: ["mol2cap", "cap2mol"])
    data: DataSection = Field(default_factory=DataSection)
    retrieval: RetrievalSection = Field(default_factory=RetrievalSection)
    model: ModelSection = Field(default_factory=ModelSection)
    train: TrainSection = Field(default_factory=TrainSection)
    generate: GenerateSection = Field(default_factory=GenerateSection)
    evaluate: EvaluateSection = Field(default_factory=EvaluateSection)

    @model_validator(mode="after")
    def _check(self) -> "PipelineConfig":
        if not self.tasks:
            raise ValueError("tasks is empty; use [mol2cap], [cap2mol] or both")
        if len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"tasks has duplicates: {self.tasks}")
        return self

    def n_shot(self, task: str) -> int:
        """Examples per prompt for ``task`` (default 2)."""
        return int(self.train.n_shot.get(task, 2))

    @property
    def run_dir(self) -> Path:
        return Path(self.run.root) / self.run.name


def _resolve(path: str | None, base: Path | None) -> str | None:
    """A relative path that does not exist from the CWD is tried from the repo root above the config."""
    if not path or "://" in path or Path(path).is_absolute() or Path(path).exists() or base is None:
        return path
    candidate = base / path
    return str(candidate) if candidate.exists() else path


def load_pipeline_config(path: str | PathLike[str] | None, overrides: Sequence[str] = ()) -> PipelineConfig:
    """Read a pipeline YAML, apply ``dotted.key=value`` overrides and validate.

    Relative data/tokenizer paths that do not exist from the current directory are looked up
    from the repository root (two levels above ``configs/pipeline/x.yaml``), so the bundled
    configs work from anywhere inside a checkout.

    Raises:
        ray_icma.config.ConfigError: every problem of the file and the overrides at once.
    """
    from ray_icma.config import load_config, validate_config

    cfg = validate_config(PipelineConfig, load_config(path, overrides), source=str(path or "config"))
    base = Path(path).resolve().parent.parent.parent if path else None
    cfg.data.queries = _resolve(cfg.data.queries, base)
    cfg.data.pool = _resolve(cfg.data.pool, base)
    cfg.evaluate.tokenizer = _resolve(cfg.evaluate.tokenizer, base)
    return cfg
