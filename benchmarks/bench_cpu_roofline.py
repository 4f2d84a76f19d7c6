"""How close LoRA training already runs to this CPU's matmul ceiling (issue 13's training goal).

Measures, in one run and at the torch thread count a training worker gets:

- the ceiling: GEMM throughput (GFLOP/s) of the shapes one SmolLM2-135M training step multiplies
  (tokens x 576 @ 576 x {576, 192, 1536}, tokens x 1536 @ 1536 x 576, and the tied 49,152-row LM head),
  fp32 and under bf16 autocast, each shape repeated, best and median of ``--reps``;
- the achieved rate: the FLOPs one LoRA training step needs per token (forward 2N + input-gradient
  backward 2N over the frozen matmul weights N, plus attention scores), times the training tokens/s
  figures given with ``--train-tok-s`` (from ``bench_cpu_fastpath.py``'s TRAIN line of the same day).

- where a fast-path step's time goes (``--profile-steps``): torch.profiler's self CPU time of real
  training steps (SmolLM2-135M + LoRA r 8, bf16 autocast, frozen weights stored bf16, CpuFastDropout,
  answer-only logits: the quickstart's step) grouped into matmuls, dtype casts, elementwise ops,
  attention, dropout masks and the optimizer.

The ratio ceiling/achieved bounds any further speed-up from matmul kernels; the profile says what the
rest of the step is made of.

    python benchmarks/bench_cpu_roofline.py --threads 2 --train-tok-s fp32=99.8 bf16=180.1 --profile-steps 3

Raw output: benchmarks/results/cpu_roofline_<UTC time>.json (+ .txt).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
RESULTS = ROOT / "benchmarks" / "results"
from _timing import write_results  # noqa: E402

# SmolLM2-135M (HuggingFaceTB/SmolLM2-135M config.json)
HIDDEN, INTER, LAYERS, KV_DIM, VOCAB = 576, 1536, 30, 192, 49152


ANSWER_FRACTION = 1 / 6  # answer tokens / row tokens in 2-shot ChEBI-20 rows: the only positions given logits


def matmul_params(answer_fraction: float = ANSWER_FRACTION) -> float:
    """Weights a token multiplies through: q,o (576x576), k,v (576x192), gate,up,down (576x1536), and the
    LM head for the answer positions only (``causal_lm_loss`` computes no other logits)."""
    per_layer = 2 * HIDDEN * HIDDEN + 2 * HIDDEN * KV_DIM + 3 * HIDDEN * INTER
    return LAYERS * per_layer + answer_fraction * HIDDEN * VOCAB


def train_flops_per_token(seq: int) -> float:
    """Forward 2N + backward input gradients 2N (frozen base: no weight gradients; LoRA's are ~0.5% more),
    plus attention scores and values (2 * 2 * seq/2 * hidden per layer, causal, forward) x 2 for backward."""
    n = matmul_params()
    attention = LAYERS * 2 * 2 * (seq / 2) * HIDDEN
    return 4 * n + 2 * attention


def shapes(tokens: int) -> list[tuple[str, int, int, int, int]]:
    """(name, m, k, n, count per step) of the step's matmuls."""
    return [
        ("q/o proj", tokens, HIDDEN, HIDDEN, 2 * LAYERS),
        ("k/v proj", tokens, HIDDEN, KV_DIM, 2 * LAYERS),
        ("gate/up", tokens, HIDDEN, INTER, 2 * LAYERS),
        ("down", tokens, INTER, HIDDEN, LAYERS),
        ("lm head", max(1, int(tokens * ANSWER_FRACTION)), HIDDEN, VOCAB, 1),
    ]


GROUPS = {  # aten op -> share of the step it is counted in
    "matmul": ("aten::mm", "aten::bmm", "aten::addmm"),
    "dtype casts": ("aten::copy_", "aten::_to_copy"),
    "attention": ("aten::_scaled_dot_product_flash_attention_for_cpu", "aten::_scaled_dot_product_flash_attention_for_cpu_backward"),
    "dropout masks": ("aten::random_", "aten::ge", "aten::bitwise_and_"),
}


def profile_steps(torch, steps: int, seq: int) -> dict:
    """Self CPU time of ``steps`` fast-path LoRA training steps, grouped (the rest is "other")."""
    from torch.profiler import ProfilerActivity, profile

    from ray_icma.models import apply_lora, load_causal_lm, lora_config
    from ray_icma.precision import autocast, store_frozen_weights
    from ray_icma.train.loss import causal_lm_loss

    torch.manual_seed(0)
    model, _ = load_causal_lm("smollm2-135m", torch_dtype="float32")
    model.config.use_cache = False
    model = apply_lora(model, lora_config(r=8, alpha=16, dropout=0.1, model=model)).train()
    store_frozen_weights(model, "bf16")
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-4)
    ids = torch.randint(100, 40000, (2, seq), generator=torch.Generator().manual_seed(0))
    labels = ids.clone()
    labels[:, : seq - max(1, int(seq * ANSWER_FRACTION))] = -100  # only the answer positions are scored
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}

    def step() -> None:
        with autocast("bf16", "cpu"):
            loss = causal_lm_loss(model, batch)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()  # warm-up
    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    wall = time.perf_counter() - t0
    self_us = {e.key: e.self_cpu_time_total for e in prof.key_averages()}
    total = sum(self_us.values())
    shares = {name: sum(self_us.get(op, 0.0) for op in ops) / total for name, ops in GROUPS.items()}
    shares["elementwise (mul, add, norms, silu, ...)"] = sum(
        v for k, v in self_us.items() if k.startswith("aten::") and not any(k in ops for ops in GROUPS.values())
        and not k.startswith(("aten::empty", "aten::view", "aten::as_strided", "aten::detach"))) / total
    shares["other (autograd, optimizer, python)"] = 1 - sum(shares.values())
    top = sorted(self_us.items(), key=lambda kv: -kv[1])[:12]
    return {"steps": steps, "tokens_per_step": 2 * seq, "wall_s_profiled": wall, "shares": shares,
            "top_ops_self_s": {k: v / 1e6 for k, v in top}}


