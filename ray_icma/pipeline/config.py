"""The pipeline config: what `configs/pipeline/*.yaml` may contain (defaults = the offline quickstart)."""
from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, create_model, field_validator, model_validator

from ray_icma.config import Section as _Section
from ray_icma.generate.decoding import DecodingConfig
from ray_icma.precision import Precision
from ray_icma.train.config import DataSection as TrainDataSection
from ray_icma.train.config import ModelSection, TrainConfig

__all__ = ["PipelineConfig", "PipelineTrainSection", "load_pipeline_config", "STAGES"]

#: stage names in run order (`--rerun` takes these).
STAGES = ("data", "embed", "contexts", "train", "generate", "evaluate", "report")
Task = Literal["mol2cap", "cap2mol"]


class PipelineRunSection(_Section):
    name: str = Field("quickstart", description="run name; outputs go to <root>/<name>/ and are resumed from there")
    root: str = Field("runs", description="folder holding run dirs")
    seed: int = Field(0, description="seeds query sampling, example selection, training and sampling")
    on_change: Literal["rerun", "refuse"] = Field(
        "rerun", description="a finished stage whose inputs or config changed since it ran: rerun it (and what follows) or stop with the difference"
    )
    concurrent_tasks: bool = Field(
        False, description="train, then generate, the tasks at the same time instead of one after the other: their "
        "start-up (workers, model loads) overlaps; each task's worker group or generator actors must fit beside the "
        "other's (e.g. 1 CPU each on 2 cores)"
    )


class PipelineDataSection(_Section):
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


# The train section IS the training config (ray_icma.train.config.TrainConfig): the same sections,
# fields and defaults, minus what the pipeline fills in per task (task, files, n_shot, run dirs,
# model, seed). Derived from TrainConfig's fields, so a field added there is here too.
_SET_BY_PIPELINE_DATA = {"task", "train", "pool", "contexts", "n_shot"}
_SET_BY_PIPELINE = {"model", "data", "run", "seed"}

TrainDataOptions = create_model(
    "TrainDataOptions",
    __base__=_Section,
    __doc__="TrainConfig.data without the per-task files: example selection (also used for generation rows), cutoff, sampling.",
    **{name: (f.annotation, f) for name, f in TrainDataSection.model_fields.items() if name not in _SET_BY_PIPELINE_DATA},
)


class _PipelineTrainBase(_Section):
    enabled: bool = Field(True, description="false: generate with the base model (no tuning)")
    n_shot: dict[str, int] = Field(default_factory=lambda: {"mol2cap": 2, "cap2mol": 2},
                                   description="examples per prompt per task, in training and generation (0 = plain fine-tuning)")

    @field_validator("n_shot")
    @classmethod
    def _check_n_shot(cls, value: dict[str, int]) -> dict[str, int]:
        bad = [f"{k}={v}" for k, v in value.items() if k not in ("mol2cap", "cap2mol") or not isinstance(v, int) or v < 0]
        if bad:
            raise ValueError(f"n_shot takes mol2cap/cap2mol -> integer >= 0, got {', '.join(bad)}")
        return value


PipelineTrainSection = create_model(
    "PipelineTrainSection",
    __base__=_PipelineTrainBase,
    __doc__="ray_icma.train.config.TrainConfig's sections (lora, optim, scaling, strategy, ...) with its defaults.",
    data=(TrainDataOptions, Field(default_factory=TrainDataOptions, description="TrainConfig.data minus the per-task files")),
    **{name: (f.annotation, f) for name, f in TrainConfig.model_fields.items() if name not in _SET_BY_PIPELINE},
)


#: keys that moved from ``generate`` into ``generate.decoding`` (named in the error)
_MOVED_TO_DECODING = ("num_beams", "do_sample", "temperature", "top_p", "top_k", "repetition_penalty")


class GenerateSection(_Section):
    max_new_tokens: int = Field(64, gt=0, description="answer budget (ICMA 256)")
    decoding: DecodingConfig = Field(
        default_factory=DecodingConfig,
        description="greedy | icma (ICMA's sampling, seed 42) | {preset: .., num_beams, do_sample, temperature, top_p, top_k, "
        "repetition_penalty, seed}; see ray_icma.generate.decoding")
    precision: Precision = Field(
        "auto", description="auto: bf16 where the CPU has AMX/AVX512-BF16 or the GPU supports it, else fp32; the model is cast to it")
    batch_size: int = Field(8, gt=0)
    concurrency: int = Field(1, gt=0, description="generator actors (one model copy each)")
    num_cpus_per_actor: float = Field(2, gt=0, description="CPUs per actor (also its torch threads)")
    num_gpus_per_actor: float = Field(0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: object) -> object:
        if isinstance(data, dict):
            moved = [k for k in _MOVED_TO_DECODING if k in data]
            if moved:
                raise ValueError(f"{', '.join(moved)} moved into generate.decoding (e.g. generate.decoding.{moved[0]}=...)")
        return data


class EvaluateSection(_Section):
    tokenizer: str | None = Field("tests/assets/scibert_scivocab_uncased",
                                  description="SciBERT vocab dir or Hub id for caption metrics (null: $RAY_ICMA_SCIBERT or the Hub)")
    retrieval_copy_baseline: bool = Field(True, description="also score the top-1 neighbour's answer as a prediction")


class PipelineConfig(_Section):
    """Data -> (GNN embedding) -> contexts -> ICMT LoRA training -> generation -> evaluation -> report."""

    run: PipelineRunSection = Field(default_factory=PipelineRunSection)
    tasks: list[Task] = Field(default_factory=lambda: ["mol2cap", "cap2mol"])
    data: PipelineDataSection = Field(default_factory=PipelineDataSection)
    retrieval: RetrievalSection = Field(default_factory=RetrievalSection)
    model: ModelSection = Field(default_factory=ModelSection)
    train: PipelineTrainSection = Field(default_factory=PipelineTrainSection)
    generate: GenerateSection = Field(default_factory=GenerateSection)
    evaluate: EvaluateSection = Field(default_factory=EvaluateSection)

    @model_validator(mode="after")
    def _check(self) -> "PipelineConfig":
        if not self.tasks:
            raise ValueError("tasks is empty; use [mol2cap], [cap2mol] or both")
        if len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"tasks has duplicates: {self.tasks}")
        for task in self.tasks:  # TrainConfig's own cross-field checks, before any stage runs
            self.train_config(task, train_file="<pool>", contexts=None, run_name="check", storage_path="runs", output_dir="out")
        return self

    def train_config(self, task: str, *, train_file: str, contexts: str | None, run_name: str, storage_path: str,
                     output_dir: str) -> TrainConfig:
        """The :class:`TrainConfig` the train stage runs for ``task`` (validated by its own schema)."""
        from ray_icma.config import validate_config

        top = {name: getattr(self.train, name) for name in TrainConfig.model_fields if name not in _SET_BY_PIPELINE}
        data = {**self.train.data.model_dump(), "task": task, "train": train_file, "contexts": contexts, "n_shot": self.n_shot(task)}
        return validate_config(TrainConfig, {
            **{k: v.model_dump() if isinstance(v, BaseModel) else v for k, v in top.items()},
            "model": self.model.model_dump(),
            "data": data,
            "run": {"name": run_name, "storage_path": storage_path, "output_dir": output_dir},
            "seed": self.run.seed,
        }, source=f"train config for {task}")

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
