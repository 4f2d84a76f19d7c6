"""benchmarks/paper_experiments.py's own rules that decide what a row means: the generation budget
("auto" must not truncate the answers it is compared on) and one results folder per preset (a
setting name under another preset must not overwrite this one's result)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pe():
    spec = importlib.util.spec_from_file_location("paper_experiments_under_test", ROOT / "benchmarks" / "paper_experiments.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses / typing resolve the module by name
    spec.loader.exec_module(mod)
    yield mod
    sys.modules.pop(spec.name, None)


def _words(text: str) -> dict:
    return {"input_ids": text.split()}


def test_auto_answer_budget_covers_the_pools_95th_percentile(pe):
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 300, size=400)
    answers = [" ".join(["w"] * int(n)) for n in lengths]
    budget = pe.answer_budget("auto", _words, answers)
    assert budget % 8 == 0
    assert budget >= np.percentile(lengths, 95) + 2  # the 95th-percentile answer and its stop fit
    assert budget < np.percentile(lengths, 95) + 2 + 8  # and no more than one rounding step beyond
    assert (lengths <= budget).mean() >= 0.95
    assert pe.answer_budget(40, _words, answers) == 40  # a number is taken as given
    with pytest.raises(ValueError, match="pool"):
        pe.answer_budget("auto", _words, ["", ""])


def test_every_preset_has_its_own_results_and_work_folders(pe):
    got = {size: pe.folders(size) for size in pe.PRESETS}
    assert got["cpu"] == (pe.DEFAULT_OUT, pe.DEFAULT_WORK)  # the committed CPU tables stay where they are
    outs = [out for out, _ in got.values()]
    works = [work for _, work in got.values()]
    assert len(set(outs)) == len(outs) and len(set(works)) == len(works)
    assert got["quick"][0].is_relative_to(got["quick"][1])  # smoke results stay out of the repo's results
    assert pe.folders("gpu", out="/tmp/x", work="/tmp/y") == (Path("/tmp/x"), Path("/tmp/y"))


def test_long_cpu_preset_generates_whole_answers_at_icmas_cutoff(pe):
    p = pe.PRESETS["cpu-long"]
    assert p["generate"]["max_new_tokens"] == "auto" and p["cutoff_len"] == 1024
    assert p["n_queries"] >= 500  # the floor per task and setting
    (s,) = [s for s in pe.build_settings(p, ["main"], ["cap2mol"]) if s["arm"] == "icmt"]
    (c,) = [s for s in pe.build_settings(pe.PRESETS["cpu"], ["main"], ["cap2mol"]) if s["arm"] == "icmt"]
    assert s["name"] == c["name"] and pe.setting_hash(s) != pe.setting_hash(c)
