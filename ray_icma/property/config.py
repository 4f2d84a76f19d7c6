"""The property pipeline config: what ``configs/pipeline/property_<set>.yaml`` may contain."""
from __future__ import annotations

from os import PathLike
from typing import Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["PropertyConfig", "load_property_config"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class RetrievalSection(_Section):
    retriever: str = Field("morgan", description="morgan, topological, gnn:<checkpoint.pth> or random")
    k: int = Field(12, gt=0, description="neighbours fetched per molecule (examples are the first n_shot with the label known)")
    n_shot: int = Field(2, ge=0, description="examples per prompt (ICMA's released models: 2 for mol2cap)")


class TrainSection(_Section):
    enabled: bool = Field(True, description="false: score with `adapter` (or the base model) without training")
    adapter: str | None = Field(None, description="an existing adapter dir to score with instead of training")
    rows: int | None = Field(400, gt=0, description="training rows sampled (null: all (molecule, label) rows)")
    positive_share: float | None = Field(0.5, gt=0, lt=1, description="share of Yes rows in the sample (null: as drawn)")
    max_steps: int | None = Field(None, gt=0)
    epochs: int = Field(1, gt=0)
    lr: float = Field(3e-4, gt=0)
    micro_batch_size: int = Field(4, gt=0)
    num_workers: int = Field(1, gt=0)
    cpus_per_worker: float = Field(2, gt=0)
    strategy: Literal["ddp", "deepspeed"] = "ddp"
    precision: str | None = Field(None, description="bf16 / fp32 / auto where the training loop supports it")


class ScoreSection(_Section):
    test_rows: int | None = Field(None, gt=0, description="cap on scored (molecule, label) rows, stratified per label (null: all)")
    batch_size: int = Field(8, gt=0)
    concurrency: int = Field(1, gt=0)
    num_cpus: float = Field(2, gt=0)
    precision: Literal["fp32", "bf16"] = "fp32"


class BaselineSection(_Section):
    rf_trees: int = Field(200, gt=0, description="random forest trees (Morgan r2 2048 bits)")
    rf_jobs: int = Field(1, gt=0)
    knn_k: int = Field(10, gt=0, description="a second k-NN vote over this many neighbours (the first uses the prompt's n_shot)")
    full_test: bool = Field(True, description="when ICMT scores a sample, also score the baselines on the whole test split")


class PropertyConfig(_Section):
    """One set, one split: retrieve, train ICMT, score, and compare with k-NN vote and a random forest."""

    dataset: str
    split: Literal["icma", "scaffold"] = "scaffold"
    data_root: str | None = Field(None, description="folder with <set>/{train,validation,test}.csv (default $RAY_ICMA_MOLECULENET or ../shared/data/moleculenet)")
    model: str = "smollm2-135m"
    cutoff_len: int = Field(1024, gt=32)
    retrieval: RetrievalSection = Field(default_factory=RetrievalSection)
    train: TrainSection = Field(default_factory=TrainSection)
    score: ScoreSection = Field(default_factory=ScoreSection)
    baselines: BaselineSection = Field(default_factory=BaselineSection)
    n_boot: int = Field(1000, gt=0)
    seed: int = 0
    out_dir: str = Field("runs/property", description="results go to <out_dir>/<dataset>_<split>/")

    @field_validator("dataset")
    @classmethod
    def _known(cls, value: str) -> str:
        from ray_icma.property.datasets import get_set

        return get_set(value).name


def load_property_config(path: str | PathLike[str] | None, overrides: Sequence[str] = ()) -> PropertyConfig:
    """Read, override (``key.sub=value``) and validate; ConfigError lists every problem."""
    from ray_icma.config import load_config, validate_config

    return validate_config(PropertyConfig, load_config(path, overrides), source=str(path or "config"))
