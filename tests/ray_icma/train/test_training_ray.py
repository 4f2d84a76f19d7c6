"""LoRA in-context tuning on the real Ray cluster: DeepSpeed ZeRO-2/3 and DDP on a tiny Llama.

All runs train the same seeded rows from the same seeded weights, so their per-step losses
must agree (fp32 on CPU), whatever the strategy and however often a run was interrupted.
"""
from pathlib import Path

import pytest
import torch

from ray_icma.models import load_causal_lm, load_with_adapter
from ray_icma.prompts import build_prompt
from ray_icma.train import read_loss_history, run_training
from ray_icma.train.lora_sft_loop import FAULT_ENV

pytestmark = pytest.mark.ray_cluster


def _expected_allocator() -> str:
    from ray_icma.allocator import find_allocator

    lib = find_allocator() or ""
    return next((name for name in ("tcmalloc", "jemalloc") if name in lib), "system")


def _losses(history):
    return [h["loss"] for h in history]


def _expected_first_step_loss(cfg) -> float:
    """Step 1's loss computed here, without Ray: the seeded tiny model (LoRA B = 0 adds nothing yet)
    on each rank's micro-batches of the first global batches, averaged like the loop does."""
    from ray_icma.train import build_train_rows, global_batches
    from ray_icma.train.collate import rank_micro_batch
    from ray_icma.train.trainer import tokenize_train_rows

    rows, tok = tokenize_train_rows(cfg, build_train_rows(cfg))
    world, micro, acc = cfg.scaling.num_workers, cfg.optim.micro_batch_size, cfg.optim.gradient_accumulation_steps
    batches = global_batches([len(r["input_ids"]) for r in rows], micro * world, seed=cfg.seed, epoch=0)
    model, _ = load_causal_lm(cfg.model.name)
    per_rank = []
    with torch.no_grad():
        for rank in range(world):
            losses = [float(model(**rank_micro_batch(rows, batches[i], rank, world, tok.pad_token_id)).loss) for i in range(acc)]
            per_rank.append(sum(losses) / acc)
    return sum(per_rank) / world


def test_zero2_trains_logs_and_checkpoints(zero2_run, tiny_config, train_dir):
    history = zero2_run.loss_history
    assert [h["step"] for h in history] == [1, 2, 3, 4]
    assert history[0]["loss"] == pytest.approx(_expected_first_step_loss(tiny_config("zero2")), rel=1e-5)
    assert history[-1]["loss"] < history[0]["loss"]  # the same tiny set, lr 1e-3: it learns
    assert zero2_run.metrics["step"] == 4 and zero2_run.metrics["tokens_per_s_per_worker"] > 0
    # the CPU workers run on the allocator ray_icma.allocator picks here (tcmalloc where installed: setup.sh does)
    assert zero2_run.metrics["allocator"] == _expected_allocator()
    run_dir = train_dir / "runs" / "zero2"
    assert (run_dir / "checkpoint_000002").is_dir() and (run_dir / "checkpoint_000004").is_dir()
    assert read_loss_history(run_dir / "checkpoint_000002") == history[:2]
    out = train_dir / "out" / "zero2"
    lines = (out / "loss.csv").read_text().splitlines()
    assert lines[0] == "step,epoch,loss,lr" and len(lines) == 5


def test_exported_adapter_and_merged_model_generate_the_same(zero2_run, tiny_config):
    merged, tok = load_causal_lm(zero2_run.merged_dir)
    adapted, _ = load_with_adapter(zero2_run.adapter_dir, merge=False)
    base, _ = load_causal_lm("tiny-random-llama")
    batch = tok([build_prompt("mol2cap", "CCO")], return_tensors="pt")
    with torch.no_grad():
        merged_logits = merged(**batch).logits
        assert torch.allclose(merged_logits, adapted(**batch).logits, atol=1e-4)
        assert not torch.allclose(merged_logits, base(**batch).logits, atol=1e-4)  # training changed it
        kwargs = dict(max_new_tokens=5, min_new_tokens=5, do_sample=False)
        out = merged.generate(**batch, **kwargs)
        assert out.shape[1] == batch["input_ids"].shape[1] + 5
        assert torch.equal(out, adapted.generate(**batch, **kwargs))
    card = (Path(zero2_run.merged_dir) / "README.md").read_text()
    assert "base_model: tiny-random-llama" in card and "r 8, alpha 16" in card


def test_zero3_resumes_after_an_injected_worker_error_and_reproduces(zero2_run, tiny_config, monkeypatch):
    """The first attempt's workers raise after checkpointing step 2 (FAULT_ENV); Ray Train restarts
    them (max_failures=1) and they resume from that checkpoint. A real node kill: tests/integration."""
    monkeypatch.setenv(FAULT_ENV, "2")
    result = run_training(tiny_config("zero3-fail", "zero_stage=3", "run.max_failures=1"))
    assert [h["step"] for h in result.loss_history] == [1, 2, 3, 4]
    assert _losses(result.loss_history) == pytest.approx(_losses(zero2_run.loss_history), rel=1e-4)


def test_ddp_matches_deepspeed_in_losses_and_adapter(zero2_run, tiny_config):
    result = run_training(tiny_config("ddp", "strategy=ddp"))
    assert _losses(result.loss_history) == pytest.approx(_losses(zero2_run.loss_history), rel=1e-4)
    ddp_model, tok = load_with_adapter(result.adapter_dir, merge=True)
    ds_model, _ = load_with_adapter(zero2_run.adapter_dir, merge=True)
    batch = tok([build_prompt("mol2cap", "CCO")], return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(ddp_model(**batch).logits, ds_model(**batch).logits, atol=1e-4)


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
def test_bf16_zero3_on_cuda_matches_fp32_cpu_losses(ray_cluster, tiny_config):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    one = ("zero_stage=3", "scaling.num_workers=1")
    cpu = run_training(tiny_config("gpu-ref-fp32-cpu", *one))
    gpu = run_training(tiny_config("gpu-bf16", *one, "scaling.use_gpu=true", "precision=bf16"))
    assert (cpu.metrics["precision"], gpu.metrics["precision"]) == ("fp32", "bf16")
    assert _losses(gpu.loss_history) == pytest.approx(_losses(cpu.loss_history), rel=2e-2)
    assert _losses(gpu.loss_history) != _losses(cpu.loss_history)  # bf16 really ran
