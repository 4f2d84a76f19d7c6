"""How much of a CPU training worker's speed Ray Train takes (issue 13: where the per-worker 3x goes).

The fast path's training step loop, the same in both sides: SmolLM2-135M + LoRA r 8, the 2-shot mol2cap rows of
the 300-row test pool with Morgan contexts (bench_cpu_fastpath's rows), cutoff 512, micro-batch 2, length
buckets, bf16 autocast where native with the frozen weights stored in bf16, the adapters' CpuFastDropout,
logits of the answer positions only, AdamW, gradient clipping; ``--steps`` steps, ``--cpus`` torch threads.

- process: the loop in a plain Python child process, the allocator preloaded as the product preloads it into
  its Ray Train workers (``ray_icma.allocator``).
- raytrain: the loop inside the one worker of a Ray Train ``TorchTrainer`` (1 worker x ``--cpus`` CPUs, a local
  Ray the child starts, the same preload through the worker's runtime env).
- The sides alternate ``--reps`` times; tokens/s = non-padding tokens / wall seconds of the steps (model loading
  excluded on both sides); the ratio raytrain / process is taken per repetition.
- idle: Ray's own CPU use while a Ray Train run's worker only sleeps, per process over ``--idle-s`` seconds (from
  /proc), in % of one core: what a training worker shares its cores with.

    python benchmarks/bench_ray_overhead.py --reps 3

Raw output: benchmarks/results/ray_overhead_<UTC time>.{json,txt}.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = Path(__file__).resolve().parent
PYTHONPATH = os.pathsep.join([str(ROOT), str(BENCHMARKS)])  # the children's and the Ray workers' imports
sys.path.insert(0, str(BENCHMARKS))
from _timing import machine_load, write_results  # noqa: E402


def step_loop(model_name: str, contexts: str, steps: int, threads: int) -> dict:
    """The fast path's training steps; returns tokens, seconds and tokens/s of the steps."""
    import torch

    from bench_cpu_fastpath import POOL
    from ray_icma.models import apply_lora, load_causal_lm, load_tokenizer, lora_config
    from ray_icma.precision import autocast, resolve_precision, store_frozen_weights
    from ray_icma.train import build_train_rows, global_batches, load_train_config, tokenize_rows
    from ray_icma.train.collate import rank_micro_batch
    from ray_icma.train.loss import causal_lm_loss

    torch.set_num_threads(threads)
    cfg = load_train_config(None, [f"data.train={POOL}", f"data.contexts={contexts}", "data.n_shot=2", "data.cutoff_len=512", "seed=0"])
    tok = load_tokenizer(model_name)
    rows = tokenize_rows(tok, build_train_rows(cfg), 512)
    batches = global_batches([len(r["input_ids"]) for r in rows], 2, seed=0, epoch=0)
    if len(batches) < steps:
        raise ValueError(f"{len(batches)} batches for {steps} steps")
    torch.manual_seed(0)
    precision = resolve_precision("auto", "cpu")
    model, _ = load_causal_lm(model_name, torch_dtype="float32")
    model.config.use_cache = False
    model = apply_lora(model, lora_config(r=8, alpha=16, dropout=0.1, model=model)).train()
    store_frozen_weights(model, precision)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=5e-4)
    tokens, started, cpu0 = 0, time.perf_counter(), time.process_time()
    for index in range(steps):
        batch = rank_micro_batch(rows, batches[index], 0, 1, tok.pad_token_id)
        with autocast(precision, "cpu"):
            loss = causal_lm_loss(model, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        tokens += int(batch["attention_mask"].sum())
    seconds = time.perf_counter() - started
    return {"tokens": tokens, "seconds": seconds, "cpu_seconds": time.process_time() - cpu0, "tokens_per_s": tokens / seconds,
            "precision": precision, "threads": torch.get_num_threads(), "pid": os.getpid(), "nice": os.nice(0),
            "ld_preload": os.environ.get("LD_PRELOAD", "")}


def _ray_train(args: argparse.Namespace, loop_kwargs: dict | None) -> dict:
    """A local Ray and a 1-worker TorchTrainer whose worker runs the loop (or sleeps ``--idle-s`` when
    ``loop_kwargs`` is None, while this process samples every process's CPU time)."""
    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from ray_icma.allocator import allocator_env

    env = {"PYTHONPATH": PYTHONPATH, **allocator_env()}
    ray.init(num_cpus=int(args.cpus), runtime_env={"env_vars": env}, include_dashboard=False, log_to_driver=False)
    sleep_s = args.idle_s

    def worker(config: dict) -> None:  # one machine: the worker writes its figures where the driver reads them
        if config["loop"] is None:
            Path(config["out"]).write_text("sleeping")  # the sampler starts 5 s after this
            time.sleep(config["sleep_s"])
        else:
            Path(config["out"]).write_text(json.dumps(step_loop(**config["loop"])))

    sampled: dict = {}
    sampler = None
    storage = tempfile.mkdtemp(prefix="ray-overhead-")
    out = Path(storage) / "loop.json"
    if loop_kwargs is None:  # sample from 5 s after the worker has started sleeping (every actor up) for idle_s - 10 s
        def sample() -> None:
            while not out.exists():
                time.sleep(0.2)
            time.sleep(5)
            a, t0 = _cpu_ticks(), time.perf_counter()
            time.sleep(max(5.0, sleep_s - 10))
            b, t1 = _cpu_ticks(), time.perf_counter()
            hz = os.sysconf("SC_CLK_TCK")
            sampled["processes"] = sorted(({"process": b[p][1], "pct_of_one_core": round(100 * (b[p][0] - a[p][0]) / hz / (t1 - t0), 2)}
                                           for p in b if p in a and b[p][0] > a[p][0]), key=lambda r: -r["pct_of_one_core"])
            sampled["seconds"] = round(t1 - t0, 1)
        sampler = threading.Thread(target=sample)
        sampler.start()
    TorchTrainer(worker, train_loop_config={"loop": loop_kwargs, "sleep_s": sleep_s, "out": str(out)},
                 scaling_config=ScalingConfig(num_workers=1, resources_per_worker={"CPU": args.cpus}),
                 run_config=RunConfig(storage_path=storage, name="ray-overhead")).fit()
    if sampler is not None:
        sampler.join()
    figures = sampled if loop_kwargs is None else json.loads(out.read_text())
    ray.shutdown()
    shutil.rmtree(storage, ignore_errors=True)
    return figures


def _cpu_ticks() -> dict[str, tuple[int, str]]:
    """user + system clock ticks and the command line of every process."""
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        out[pid] = (int(fields[11]) + int(fields[12]), (cmd or stat.split("(", 1)[1].split(")", 1)[0])[:80])
    return out


def _child(args: argparse.Namespace) -> dict:
    loop = {"model_name": args.model, "contexts": args.contexts, "steps": args.steps, "threads": int(args.cpus)}
    if args.child == "process":
        return step_loop(**loop)
    return _ray_train(args, loop if args.child == "raytrain" else None)


def _spawn(args: argparse.Namespace, side: str, work: Path) -> dict:
    from ray_icma.allocator import allocator_env

    out = work / f"{side}-{time.time_ns()}.json"
    cmd = [sys.executable, __file__, "--child", side, "--out", str(out), "--model", args.model,
           "--steps", str(args.steps), "--cpus", str(args.cpus), "--idle-s", str(args.idle_s)]
    cmd += ["--contexts", args.contexts] if args.contexts else []
    env = dict(os.environ, PYTHONPATH=PYTHONPATH)
    if side == "process":  # the preload the product gives its Ray Train workers (raytrain: through the runtime env)
        env.update(allocator_env())
    proc = subprocess.run(cmd, env=env, cwd=str(work), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{side} failed (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(out.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--steps", type=int, default=12, help="training steps per side per rep (the quickstart's 12)")
    parser.add_argument("--cpus", type=float, default=2, help="the worker's CPUs (its torch threads)")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--idle-s", type=float, default=45, help="how long the idle Ray Train worker sleeps (0: no idle part)")
    parser.add_argument("--out-dir", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--child", choices=("process", "raytrain", "idle"), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--contexts", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        Path(args.out).write_text(json.dumps(_child(args), default=str))
        return 0

    from bench_cpu_fastpath import _contexts_and_prompts, _ratio_spread

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    lines: list[str] = []

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    report: dict = {"started": stamp, "args": vars(args), "load_before": machine_load()}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        reps = []
        if args.reps > 0:
            args.contexts = _contexts_and_prompts(work, 1, 1, 8, 8)[0]
        for rep in range(args.reps):
            row = {side: _spawn(args, side, work) for side in ("process", "raytrain")}
            reps.append(row)
            say(f"rep {rep}: process {row['process']['tokens_per_s']:.0f} tok/s ({row['process']['cpu_seconds']:.1f} CPU-s), "
                f"Ray Train worker {row['raytrain']['tokens_per_s']:.0f} tok/s ({row['raytrain']['cpu_seconds']:.1f} CPU-s): "
                f"{row['raytrain']['tokens_per_s'] / row['process']['tokens_per_s']:.3f}x; {machine_load()}")
        if reps:
            ratio = _ratio_spread([(r["process"]["tokens_per_s"], r["raytrain"]["tokens_per_s"]) for r in reps])  # raytrain / process
            report["reps"], report["ratio"] = reps, ratio
            say(f"RAY TRAIN WORKER / PLAIN PROCESS tokens/s: median {ratio['median']:.3f}x (min {ratio['min']:.3f}, "
                f"max {ratio['max']:.3f}); process {statistics.median(r['process']['tokens_per_s'] for r in reps):.0f}, "
                f"Ray Train {statistics.median(r['raytrain']['tokens_per_s'] for r in reps):.0f} tok/s (medians), "
                f"{args.steps} steps, {reps[0]['process']['precision']}, {reps[0]['process']['threads']} threads")
        if args.idle_s > 0:
            idle = _spawn(args, "idle", work)
            report["idle"] = idle
            ray_rows = [p for p in idle["processes"] if "ray" in p["process"].lower()]
            say(f"IDLE Ray Train run (worker sleeping), {idle['seconds']} s: Ray's processes use "
                f"{sum(p['pct_of_one_core'] for p in ray_rows):.1f}% of one core in all ({len(ray_rows)} processes)")
            for p in ray_rows[:14]:
                say(f"  {p['pct_of_one_core']:5.2f}%  {p['process']}")
    report["load_after"] = machine_load()
    say(f"load before {report['load_before']}, after {report['load_after']}")
    out = Path(args.out_dir) / f"ray_overhead_{stamp}.json"
    write_results(out, report, "\n".join(lines))
    print(f"raw output: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
