"""Today's CPU path against the fast path, same rows and prompts, one run (issue 13).

The baseline is the code as it was before the fast path (``--baseline-ref``, default 8f009ea),
extracted with ``git archive`` and imported in child processes (``PYTHONPATH``); the fast path is
this checkout. Children alternate old/new ``--reps`` times, so both sides see the same machine load.

- train: the quickstart's training (SmolLM2-135M, LoRA r 8, 2-shot mol2cap rows of the 300-row
  pool with Morgan contexts, cutoff 512, micro-batch 2, DDP, 1 worker x ``--cpus`` CPUs, 12 steps;
  on a shared cluster whose nodes have CPUs in use, pass ``--cpus 1`` so the worker can be placed):
  tokens/s per worker as each path reports it (non-padding tokens / seconds in the worker loop),
  wall time of ``run_training``, peak worker RSS.
- gen: generation with the trained adapter on the same 16 two-shot prompts, 32 new tokens max,
  stop at a blank line (what batch jobs do): old = fp32, adapter unmerged, ``generate`` with
  batch 1 (today's batch-1 fp32 path); new = precision auto, adapter merged, batch 1 and 16.
  Prompt and new tokens are counted separately; ratios use total (prompt + new) tokens/s.
  Also measures how much a shared prompt prefix could save (the prefix-reuse question).
- eval: the same 200 ChEBI-20 test queries (tests/assets/chebi20_test_200.txt), mol2cap, greedy,
  48 new tokens: old path (fp32, unmerged, batch 8 as the quickstart generated) vs fast path
  (bf16 where native, merged, batch 16); MolT5's caption metrics for both and a paired bootstrap
  (1,000 resamples of the queries) of new - old. "Within noise" = the 95% interval of the
  difference contains 0 ("better" / "WORSE" when it lies above / below 0). Both sides generate
  without stop strings and are cut at the first blank line afterwards, the same way.

    RAY_ADDRESS=127.0.0.1:6380 python benchmarks/bench_cpu_fastpath.py            # all parts
    python benchmarks/bench_cpu_fastpath.py --parts gen --adapter runs/x/adapter     # one part

Raw output: benchmarks/results/cpu_fastpath_<UTC time>.json (+ the printed table in .txt).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "tests" / "assets"
POOL = ASSETS / "chebi20_validation_300.txt"
QUERIES = ASSETS / "chebi20_test_200.txt"
STOP = ("\n\n",)


sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import peak_rss_mb as _peak_rss_mb  # noqa: E402  (VmHWM: children must not report the driver's peak)
from _timing import write_results  # noqa: E402


# ----------------------------------------------------------------------------- children
def child_train(args: argparse.Namespace) -> dict:
    import ray

    from ray_icma.train import run_training

    env = {"PYTHONPATH": args.tree}
    address = os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, runtime_env={"env_vars": env}, log_to_driver=False)
    else:
        ray.init(num_cpus=int(args.cpus), runtime_env={"env_vars": env}, include_dashboard=False, log_to_driver=False)
    cfg = {
        "model": {"name": "smollm2-135m"},
        "lora": {"r": 8, "alpha": 16, "dropout": 0.1},
        "data": {"task": "mol2cap", "train": str(POOL), "contexts": args.contexts, "n_shot": 2, "cutoff_len": 512},
        "optim": {"lr": 5e-4, "max_steps": args.steps, "micro_batch_size": 2, "gradient_accumulation_steps": 1},
        "strategy": "ddp",
        "scaling": {"num_workers": 1, "use_gpu": False, "cpus_per_worker": args.cpus},
        "run": {"name": f"fastpath-{args.side}-{args.rep}", "storage_path": str(Path(args.work) / "runs"),
                "output_dir": str(Path(args.work) / f"out-{args.side}-{args.rep}")},
        "seed": 0,
    }
    start = time.perf_counter()
    result = run_training(cfg)
    wall = time.perf_counter() - start
    m = result.metrics
    return {"tokens_per_s_per_worker": m["tokens_per_s_per_worker"], "peak_rss_mb_worker": m["peak_rss_mb"], "wall_s": wall,
            "padding_fraction": m.get("padding_fraction"), "precision": m.get("precision", "fp32"),
            "losses": [h["loss"] for h in result.loss_history], "adapter_dir": result.adapter_dir}


def train_inproc(args: argparse.Namespace, ctx: str, say) -> dict:
    """The training step work of both paths in this process, no Ray, interleaved ``--reps`` times.

    Today's step: the collate tokenizes its rows every step (``tokenize_row``, as ``ICLCollate`` did),
    random pairs are padded to the longer one, fp32, ``nn.Dropout`` in the adapters. Fast step: rows
    tokenized once, length-bucketed batches, bf16 autocast where native, ``CpuFastDropout``, the loss
    from the answer positions' logits only (one model serves both sides, so its frozen weights stay
    fp32 here: ``store_frozen_weights`` is measured only in the Ray Train part). Same model (SmolLM2-135M + LoRA r 8), same rows, same
    number of steps. Ray Data's per-epoch start-up, which today's path also paid inside its loop,
    is not in here, so this understates the end-to-end gain. tokens/s = non-padding tokens / wall
    seconds of the steps; tokens/CPU-s uses this process's CPU time (fairer on shared cores).
    """
    import random

    import torch

    from ray_icma.models import apply_lora, load_causal_lm, load_tokenizer, lora_config
    from ray_icma.precision import autocast, describe, resolve_precision
    from ray_icma.train import build_train_rows, global_batches, load_train_config, tokenize_row, tokenize_rows
    from ray_icma.train.collate import pad_batch, rank_micro_batch
    from ray_icma.train.loss import causal_lm_loss

    torch.set_num_threads(args.threads)
    cfg = load_train_config(None, [f"data.train={POOL}", f"data.contexts={ctx}", "data.n_shot=2", "data.cutoff_len=512", "seed=0"])
    rows = build_train_rows(cfg)
    tok = load_tokenizer("smollm2-135m")
    precision = resolve_precision(args.precision, "cpu")
    model, _ = load_causal_lm("smollm2-135m", torch_dtype="float32")
    model.config.use_cache = False
    model = apply_lora(model, lora_config(r=8, alpha=16, dropout=0.1, model=model)).train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-4)
    say(f"train-inproc: {describe(precision, 'cpu')}")
    steps = args.inproc_steps

    def old_batches():
        order = list(range(len(rows)))
        random.Random(0).shuffle(order)
        for b in range(steps):
            pair = [rows[i] for i in order[2 * b: 2 * b + 2]]
            yield pad_batch([tokenize_row(tok, r["task"], r["input"], [tuple(e) for e in r["examples"]], r["reference"], 512) for r in pair],
                            tok.pad_token_id), "fp32", False

    def new_batches():
        tokenized = tokenize_rows(tok, rows, 512)  # once per run, inside the timed window
        batches = global_batches([len(r["input_ids"]) for r in tokenized], 2, seed=0, epoch=0)
        for b in range(steps):
            yield rank_micro_batch(tokenized, batches[b], 0, 1, tok.pad_token_id), precision, True

    from ray_icma.models.dropout import CpuFastDropout

    dropouts = [(m.lora_dropout, k) for m in model.modules() if isinstance(getattr(m, "lora_dropout", None), torch.nn.ModuleDict)
                for k in m.lora_dropout.keys()]

    def run(make, fast: bool) -> dict:  # today's step: nn.Dropout (bernoulli_ masks); fast: CpuFastDropout
        for table, key in dropouts:
            table[key] = (CpuFastDropout if fast else torch.nn.Dropout)(p=table[key].p)
        start, cpu_start, tokens, padded = time.perf_counter(), time.process_time(), 0, 0
        for batch, prec, answer_only in make():  # new: logits of the answer positions only
            with autocast(prec, "cpu"):
                loss = causal_lm_loss(model, batch) if answer_only else model(**batch).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            tokens += int(batch["attention_mask"].sum())
            padded += int(batch["attention_mask"].numel())
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        return {"tokens": tokens, "padded_tokens": padded, "seconds": wall, "cpu_seconds": cpu,
                "tokens_per_s": tokens / wall, "tokens_per_cpu_s": tokens / cpu}

    run(new_batches, True)  # warm-up (kernels, allocator) for both sides
    reps = []
    for rep in range(args.reps):
        row = {"old": run(old_batches, False), "new": run(new_batches, True)}
        reps.append(row)
        say(f"train-inproc rep {rep}: old {row['old']['tokens_per_s']:.0f} tok/s ({row['old']['tokens_per_cpu_s']:.0f}/CPU-s, "
            f"padding {1 - row['old']['tokens'] / row['old']['padded_tokens']:.1%}); new {row['new']['tokens_per_s']:.0f} tok/s "
            f"({row['new']['tokens_per_cpu_s']:.0f}/CPU-s, padding {1 - row['new']['tokens'] / row['new']['padded_tokens']:.1%}); load {_uptime()}")
    wall = _ratio_spread([(r["old"]["tokens_per_s"], r["new"]["tokens_per_s"]) for r in reps])
    cpu = _ratio_spread([(r["old"]["tokens_per_cpu_s"], r["new"]["tokens_per_cpu_s"]) for r in reps])
    say(f"TRAIN (in-process, {steps} steps per side per rep) tokens/s new/old median {wall['median']:.2f}x "
        f"(min {wall['min']:.2f}, max {wall['max']:.2f}); per CPU-second {cpu['median']:.2f}x (min {cpu['min']:.2f}, max {cpu['max']:.2f})")
    return {"reps": reps, "tokens_per_s_ratio": wall, "tokens_per_cpu_s_ratio": cpu, "precision": precision, "steps": steps}


def _gen_once(gen, prompts: list[str], batch: int, max_new: int, stop: bool = True) -> dict:
    start, cpu_start = time.perf_counter(), time.process_time()
    outs = gen.generate_detailed(prompts, max_new_tokens=max_new, batch_size=batch, stop=STOP if stop else None)
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start  # all threads: the fairer figure when the cores are shared
    prompt_tokens = sum(o.n_prompt_tokens for o in outs)
    new_tokens = sum(o.n_new_tokens for o in outs)
    return {"batch": batch, "seconds": seconds, "cpu_seconds": cpu_seconds,
            "total_tokens_per_cpu_s": (prompt_tokens + new_tokens) / cpu_seconds if cpu_seconds > 0 else None, "prompt_tokens": prompt_tokens, "new_tokens": new_tokens,
            "prompt_tokens_per_s": prompt_tokens / seconds, "new_tokens_per_s": new_tokens / seconds,
            "total_tokens_per_s": (prompt_tokens + new_tokens) / seconds, "texts": [o.text for o in outs]}


def _cut(text: str) -> str:
    """The fast path's stop rule applied after the fact: the generated text up to its first blank line."""
    end = text.find(STOP[0])
    return text if end < 0 else text[: end + len(STOP[0])]


