"""Training fixtures: the tiny CI config pointed at a temp run dir, and one shared ZeRO-2 run."""
import os
from pathlib import Path

import pytest

# A busy shared cluster can take minutes to start Python workers that import torch + DeepSpeed;
# Ray Train's default 60 s start timeout then fails runs that would succeed (propagated to the controller).
os.environ.setdefault("RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S", "600")

ROOT = Path(__file__).resolve().parents[3]
CI_CONFIG = ROOT / "configs" / "train" / "tiny" / "ci_deepspeed_zero2.yaml"


@pytest.fixture(scope="session")
def train_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("train")


@pytest.fixture(scope="session")
def tiny_config(train_dir, chebi20_pool_file):
    """``make(name, *overrides) -> TrainConfig``: the CI config with its run under ``train_dir``."""
    from ray_icma.train import load_train_config

    def make(name: str, *overrides: str):
        return load_train_config(
            CI_CONFIG,
            [
                f"data.train={chebi20_pool_file}",
                f"run.name={name}",
                f"run.storage_path={train_dir / 'runs'}",
                f"run.output_dir={train_dir / 'out' / name}",
                "scaling.cpus_per_worker=0.05",  # correctness runs: schedule even when other jobs hold the CPUs,
                *overrides,
            ],
        )

    return make


@pytest.fixture(scope="session")
def zero2_run(ray_cluster, tiny_config):
    """The reference run: DeepSpeed ZeRO-2, 2 workers, 4 steps, checkpoints at 2 and 4, merged export."""
    from ray_icma.train import run_training

    return run_training(tiny_config("zero2", "run.merge=true"))
