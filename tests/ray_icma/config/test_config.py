"""YAML + dotted overrides + pydantic validation into one ConfigError."""
from pathlib import Path

import pytest

from ray_icma.config import ConfigError, apply_overrides, load_config, parse_override
from ray_icma.train.config import TrainConfig, load_train_config

ROOT = Path(__file__).resolve().parents[3]
TRAIN_CONFIGS = sorted((ROOT / "configs" / "train").rglob("*.yaml"))


@pytest.mark.parametrize(
    ("item", "path", "value"),
    [
        ("optim.lr=3e-4", ["optim", "lr"], 3e-4),
        ("optim.lr=1.0e-3", ["optim", "lr"], 1e-3),
        ("zero_stage=3", ["zero_stage"], 3),
        ("data.contexts=null", ["data", "contexts"], None),
        ("run.merge=true", ["run", "merge"], True),
        ("model.name=facebook/galactica-125m", ["model", "name"], "facebook/galactica-125m"),
        ("lora.target=[q_proj, v_proj]", ["lora", "target"], ["q_proj", "v_proj"]),
        ("data.train=", ["data", "train"], None),
    ],
)
def test_parse_override(item, path, value):
    assert parse_override(item) == (path, value)


@pytest.mark.parametrize("bad", ["optim.lr", "=3", "optim..lr=1"])
def test_bad_override_syntax(bad):
    with pytest.raises(ConfigError, match="dotted.key=value"):
        parse_override(bad)


def test_apply_overrides_creates_levels_and_copies():
    base = {"optim": {"lr": 1.0}}
    out = apply_overrides(base, ["optim.lr=2", "run.name=x"])
    assert out == {"optim": {"lr": 2}, "run": {"name": "x"}}
    assert base == {"optim": {"lr": 1.0}}
    with pytest.raises(ConfigError, match="is a value, not a section"):
        apply_overrides(base, ["optim.lr.x=1"])


def test_load_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "list.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(bad)


def test_all_problems_listed_with_hints(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  task: mol2text\n  train: x.txt\noptim:\n  lrr: 1\n  epochs: 0\nstrategyy: ddp\n")
    with pytest.raises(ConfigError) as info:
        load_train_config(path)
    problems = info.value.problems
    assert len(problems) == 4
    text = str(info.value)
    assert "data.task:" in text and "'mol2cap'" in text
    assert "optim.lrr: unknown key; did you mean 'lr'?" in text
    assert "optim.epochs:" in text
    assert "strategyy: unknown key; did you mean 'strategy'?" in text


def test_required_and_combination_checks():
    with pytest.raises(ConfigError, match="data: Field required"):
        load_train_config(None, [])
    with pytest.raises(ConfigError, match="run.merge needs a LoRA adapter"):
        load_train_config(None, ["data.train=x", "lora.disable_lora=true", "run.merge=true"])


def test_icma_defaults():
    cfg = TrainConfig.model_validate({"data": {"train": "x"}})
    assert (cfg.lora.r, cfg.lora.alpha, cfg.lora.dropout, cfg.lora.target) == (32, 64, 0.1, "all-linear")
    assert cfg.data.cutoff_len == 1024 and cfg.optim.micro_batch_size == 4
    assert cfg.strategy == "deepspeed" and cfg.zero_stage == 2


def test_shipped_configs_exist():
    names = {p.relative_to(ROOT / "configs" / "train").as_posix() for p in TRAIN_CONFIGS}
    assert {"smollm2_135m/icmt_mol2cap.yaml", "smollm2_135m/icmt_cap2mol.yaml", "tiny/ci_deepspeed_zero2.yaml", "mistral_7b/icmt_mol2cap_zero3.yaml"} <= names


@pytest.mark.parametrize("path", TRAIN_CONFIGS, ids=lambda p: p.parent.name + "/" + p.name)
def test_shipped_configs_validate_and_document_launch(path):
    cfg = load_train_config(path)
    header = path.read_text().split("\n\n")[0]
    assert f"ray-icma train configs/train/{path.parent.name}/{path.name}" in path.read_text()
    assert header.startswith("#")
    if cfg.data.contexts is None:
        assert cfg.data.n_shot == 0 or "contexts" in header
