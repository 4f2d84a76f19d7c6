"""`ray-icma train`: validation-only runs and user errors (no training here)."""
from pathlib import Path

from typer.testing import CliRunner

from ray_icma.cli.app import app

ROOT = Path(__file__).resolve().parents[3]
CONFIG = str(ROOT / "configs/train/tiny/ci_deepspeed_zero2.yaml")


def test_validate_prints_resolved_config():
    result = CliRunner().invoke(app, ["train", CONFIG, "zero_stage=3", "optim.lr=3e-4", "precision=bf16", "--validate"])
    assert result.exit_code == 0, result.output
    assert '"zero_stage": 3' in result.output and '"lr": 0.0003' in result.output and '"precision": "bf16"' in result.output
    assert "is valid" in result.output


def test_bad_config_lists_problems_without_traceback():
    result = CliRunner().invoke(app, ["train", CONFIG, "optim.lrr=1", "strategy=foo"])
    assert result.exit_code == 1
    assert "did you mean 'lr'" in result.output and "strategy" in result.output
    assert "Traceback" not in result.output


def test_missing_config_file(tmp_path):
    result = CliRunner().invoke(app, ["train", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1 and "no such file" in result.output


def test_missing_data_file_fails_before_training(tmp_path):
    result = CliRunner().invoke(app, ["train", CONFIG, f"data.train={tmp_path / 'none.txt'}", f"run.storage_path={tmp_path}"])
    assert result.exit_code == 1
    assert "none.txt" in result.output and "Traceback" not in result.output


def test_failed_training_is_one_error_line(ray_cluster, chebi20_pool_file, tmp_path, monkeypatch):
    """A worker error surfaces as Ray Train's TrainingFailedError; the CLI prints one line, exit 1."""
    from ray_icma.train.lora_sft_loop import FAULT_ENV

    monkeypatch.setenv(FAULT_ENV, "1")  # workers raise after checkpointing step 1; max_failures 0
    result = CliRunner().invoke(app, [
        "train", CONFIG, f"data.train={chebi20_pool_file}", "strategy=ddp", "scaling.num_workers=1", "scaling.cpus_per_worker=0.05",
        "optim.max_steps=2", "run.checkpoint_every=1", "run.name=fails", f"run.storage_path={tmp_path}", f"run.output_dir={tmp_path / 'out'}",
    ])
    assert result.exit_code == 1, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("error: training run 'fails' failed: worker 0: RuntimeError: RAY_ICMA_TEST_FAIL_AFTER_STEP=1"), last
    assert "Traceback" not in result.output
