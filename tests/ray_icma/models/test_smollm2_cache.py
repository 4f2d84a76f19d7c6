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


def test_a_rank_above_zero_of_a_process_group_builds_a_complete_dir(tmp_path):
    """Ray Train workers convert inside a torch.distributed group; transformers saves only on rank 0 by default."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = (
        "import os, torch.distributed as dist\n"
        "dist.init_process_group('gloo', rank=int(os.environ['RANK']), world_size=2)\n"
        "from ray_icma.models.smollm2 import smollm2_model_dir\n"
        "print(smollm2_model_dir())\n"
        "dist.barrier(); dist.destroy_process_group()\n"
    )
    procs = []
    for rank in (0, 1):
        home = tmp_path / f"rank{rank}"
        env = {"RAY_ICMA_HOME": str(home), "PATH": "/usr/bin:/bin", "RANK": str(rank), "WORLD_SIZE": "2",
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
        procs.append(subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outs]
    for rank in (0, 1):
        built = tmp_path / f"rank{rank}" / "smollm2-135m-fp32"
        assert (built / "config.json").is_file() and (built / "model.safetensors").is_file(), rank
