"""Generation throughput: prompt and new tokens/s at batch size 1 vs batched (length-bucketed
left padding, finished rows leave the batch), same prompts, same run, --reps times, plus peak
memory. Prompts are real 2-shot ICMA prompts over ChEBI-20 rows. Ratios use total (prompt +
new) tokens/s. For today's path against the fast path (fp32/unmerged vs bf16/merged) see
bench_cpu_fastpath.py.

    python benchmarks/bench_generation_throughput.py                       # SmolLM2-135M, 16 prompts
    python benchmarks/bench_generation_throughput.py --model tiny-random-llama --prompts 8 --batch 8

Greedy decoding without stop strings: both settings generate the same tokens (same work).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import Timer, peak_rss_mb

ROOT = Path(__file__).resolve().parent.parent


def _prompts(n: int, task: str) -> list[str]:
    from ray_icma.data import load_records
    from ray_icma.jobs.contexts import build_contexts
    from ray_icma.prompts import build_icl_rows

    queries = load_records(ROOT / "tests" / "assets" / "chebi20_test_200.txt").records[:n]
    pool = load_records(ROOT / "tests" / "assets" / "chebi20_validation_300.txt").records
    contexts = build_contexts(queries, pool, task, k=4)
    return [row["prompt"] for row in build_icl_rows(queries, pool, contexts, task, 2)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--task", default="mol2cap", choices=["mol2cap", "cap2mol"])
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    parser.add_argument("--precision", default="auto", help="auto | bf16 | fp32")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()

    import torch

    from ray_icma.generate import Generator

    if args.threads:
        torch.set_num_threads(args.threads)
    prompts = _prompts(args.prompts, args.task)
    with Timer() as load:
        gen = Generator(args.model, device="cpu", precision=args.precision)
    rss_after_load = peak_rss_mb()
    gen.generate(prompts[:1], max_new_tokens=2)  # warm-up (allocations, kernels)
    import statistics

    reps = []
    for _rep in range(args.reps):
        row = {}
        for label, batch in (("batch 1", 1), (f"batch {args.batch}", args.batch)):
            with Timer() as t:
                outs = gen.generate_detailed(prompts, max_new_tokens=args.max_new_tokens, batch_size=batch)
            new = sum(o.n_new_tokens for o in outs)
            prompt = sum(o.n_prompt_tokens for o in outs)
            row[label] = {"batch_size": batch, "seconds": round(t.seconds, 3), "prompt_tokens": prompt, "new_tokens": new,
                          "prompt_tokens_per_s": round(prompt / t.seconds, 2), "new_tokens_per_s": round(new / t.seconds, 2),
                          "total_tokens_per_s": round((prompt + new) / t.seconds, 2), "peak_rss_mb": round(peak_rss_mb(), 1)}
        reps.append(row)
    mean_prompt = sum(len(gen.tokenizer(p)["input_ids"]) for p in prompts) / len(prompts)
    print(f"model {args.model}, {len(prompts)} {args.task} 2-shot prompts (mean {mean_prompt:.0f} tokens), "
          f"{args.max_new_tokens} new tokens each, {gen.kernels}, load {load.seconds:.1f} s, RSS after load {rss_after_load:.0f} MiB")
    print(f"{'rep':>3} {'setting':<10} {'seconds':>9} {'prompt tok/s':>13} {'new tok/s':>10} {'total tok/s':>12} {'peak RSS MiB':>13}")
    for i, row in enumerate(reps):
        for label, r in row.items():
            print(f"{i:>3} {label:<10} {r['seconds']:>9.2f} {r['prompt_tokens_per_s']:>13.1f} {r['new_tokens_per_s']:>10.2f} "
                  f"{r['total_tokens_per_s']:>12.1f} {r['peak_rss_mb']:>13.0f}")
    ratios = [row[f"batch {args.batch}"]["total_tokens_per_s"] / row["batch 1"]["total_tokens_per_s"] for row in reps]
    ratio = statistics.median(ratios)
    results = reps
    print(f"batched / batch-1 total tokens/s: median {ratio:.2f}x (min {min(ratios):.2f}, max {max(ratios):.2f})")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results, "ratio": ratio, "mean_prompt_tokens": mean_prompt}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
