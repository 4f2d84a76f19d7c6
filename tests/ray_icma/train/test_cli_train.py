"""`ray-icma train`: validation-only runs and user errors (no training here)."""
from pathlib import Path

from typer.testing import CliRunner

from ray_icma.cli.app import app

ROOT = Path(__file__).resolve().parents[3]
CONFIG = str(ROOT / "configs/train/tiny/ci_deepspeed_zero2.yaml")


def test_validate_prints_resolved_config():
    result = CliRunner().invoke(app, ["train", CONFIG, "zero_stage=3", "optim.lr=3e-4", "--validate"])
    assert result.exit_code == 0, result.output
    assert '"zero_stage": 3' in result.output and '"lr": 0.0003' in result.output
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
