"""LoRA in-context tuning on the real Ray cluster: DeepSpeed ZeRO-2/3 and DDP on a tiny Llama.

All runs train the same seeded rows from the same seeded weights, so their per-step losses
must agree (fp32 on CPU), whatever the strategy and however often a run was interrupted.
"""
import math

import pytest
import torch

from ray_icma.models import load_causal_lm, load_with_adapter
from ray_icma.prompts import build_prompt
from ray_icma.train import read_loss_history, run_training

pytestmark = pytest.mark.ray_cluster


def _losses(history):
    return [h["loss"] for h in history]


def test_zero2_trains_logs_and_checkpoints(zero2_run, train_dir):
    history = zero2_run.loss_history
    assert [h["step"] for h in history] == [1, 2, 3, 4]
    assert all(math.isfinite(h["loss"]) for h in history)
    assert history[-1]["loss"] < history[0]["loss"]  # the same tiny set, lr 1e-3: it learns
    assert zero2_run.metrics["step"] == 4 and zero2_run.metrics["tokens_per_s_per_worker"] > 0
    run_dir = train_dir / "runs" / "zero2"
    assert (run_dir / "checkpoint_000002").is_dir() and (run_dir / "checkpoint_000004").is_dir()
    assert read_loss_history(run_dir / "checkpoint_000002") == history[:2]
    out = train_dir / "out" / "zero2"
    lines = (out / "loss.csv").read_text().splitlines()
    assert lines[0] == "step,epoch,loss,lr" and len(lines) == 5


def test_exported_adapter_and_merged_model_generate(zero2_run, tiny_config):
    merged, tok = load_causal_lm(zero2_run.merged_dir)
    adapted, _ = load_with_adapter(zero2_run.adapter_dir, merge=False)
    base, _ = load_causal_lm("tiny-random-llama")
    batch = tok([build_prompt("mol2cap", "CCO")], return_tensors="pt")
    with torch.no_grad():
        merged_logits = merged(**batch).logits
        assert torch.allclose(merged_logits, adapted(**batch).logits, atol=1e-4)
        assert not torch.allclose(merged_logits, base(**batch).logits, atol=1e-4)  # training changed it
        out = merged.generate(**batch, max_new_tokens=5, do_sample=False)
    assert out.shape[1] == batch["input_ids"].shape[1] + 5 or out[0, -1] == tok.eos_token_id


def test_zero3_recovers_from_a_killed_worker_and_reproduces(zero2_run, tiny_config, train_dir):
    cfg = tiny_config("zero3-fail", "zero_stage=3", "run.max_failures=1")
    result = run_training(cfg, fail_once_at_step=2)
    assert [h["step"] for h in result.loss_history] == [1, 2, 3, 4]
    assert _losses(result.loss_history) == pytest.approx(_losses(zero2_run.loss_history), rel=1e-4)


def test_ddp_matches_deepspeed(zero2_run, tiny_config):
    result = run_training(tiny_config("ddp", "strategy=ddp"))
    assert _losses(result.loss_history) == pytest.approx(_losses(zero2_run.loss_history), rel=1e-4)
    adapted, _ = load_with_adapter(result.adapter_dir, merge=True)
    assert sum(p.numel() for p in adapted.parameters()) > 0


@pytest.mark.slow
def test_resume_from_a_checkpoint_then_continue_the_same_run(zero2_run, tiny_config, train_dir):
    """A new run started from the reference run's step-2 checkpoint ends where the reference did;
    re-running it under the same name continues its step count from its latest checkpoint."""
    start = train_dir / "runs" / "zero2" / "checkpoint_000002"
    result = run_training(tiny_config("zero2-resumed", f"run.resume_from={start}"))
    assert [h["step"] for h in result.loss_history] == [1, 2, 3, 4]
    assert _losses(result.loss_history) == pytest.approx(_losses(zero2_run.loss_history), rel=1e-4)
    longer = run_training(tiny_config("zero2-resumed", f"run.resume_from={start}", "optim.max_steps=6"))
    assert [h["step"] for h in longer.loss_history] == [1, 2, 3, 4, 5, 6]
    assert longer.loss_history[:4] == result.loss_history
    assert longer.checkpoint_path.endswith("checkpoint_000006")


def test_missing_resume_checkpoint_is_reported(tiny_config, train_dir):
    from ray_icma.train import build_trainer

    with pytest.raises(FileNotFoundError, match="run.resume_from"):
        build_trainer(tiny_config("nope", f"run.resume_from={train_dir / 'missing'}"), rows=[{"x": 1}])


@pytest.mark.gpu
def test_bf16_zero3_on_cuda(ray_cluster, tiny_config):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    result = run_training(tiny_config("gpu-bf16", "zero_stage=3", "scaling.use_gpu=true", "model.dtype=bfloat16", "scaling.num_workers=1"))
    assert all(math.isfinite(h["loss"]) for h in result.loss_history)
