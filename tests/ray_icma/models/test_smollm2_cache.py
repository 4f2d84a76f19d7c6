"""The de-quantised SmolLM2 cache dir: built once, never trusted half-written, safe for concurrent workers."""
from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_half_written_cache_dir_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_ICMA_HOME", str(tmp_path))
    from ray_icma.models.smollm2 import smollm2_model_dir

    broken = tmp_path / "smollm2-135m-fp32"
    broken.mkdir()
    (broken / "tokenizer.json").write_text("{}")  # what a killed or racing writer can leave behind
    out = smollm2_model_dir()
    assert out == str(broken)
    assert (broken / "config.json").is_file() and (broken / "model.safetensors").is_file()

    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(out).model_type == "llama"


def test_concurrent_builders_leave_one_complete_dir(tmp_path):
    code = "from ray_icma.models.smollm2 import smollm2_model_dir; print(smollm2_model_dir())"
    env = {"RAY_ICMA_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(3)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-2000:] for _, err in outs]
    assert {out.strip().splitlines()[-1] for out, _ in outs} == {str(tmp_path / "smollm2-135m-fp32")}
    made = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("smollm2-135m-fp32"))
    assert made == ["smollm2-135m-fp32", "smollm2-135m-fp32.lock"]  # no temp dirs left behind