def gemm_gflops(torch, m: int, k: int, n: int, precision: str, reps: int, inner: int) -> list[float]:
    """GFLOP/s of ``inner`` linear layers (m x k input, n x k weight) per repetition, under the training path's
    autocast for ``precision``; bf16 weights are stored bf16 as on the fast path (precision.store_frozen_weights)."""
    from ray_icma.precision import autocast, model_dtype

    a = torch.randn(m, k)
    w = torch.randn(n, k).to(model_dtype(precision))
    out = []
    for _ in range(reps + 1):  # the first is a warm-up
        t0 = time.perf_counter()
        for _ in range(inner):
            with autocast(precision, "cpu"):
                torch.nn.functional.linear(a, w)
        out.append(2 * m * k * n * inner / (time.perf_counter() - t0) / 1e9)
    return out[1:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=1024, help="tokens per step (rows x length)")
    parser.add_argument("--seq", type=int, default=340, help="mean training row length, for the attention term")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--profile-steps", type=int, default=0, help="profile this many fast-path training steps (0: skip)")
    parser.add_argument("--train-tok-s", nargs="*", default=[], metavar="PRECISION=TOK_S",
                        help="measured training tokens/s per worker, e.g. fp32=99.8 bf16=180.1")
    args = parser.parse_args()

    import torch

    from _timing import machine_load
    from ray_icma.precision import describe

    torch.set_num_threads(args.threads)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    lines = [f"# bench_cpu_roofline {stamp}, torch {torch.__version__}, {args.threads} threads, {machine_load()}",
             f"# {describe('bf16')}"]
    report: dict = {"started": stamp, "threads": args.threads, "tokens": args.tokens, "ceiling": {}, "achieved": {}}
    total_flops = sum(2 * m * k * n * c for _, m, k, n, c in shapes(args.tokens))
    for dtype in ("fp32", "bf16"):
        step_s_best = step_s_median = 0.0
        for name, m, k, n, count in shapes(args.tokens):
            inner = max(1, int(2e9 / (2 * m * k * n)))
            rates = gemm_gflops(torch, m, k, n, dtype, args.reps, inner)
            report["ceiling"].setdefault(dtype, {})[name] = rates
            step_s_best += 2 * m * k * n * count / (max(rates) * 1e9)
            step_s_median += 2 * m * k * n * count / (statistics.median(rates) * 1e9)
            lines.append(f"{dtype} {name:9s} {m}x{k}@{k}x{n}: GFLOP/s median {statistics.median(rates):.1f} "
                         f"[{min(rates):.1f}-{max(rates):.1f}] (n={len(rates)})")
        ceiling = total_flops / step_s_median / 1e9
        report["ceiling"][dtype]["step_gflops_median"] = ceiling
        report["ceiling"][dtype]["step_gflops_best"] = total_flops / step_s_best / 1e9
        lines.append(f"{dtype} ceiling over one step's matmul mix: {ceiling:.1f} GFLOP/s "
                     f"(best {total_flops / step_s_best / 1e9:.1f})")
    per_token = train_flops_per_token(args.seq)
    lines.append(f"training FLOPs per token (LoRA on frozen SmolLM2-135M, rows of {args.seq}): {per_token / 1e9:.3f} GFLOP")
    for item in args.train_tok_s:
        precision, value = item.split("=")
        tok_s = float(value)
        achieved = tok_s * per_token / 1e9
        ceiling = report["ceiling"][precision]["step_gflops_median"]
        report["achieved"][precision] = {"tok_s": tok_s, "gflops": achieved, "of_ceiling": achieved / ceiling,
                                         "ceiling_tok_s": ceiling * 1e9 / per_token}
        lines.append(f"{precision} training at {tok_s:g} tok/s = {achieved:.1f} GFLOP/s = {achieved / ceiling:.0%} of the "
                     f"{precision} matmul ceiling; the ceiling allows at most {ceiling * 1e9 / per_token:.0f} tok/s")
    if "fp32" in report["achieved"] and "bf16" in report["ceiling"]:
        fp32 = report["achieved"]["fp32"]["tok_s"]
        best = report["ceiling"]["bf16"]["step_gflops_best"] * 1e9 / per_token
        lines.append(f"3x the fp32 path = {3 * fp32:.0f} tok/s; matmuls alone at the best bf16 rate allow {best:.0f} tok/s "
                     f"({best / fp32:.2f}x the fp32 path) before any attention, norm, optimizer or data time")
    if args.profile_steps:
        prof = profile_steps(torch, args.profile_steps, args.seq)
        report["profile"] = prof
        lines.append(f"profile of {prof['steps']} fast-path steps ({prof['tokens_per_step']} tokens each, "
                     f"{prof['steps'] * prof['tokens_per_step'] / prof['wall_s_profiled']:.0f} tok/s under the profiler), "
                     "share of self CPU time:")
        lines += [f"  {name}: {share:.0%}" for name, share in prof["shares"].items()]
        lines.append("  top ops (self s): " + ", ".join(f"{k.removeprefix('aten::')} {v:.2f}" for k, v in prof["top_ops_self_s"].items()))
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"cpu_roofline_{stamp}.json"
    report["summary"] = text
    write_results(out, report, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
