"""`ray-icma property ...`: inspect, split (JSONL/Parquet round trip), and a whole run on Ray."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

pytest.importorskip("rdkit")

from ray_icma.cli.app import app

runner = CliRunner()


def test_inspect_counts_labels_per_split(clintox_root):
    result = runner.invoke(app, ["property", "inspect", "clintox", "--root", str(clintox_root)])
    assert result.exit_code == 0, result.output
    assert "clintox (icma split): train 30, validation 5, test 20" in result.output
    assert "FDA_APPROVED (approved by the FDA): yes/no: train 26/4" in result.output


def test_split_writes_files_the_loader_reads_back(clintox_root, tmp_path):
    from ray_icma.property import load_property_file, load_property_splits

    out = tmp_path / "split"
    result = runner.invoke(app, ["property", "split", "clintox", "--kind", "scaffold", "--out", str(out),
                                 "--format", "parquet", "--root", str(clintox_root)])
    assert result.exit_code == 0, result.output
    expected, _ = load_property_splits("clintox", "scaffold", root=clintox_root)
    for part, records in expected.items():
        assert load_property_file(out / f"{part}.parquet", "clintox").records == records


def test_unknown_set_and_bad_config_are_one_line_errors(clintox_root, tmp_path):
    result = runner.invoke(app, ["property", "inspect", "muv", "--root", str(clintox_root)])
    assert result.exit_code == 2 and "'muv' is not one of" in result.output  # a bad choice: usage error
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("dataset: bbbp\nsplit: random\n")
    result = runner.invoke(app, ["property", "run", str(cfg)])
    assert result.exit_code == 1 and "split" in result.output


def test_run_end_to_end_on_ray(clintox_root, tmp_path, ray_cluster):
    """Neighbours -> ICMT LoRA on Ray Train (tiny model, 2 steps) -> Ray Data scoring -> AUCs for 3 methods."""
    out = tmp_path / "runs"
    result = runner.invoke(app, [
        "property", "run", "configs/pipeline/property_clintox.yaml", f"data_root={clintox_root}", "split=icma",
        "model=tiny-random-llama", "train.rows=8", "train.max_steps=2", "train.micro_batch_size=2", "train.cpus_per_worker=1",
        "score.num_cpus=1", "score.precision=fp32", "baselines.rf_trees=10", "n_boot=50", f"out_dir={out}",
    ])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "clintox_icma" / "results.json").read_text())
    assert set(saved["same_rows"]) == {"icmt", "knn", "knn10", "rf"}
    assert saved["sizes"]["test_rows_scored"] == 40 and saved["sizes"]["train_steps"] == 2
    assert (out / "clintox_icma" / "icmt" / "adapter" / "adapter_config.json").is_file()
    lines = (out / "clintox_icma" / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 40 and all(0 < json.loads(line)["icmt"] < 1 for line in lines)
