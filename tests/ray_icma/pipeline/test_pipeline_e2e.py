"""`ray-icma pipeline` end to end on the real Ray cluster with the tiny random Llama."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import require_module

require_module("torch")
require_module("rdkit")

from typer.testing import CliRunner  # noqa: E402

from ray_icma.cli.app import app  # noqa: E402
from ray_icma.config import ConfigError  # noqa: E402
from ray_icma.pipeline import STAGES, load_pipeline_config, run_pipeline  # noqa: E402
from ray_icma.report import SECTION_IDS  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
QUICKSTART = ROOT / "configs" / "pipeline" / "quickstart.yaml"


def _overrides(tmp_path, chebi20_test_file, chebi20_pool_file, scibert_dir, **extra) -> list[str]:
    base = {
        "run.root": str(tmp_path), "model.name": "tiny-random-llama",
        "data.queries": str(chebi20_test_file), "data.pool": str(chebi20_pool_file), "data.n_queries": 3,
        "evaluate.tokenizer": str(scibert_dir), "generate.max_new_tokens": 6, "generate.batch_size": 4,
        "generate.num_cpus_per_actor": 1, "train.scaling.cpus_per_worker": 1,
    }
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


def test_quickstart_config_is_valid_and_uses_bundled_data():
    cfg = load_pipeline_config(QUICKSTART)
    assert cfg.model.name == "smollm2-135m" and cfg.tasks == ["mol2cap", "cap2mol"]
    for path in (cfg.data.queries, cfg.data.pool, cfg.evaluate.tokenizer):
        assert Path(path).exists(), path


def test_bad_overrides_are_reported_together():
    with pytest.raises(ConfigError) as err:
        load_pipeline_config(QUICKSTART, ["train.optim.max_stepz=3", "generate.max_new_tokens=0"])
    text = str(err.value)
    assert "max_stepz" in text and "max_steps" in text and "max_new_tokens" in text


def test_cli_errors_are_one_line(tmp_path):
    runner = CliRunner()
    missing = runner.invoke(app, ["pipeline", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 1 and "not found" in missing.output and "Traceback" not in missing.output
    bad_stage = runner.invoke(app, ["pipeline", str(QUICKSTART), "--rerun", "bake"])
    assert bad_stage.exit_code == 2 and "stages are" in bad_stage.output  # a bad choice: usage error
    bad_key = runner.invoke(app, ["pipeline", str(QUICKSTART), "train.optim.max_stepz=3"])
    assert bad_key.exit_code == 1 and "max_stepz" in bad_key.output


@pytest.mark.ray_cluster
def test_pipeline_without_training_runs_and_resumes(ray_cluster, tmp_path, chebi20_test_file, chebi20_pool_file, scibert_dir):
    overrides = _overrides(tmp_path, chebi20_test_file, chebi20_pool_file, scibert_dir,
                           **{"run.name": "notrain", "tasks": "[cap2mol]", "train.enabled": "false"})
    cfg = load_pipeline_config(QUICKSTART, overrides)
    result = run_pipeline(cfg)
    run_dir = tmp_path / "notrain"
    status = {s["name"]: s["status"] for s in result.stages}
    assert status == {"data": "ran", "embed": "skipped", "contexts": "ran", "train": "skipped", "generate": "ran", "evaluate": "ran", "report": "ran"}
    preds = [json.loads(line) for line in (run_dir / "predictions" / "cap2mol.jsonl").read_text().splitlines()]
    queries = [json.loads(line) for line in (run_dir / "data" / "queries.jsonl").read_text().splitlines()]
    assert [p["id"] for p in preds] == [q["cid"] for q in queries] and len(preds) == 3
    assert set(result.metrics["cap2mol"]) >= {"bleu", "exact", "validity"}
    copy = json.loads((run_dir / "metrics" / "cap2mol_retrieval_copy.json").read_text())
    assert copy["metrics"]["validity"] == 1.0  # copied pool SMILES all parse
    page = result.report_path.read_text()
    for sid in SECTION_IDS:
        assert f'<section id="{sid}">' in page
    assert "retrieval top-1 copy" in page and "bm25" in page

    again = run_pipeline(load_pipeline_config(QUICKSTART, overrides))  # resume: nothing recomputed
    assert [s["status"] for s in again.stages if s["name"] != "report"] == ["skipped"] * (len(STAGES) - 1)
    assert again.metrics == result.metrics

    rerun = run_pipeline(load_pipeline_config(QUICKSTART, overrides), rerun=["generate"])
    assert {s["name"]: s["status"] for s in rerun.stages}["evaluate"] == "ran"  # later stages follow a forced one


@pytest.mark.slow
@pytest.mark.ray_cluster
def test_pipeline_with_icmt_training_both_tasks(ray_cluster, tmp_path, chebi20_test_file, chebi20_pool_file, scibert_dir):
    overrides = _overrides(tmp_path, chebi20_test_file, chebi20_pool_file, scibert_dir,
                           **{"run.name": "tiny", "train.optim.max_steps": 2, "train.data.max_rows": 8, "train.data.cutoff_len": 256})
    result = run_pipeline(load_pipeline_config(QUICKSTART, overrides))
    run_dir = tmp_path / "tiny"
    for task in ("mol2cap", "cap2mol"):
        trained = json.loads((run_dir / "train" / task / "result.json").read_text())
        assert trained["steps"] == 2 and Path(trained["adapter_dir"], "adapter_config.json").is_file()
        meta = json.loads((run_dir / "predictions" / f"{task}.jsonl.meta.json").read_text())
        assert meta["adapter"] == trained["adapter_dir"] and meta["rows"] == 3
        assert (run_dir / "contexts" / f"{task}_train.jsonl").is_file()
    page = result.report_path.read_text()
    assert page.count("data:image/png;base64,") == 3  # loss curves + one metrics chart per task
    assert "ICMT 2-shot" in page