def _generator(args: argparse.Namespace):
    import torch

    from ray_icma.generate import Generator

    torch.set_num_threads(args.threads)
    if args.side == "old":
        return Generator("smollm2-135m", adapter=args.adapter, device="cpu")  # fp32, adapter unmerged
    return Generator("smollm2-135m", adapter=args.adapter, device="cpu", precision=args.precision, merge=True)


def child_gen(args: argparse.Namespace) -> dict:
    prompts = json.loads(Path(args.prompts).read_text())
    gen = _generator(args)
    gen.generate(prompts[:1], max_new_tokens=2)  # warm-up: allocations, kernel selection
    runs = [_gen_once(gen, prompts, b, args.max_new, stop=not args.no_stop) for b in ([1] if args.side == "old" else [1, args.batch])]
    return {"runs": runs, "peak_rss_mb": _peak_rss_mb(), "kernels": getattr(gen, "kernels", "fp32 (today's path logs nothing)")}


def child_eval(args: argparse.Namespace) -> dict:
    prompts = json.loads(Path(args.prompts).read_text())
    gen = _generator(args)
    batch = 8 if args.side == "old" else args.batch
    # No stop strings while generating: today's path passed them to transformers' stop_strings, which
    # also matches across the prompt's last newline, so an answer starting with "\n" ended there (its
    # 2026-12-02 run: most of 200 answers were "\n"). Both sides get the same cut afterwards (_cut).
    out = _gen_once(gen, prompts, batch, args.max_new, stop=False)
    out["peak_rss_mb"] = _peak_rss_mb()
    return out


