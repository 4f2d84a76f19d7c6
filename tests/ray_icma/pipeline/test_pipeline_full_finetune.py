"""ICMA's --disable_lora through the pipeline: `train.lora.disable_lora=true` trains every weight,
exports a whole model (no adapter), and the generate stage loads that model, with ICMA's decoding
and an explicit precision from the `generate` section."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import require_module

require_module("torch")
require_module("rdkit")

from ray_icma.pipeline import load_pipeline_config, run_pipeline  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
TINY = ROOT / "configs" / "pipeline" / "tiny.yaml"


@pytest.mark.slow
@pytest.mark.ray_cluster
def test_full_fine_tuning_exports_a_model_that_generation_loads(ray_cluster, tmp_path, chebi20_test_file, chebi20_pool_file, scibert_dir):
    import torch

    from ray_icma.models import load_causal_lm

    overrides = {
        "run.root": tmp_path, "run.name": "full", "tasks": "[cap2mol]", "data.queries": chebi20_test_file,
        "data.pool": chebi20_pool_file, "data.n_queries": 2, "evaluate.tokenizer": scibert_dir,
        "train.lora.disable_lora": "true", "train.optim.max_steps": 2, "train.optim.lr": "1.0e-3", "train.data.max_rows": 8,
        "train.scaling.cpus_per_worker": 1, "generate.num_cpus_per_actor": 1, "generate.max_new_tokens": 6,
        "generate.decoding": "icma", "generate.precision": "fp32",
    }
    cfg = load_pipeline_config(TINY, [f"{k}={v}" for k, v in overrides.items()])
    run_pipeline(cfg, until="generate")
    run_dir = tmp_path / "full"

    trained = json.loads((run_dir / "train" / "cap2mol" / "result.json").read_text())
    assert trained["adapter_dir"] is None and trained["steps"] == 2
    model_dir = Path(trained["model_dir"])
    assert (model_dir / "config.json").is_file() and not (model_dir / "adapter_config.json").exists()
    tuned, _ = load_causal_lm(str(model_dir))
    base, _ = load_causal_lm("tiny-random-llama")
    changed = [name for name, p in tuned.named_parameters() if not torch.equal(p, dict(base.named_parameters())[name])]
    assert len(changed) == len(list(base.parameters()))  # full fine-tuning moved every weight, not an adapter's few

    meta = json.loads((run_dir / "predictions" / "cap2mol.jsonl.meta.json").read_text())
    assert meta["model"] == str(model_dir) and meta["adapter"] is None  # generation loaded the tuned model itself
    assert meta["rows"] == 2 and meta["errors"] == 0
    assert meta["decoding"] == "icma" and meta["seed"] == 42 and meta["resolved_precision"] == ["fp32"]
