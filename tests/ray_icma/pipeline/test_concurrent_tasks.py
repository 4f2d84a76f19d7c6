"""``run.concurrent_tasks``: the train stage runs the tasks at the same time (not one after the other),
and one task's failure neither stops the other nor loses what it wrote. The per-task training itself
is replaced here (no Ray, no model: fast tier); the real thing runs in
``test_pipeline_e2e.py::test_pipeline_with_icmt_training_both_tasks`` through the quickstart config,
which sets ``run.concurrent_tasks``."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.conftest import require_module

require_module("torch")

from ray_icma.pipeline import load_pipeline_config, run_pipeline  # noqa: E402
from ray_icma.pipeline import runner as runner_module  # noqa: E402

QUICKSTART = Path(__file__).resolve().parents[3] / "configs" / "pipeline" / "quickstart.yaml"


@pytest.fixture
def pipeline(tmp_path, chebi20_test_file, chebi20_pool_file, monkeypatch):
    import ray_icma.ray_connect

    monkeypatch.setattr(ray_icma.ray_connect, "connect_ray", lambda **_: None)  # the fake training needs no Ray

    def run(concurrent: bool, train_task):
        monkeypatch.setattr(runner_module._Recipe, "_train_task", train_task)
        cfg = load_pipeline_config(QUICKSTART, [
            f"run.root={tmp_path}", f"run.name=c{int(concurrent)}", f"data.queries={chebi20_test_file}",
            f"data.pool={chebi20_pool_file}", "data.n_queries=4", f"run.concurrent_tasks={str(concurrent).lower()}",
        ])
        return run_pipeline(cfg, until="train", say=lambda _: None)

    return run


def _meet_the_other_task():
    barrier = threading.Barrier(2, timeout=5)

    def train_task(self, task: str) -> str:
        barrier.wait()  # returns only when the other task is running at the same time
        return f"{task}: met"

    return train_task


def test_concurrent_tasks_train_at_the_same_time(pipeline):
    result = pipeline(True, _meet_the_other_task())
    train = next(s for s in result.stages if s["name"] == "train")
    assert train["status"] == "ran" and train["detail"] == "mol2cap: met; cap2mol: met"  # task order kept


def test_without_it_the_tasks_train_one_after_the_other(pipeline):
    with pytest.raises(threading.BrokenBarrierError):
        pipeline(False, _meet_the_other_task())


def test_a_failing_task_neither_stops_the_other_nor_loses_its_output(pipeline, tmp_path):
    def train_task(self, task: str) -> str:
        if task == "mol2cap":
            raise ValueError("mol2cap broke")
        time.sleep(0.5)  # still training when mol2cap has already failed
        out = self.dir / "train" / task / "result.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("{}")
        return f"{task}: done"

    with pytest.raises(ValueError, match="mol2cap broke"):
        pipeline(True, train_task)
    assert (tmp_path / "c1" / "train" / "cap2mol" / "result.json").is_file()
    stages = (tmp_path / "c1" / "stages.json").read_text()
    assert '"failed"' in stages and "mol2cap broke" in stages