# ----------------------------------------------------------------------------- driver
def _spawn(args: argparse.Namespace, part: str, side: str, tree: str, extra: list[str], work: Path) -> dict:
    out = work / f"{part}-{side}-{time.time_ns()}.json"
    cmd = [sys.executable, __file__, "--child", part, "--side", side, "--tree", tree, "--work", str(work), "--out", str(out),
           "--cpus", str(args.cpus), "--threads", str(args.threads), "--precision", args.precision, "--batch", str(args.batch), *extra]
    env = dict(os.environ, PYTHONPATH=tree)
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=str(work), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{part}/{side} failed (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    result = json.loads(out.read_text())
    result["process_wall_s"] = time.perf_counter() - started
    return result


def _uptime() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return "unknown"


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} (min {min(values):.1f}, max {max(values):.1f})"


def _ratio_spread(pairs: list[tuple[float, float]]) -> dict:
    """Per-repetition ratios new/old (each rep's sides ran back to back) and their median/min/max."""
    ratios = [n / o for o, n in pairs]
    return {"per_rep": ratios, "median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}


def _contexts_and_prompts(work: Path, n_gen: int, n_eval: int, max_new_gen: int, max_new_eval: int) -> tuple[str, str, str]:
    from ray_icma.data import load_records
    from ray_icma.jobs.contexts import build_contexts
    from ray_icma.models import load_tokenizer
    from ray_icma.prompts import build_icl_rows, fit_prompt

    pool = load_records(POOL).records
    ctx = work / "pool_mol2cap_morgan.jsonl"
    build_contexts(pool, pool, "mol2cap", retriever="morgan", k=10, out_path=ctx, seed=0)
    queries = load_records(QUERIES).records[:n_eval]
    contexts = build_contexts(queries, pool, "mol2cap", retriever="morgan", k=10, seed=0)
    rows = build_icl_rows(queries, pool, contexts, "mol2cap", 2, seed=0)
    tok = load_tokenizer("smollm2-135m")

    def fit(row, reserve):
        return fit_prompt(tok, "mol2cap", row["input"], [tuple(e) for e in row["examples"]], cutoff_len=512, answer_reserve=reserve)[0]

    gen_prompts = work / "gen_prompts.json"
    gen_prompts.write_text(json.dumps([fit(r, max_new_gen) for r in rows[:n_gen]]))
    eval_prompts = work / "eval_prompts.json"
    eval_prompts.write_text(json.dumps([fit(r, max_new_eval) for r in rows]))
    (work / "eval_refs.json").write_text(json.dumps([r["reference"] for r in rows]))
    return str(ctx), str(gen_prompts), str(eval_prompts)


def _prefix_savings(prompts: list[str]) -> dict:
    """How many prompt tokens a shared-prefix KV cache could skip: each prompt's longest common
    token prefix with any other prompt (the upper bound of what prefix reuse saves)."""
    from ray_icma.models import load_tokenizer

    tok = load_tokenizer("smollm2-135m")
    ids = [tok(p)["input_ids"] for p in prompts]
    shared = []
    for i, a in enumerate(ids):
        best = 0
        for j, b in enumerate(ids):
            if i != j:
                n = 0
                while n < min(len(a), len(b)) and a[n] == b[n]:
                    n += 1
                best = max(best, n)
        shared.append(best)
    total = sum(len(x) for x in ids)
    return {"prompt_tokens": total, "shared_prefix_tokens": sum(shared), "fraction": sum(shared) / total,
            "mean_shared_prefix": sum(shared) / len(shared), "mean_prompt_tokens": total / len(ids)}


def _bootstrap(refs: list[str], old: list[str], new: list[str], n: int = 1000, seed: int = 0) -> dict:
    """Paired bootstrap over queries of new - old for BLEU-2/4 (corpus), METEOR and ROUGE-L (means), MolT5's way."""
    import random
    import warnings

    import numpy as np
    from nltk.translate.bleu_score import corpus_bleu
    from nltk.translate.meteor_score import meteor_score
    from rouge_score import rouge_scorer

    from ray_icma.evaluate.text_metrics import _meteor_resources
    from ray_icma.evaluate.tokenizer import load_tokenizer, word_pieces

    tok = load_tokenizer(str(ASSETS / "scibert_scivocab_uncased"))
    wordnet, stemmer = _meteor_resources()
    rp = word_pieces(tok, refs)
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    sides = {}
    for name, preds in (("old", old), ("new", new)):
        hp = word_pieces(tok, preds)
        sides[name] = {
            "hp": hp,
            "meteor": np.array([meteor_score([r], h, stemmer=stemmer, wordnet=wordnet) for r, h in zip(rp, hp)]),
            "rougeL": np.array([scorer.score(p, r)["rougeL"].fmeasure for r, p in zip(refs, preds)]),
        }
    rng = random.Random(seed)
    idx_all = list(range(len(refs)))
    diffs: dict[str, list[float]] = {"bleu2": [], "bleu4": [], "meteor": [], "rougeL": []}

    def bleu(hp, idx, w):
        return corpus_bleu([[rp[i]] for i in idx], [hp[i] for i in idx], weights=w)

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        point = {k: 0.0 for k in diffs}
        for k, w in (("bleu2", (0.5, 0.5)), ("bleu4", (0.25,) * 4)):
            point[k] = bleu(sides["new"]["hp"], idx_all, w) - bleu(sides["old"]["hp"], idx_all, w)
        for k in ("meteor", "rougeL"):
            point[k] = float(sides["new"][k].mean() - sides["old"][k].mean())
        for _ in range(n):
            idx = [rng.randrange(len(refs)) for _ in idx_all]
            for k, w in (("bleu2", (0.5, 0.5)), ("bleu4", (0.25,) * 4)):
                diffs[k].append(bleu(sides["new"]["hp"], idx, w) - bleu(sides["old"]["hp"], idx, w))
            for k in ("meteor", "rougeL"):
                diffs[k].append(float(sides["new"][k][idx].mean() - sides["old"][k][idx].mean()))
    out = {}
    for k, values in diffs.items():
        lo, hi = np.percentile(values, [2.5, 97.5])
        out[k] = {"diff": point[k], "ci95": [float(lo), float(hi)], "verdict": "better" if lo > 0 else ("WORSE" if hi < 0 else "within noise")}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="train,gen,eval")
    parser.add_argument("--baseline-ref", default="8f009ea", help="git commit of today's path (before the fast path)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--steps", type=int, default=12, help="training steps (the quickstart's 12)")
    parser.add_argument("--cpus", type=float, default=2, help="CPUs of the training worker (its torch threads)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the generation processes")
    parser.add_argument("--precision", default="auto", help="fast path precision (auto | bf16 | fp32)")
    parser.add_argument("--batch", type=int, default=16, help="fast path generation batch")
    parser.add_argument("--gen-prompts", type=int, default=16)
    parser.add_argument("--max-new", type=int, default=32, help="new tokens per prompt in the gen part")
    parser.add_argument("--no-stop", action="store_true",
                        help="gen part: no stop string, every prompt gets --max-new tokens on both sides (the same decode work)")
    parser.add_argument("--eval-queries", type=int, default=200)
    parser.add_argument("--eval-max-new", type=int, default=48)
    parser.add_argument("--inproc-steps", type=int, default=3, help="steps per side per rep in the train-inproc part")
    parser.add_argument("--adapter", default=None, help="adapter for gen/eval (default: the train part's fast-path adapter)")
    parser.add_argument("--out", default=None)
    # child mode
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--side", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--tree", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--work", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--rep", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--contexts", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--prompts", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        result = {"train": child_train, "gen": child_gen, "eval": child_eval}[args.child](args)
        Path(args.out).write_text(json.dumps(result))
        return 0

    parts = set(args.parts.split(","))
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    results_dir = ROOT / "benchmarks" / "results"
    out_json = Path(args.out) if args.out else results_dir / f"cpu_fastpath_{stamp}.json"
    work = Path(tempfile.mkdtemp(prefix="fastpath-"))
    from _baseline import extract_tree  # benchmarks/ is on sys.path (see _timing above); ROOT is not: children import their tree

    old_tree = extract_tree(args.baseline_ref, work / "old", "ray_icma")
    trees = {"old": str(old_tree), "new": str(ROOT)}
    ctx, gen_prompts, eval_prompts = _contexts_and_prompts(work, args.gen_prompts, args.eval_queries, args.max_new, args.eval_max_new)
    report: dict = {"date_utc": stamp, "baseline_ref": args.baseline_ref, "args": {k: v for k, v in vars(args).items() if v is not None},
                    "load_before": _uptime(), "cpu_flags": __import__("ray_icma.precision", fromlist=["x"]).cpu_bf16_flags()}
    lines: list[str] = []

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    adapter = args.adapter
    if "train-inproc" in parts:
        report["train_inproc"] = train_inproc(args, ctx, say)
    if "train" in parts:
        reps = []
        for rep in range(args.reps):
            row = {}
            for side in ("old", "new"):
                row[side] = _spawn(args, "train", side, trees[side], ["--contexts", ctx, "--rep", str(rep), "--steps", str(args.steps)], work)
                say(f"train rep {rep} {side}: {row[side]['tokens_per_s_per_worker']:.1f} tok/s/worker, wall {row[side]['wall_s']:.0f} s, "
                    f"RSS {row[side]['peak_rss_mb_worker']:.0f} MiB, load {_uptime()}")
            reps.append(row)
        adapter = adapter or reps[0]["new"]["adapter_dir"]
        tps = _ratio_spread([(r["old"]["tokens_per_s_per_worker"], r["new"]["tokens_per_s_per_worker"]) for r in reps])
        wall = _ratio_spread([(r["new"]["wall_s"], r["old"]["wall_s"]) for r in reps])  # old/new: speed-up
        report["train"] = {"reps": reps, "tokens_per_s_ratio": tps, "wall_speedup": wall}
        say(f"TRAIN tokens/s per worker: old {_spread([r['old']['tokens_per_s_per_worker'] for r in reps])}, "
            f"new {_spread([r['new']['tokens_per_s_per_worker'] for r in reps])}; ratio new/old median {tps['median']:.2f}x "
            f"(min {tps['min']:.2f}, max {tps['max']:.2f}); run_training wall speed-up {wall['median']:.2f}x")
    if adapter is None and parts & {"gen", "eval"}:
        raise SystemExit("gen/eval need an adapter: run the train part or pass --adapter")
    common = ["--adapter", str(adapter)]
    if "gen" in parts:
        reps = []
        for rep in range(args.reps):
            row = {side: _spawn(args, "gen", side, trees[side], common + ["--prompts", gen_prompts, "--max-new", str(args.max_new)] + (["--no-stop"] if args.no_stop else []), work)
                   for side in ("old", "new")}
            old1, new1, newb = row["old"]["runs"][0], row["new"]["runs"][0], row["new"]["runs"][1]
            say(f"gen rep {rep}: old b1 {old1['total_tokens_per_s']:.0f} tok/s ({old1['prompt_tokens_per_s']:.0f} prompt + "
                f"{old1['new_tokens_per_s']:.1f} new); new b1 {new1['total_tokens_per_s']:.0f} ({new1['prompt_tokens_per_s']:.0f} + "
                f"{new1['new_tokens_per_s']:.1f}); new b{args.batch} {newb['total_tokens_per_s']:.0f} ({newb['prompt_tokens_per_s']:.0f} + "
                f"{newb['new_tokens_per_s']:.1f}); load {_uptime()}")
            reps.append(row)
        vs_old = _ratio_spread([(r["old"]["runs"][0]["total_tokens_per_s"], r["new"]["runs"][1]["total_tokens_per_s"]) for r in reps])
        batching = _ratio_spread([(r["new"]["runs"][0]["total_tokens_per_s"], r["new"]["runs"][1]["total_tokens_per_s"]) for r in reps])
        b1 = _ratio_spread([(r["old"]["runs"][0]["total_tokens_per_s"], r["new"]["runs"][0]["total_tokens_per_s"]) for r in reps])
        same = [r["old"]["runs"][0]["texts"] == r["new"]["runs"][1]["texts"] for r in reps]
        prefix = _prefix_savings(json.loads(Path(gen_prompts).read_text()))
        report["gen"] = {"reps": reps, "batch_vs_old_b1": vs_old, "batching_new": batching, "b1_new_vs_old": b1,
                         "identical_texts_old_b1_vs_new_batch": same, "prefix_reuse_upper_bound": prefix,
                         "kernels_new": reps[0]["new"]["kernels"]}
        say(f"GEN total (prompt+new) tokens/s: new b{args.batch} / old b1 fp32 median {vs_old['median']:.2f}x "
            f"(min {vs_old['min']:.2f}, max {vs_old['max']:.2f}); batching (new b{args.batch} / new b1) {batching['median']:.2f}x "
            f"(min {batching['min']:.2f}, max {batching['max']:.2f}); new b1 / old b1 {b1['median']:.2f}x; "
            f"peak RSS old {reps[0]['old']['peak_rss_mb']:.0f} MiB, new {reps[0]['new']['peak_rss_mb']:.0f} MiB")
        say(f"prefix reuse: prompts share {prefix['mean_shared_prefix']:.0f} of {prefix['mean_prompt_tokens']:.0f} tokens on average "
            f"({100 * prefix['fraction']:.1f}% of prefill at most) -> not worth a prefix cache")
        say(f"kernels (fast path): {reps[0]['new']['kernels']}")
    if "eval" in parts:
        from ray_icma.evaluate.text_metrics import mol2cap_metrics

        refs = json.loads((work / "eval_refs.json").read_text())
        row = {side: _spawn(args, "eval", side, trees[side], common + ["--prompts", eval_prompts, "--max-new", str(args.eval_max_new)], work)
               for side in ("old", "new")}
        from ray_icma.prompts import parse_output

        preds = {s: [parse_output("mol2cap", _cut(t)) for t in row[s]["texts"]] for s in row}
        metrics = {s: mol2cap_metrics(refs, preds[s], tokenizer=str(ASSETS / "scibert_scivocab_uncased")) for s in preds}
        boot = _bootstrap(refs, preds["old"], preds["new"])
        identical = sum(a == b for a, b in zip(preds["old"], preds["new"]))
        report["eval"] = {"runs": row, "metrics": metrics, "bootstrap_new_minus_old": boot, "identical_predictions": identical,
                          "n": len(refs)}
        say(f"EVAL {len(refs)} ChEBI-20 test queries (mol2cap 2-shot, greedy): old {row['old']['seconds']:.0f} s "
            f"({row['old']['total_tokens_per_s']:.0f} tok/s), new {row['new']['seconds']:.0f} s ({row['new']['total_tokens_per_s']:.0f} tok/s); "
            f"{identical}/{len(refs)} predictions identical")
        for k in ("bleu2", "bleu4", "meteor", "rougeL"):
            b = boot[k]
            say(f"  {k}: old {metrics['old'][k]:.4f} new {metrics['new'][k]:.4f} diff {b['diff']:+.4f} "
                f"95% CI [{b['ci95'][0]:+.4f}, {b['ci95'][1]:+.4f}] -> {b['verdict']}")
    report["load_after"] = _uptime()
    say(f"load before {report['load_before']}, after {report['load_after']}")
    write_results(out_json, report, "\n".join(lines))
    print(f"raw output: {out_json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
