"""Pipeline resume is checked: each stage's config slice and input-file hashes are recorded, a
change reruns the stage (and the ones after it) or is refused, and the message says what changed.
Runs the data and contexts stages only (no Ray, no model): fast tier."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ray_icma.pipeline import StageChangedError, load_pipeline_config, run_pipeline
from ray_icma.train.config import TrainConfig

QUICKSTART = Path(__file__).resolve().parents[3] / "configs" / "pipeline" / "quickstart.yaml"


@pytest.fixture
def setup(tmp_path, chebi20_test_file, chebi20_pool_file):
    pool = tmp_path / "pool.tsv"
    shutil.copy(chebi20_pool_file, pool)

    def config(*extra: str):
        return load_pipeline_config(QUICKSTART, [
            f"run.root={tmp_path}", "run.name=r", f"data.queries={chebi20_test_file}", f"data.pool={pool}",
            "data.n_queries=4", *extra,
        ])

    return config, pool, tmp_path / "r"


def _status(result) -> dict[str, str]:
    return {s["name"]: s["status"] for s in result.stages}


def test_unchanged_inputs_resume_and_a_changed_key_reruns_with_a_reason(setup):
    config, _, run_dir = setup
    first = run_pipeline(config(), until="contexts")
    assert _status(first) == {"data": "ran", "embed": "skipped", "contexts": "ran"}
    recorded = json.loads((run_dir / "fingerprints.json").read_text())
    assert set(recorded) == {"data", "contexts"} and recorded["contexts"]["config"]["k"] == 10

    again = run_pipeline(config(), until="contexts")
    assert _status(again) == {"data": "skipped", "embed": "skipped", "contexts": "skipped"}

    lines: list[str] = []
    changed = run_pipeline(config("retrieval.k=5"), until="contexts", say=lines.append)
    assert _status(changed) == {"data": "skipped", "embed": "skipped", "contexts": "ran"}
    assert any("contexts: inputs changed" in line and "k: 10 -> 5" in line for line in lines), lines
    first_line = (run_dir / "contexts" / "mol2cap_test.jsonl").read_text().splitlines()[0]
    assert len(json.loads(first_line)["neighbors"]) == 5  # really rebuilt with the new k


def test_refuse_names_the_change_and_keeps_the_outputs(setup):
    config, _, run_dir = setup
    run_pipeline(config(), until="contexts")
    before = (run_dir / "contexts" / "cap2mol_test.jsonl").read_text()
    with pytest.raises(StageChangedError, match=r"stage contexts .*retrievers\.cap2mol: 'bm25' -> 'random'.*run\.on_change=refuse"):
        run_pipeline(config("retrieval.cap2mol=random", "run.on_change=refuse"), until="contexts")
    assert (run_dir / "contexts" / "cap2mol_test.jsonl").read_text() == before


def test_an_edited_source_file_reruns_data_and_what_follows(setup):
    config, pool, run_dir = setup
    run_pipeline(config(), until="contexts")
    rows = pool.read_text().splitlines(keepends=True)
    pool.write_text("".join(rows[:-50]))  # drop 50 pool rows
    lines: list[str] = []
    result = run_pipeline(config(), until="contexts", say=lines.append)
    assert _status(result) == {"data": "ran", "embed": "skipped", "contexts": "ran"}
    assert any(f"input file {pool} changed" in line for line in lines), lines
    assert sum(1 for _ in (run_dir / "data" / "pool.jsonl").open()) == len(rows) - 1 - 50


def test_outputs_without_a_fingerprint_are_not_trusted(setup):
    config, _, run_dir = setup
    run_pipeline(config(), until="contexts")
    (run_dir / "fingerprints.json").unlink()
    result = run_pipeline(config(), until="contexts")
    assert _status(result)["data"] == "ran" and _status(result)["contexts"] == "ran"


def test_train_section_is_the_train_config_schema(setup):
    """PipelineConfig.train embeds TrainConfig: same defaults, and the train stage runs exactly a TrainConfig."""
    config, _, _ = setup
    cfg = load_pipeline_config(None, [])
    defaults = TrainConfig.model_validate({"data": {"train": "x"}})
    assert cfg.train.lora == defaults.lora and cfg.train.optim == defaults.optim and cfg.train.strategy == defaults.strategy
    built = config("train.lora.r=4", "train.data.window=icma", "train.data.reverse=false").train_config(
        "cap2mol", train_file="pool.jsonl", contexts="c.jsonl", run_name="n", storage_path="s", output_dir="o")
    assert isinstance(built, TrainConfig)
    assert (built.lora.r, built.data.window, built.data.reverse, built.data.task, built.optim.max_steps) == (4, "icma", False, "cap2mol", 12)
