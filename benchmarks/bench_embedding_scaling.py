"""Molecules/s embedded by the Ray Data job with 1 vs 2 encoder actors (goal: 2 actors >= 1.7x
of 1), against a plain single-process ``GNNEncoder.encode_smiles`` loop measured in the same run.

Throughput is counted from the first finished batch to the last one (actor start-up, i.e.
importing torch and loading the model, excluded; reported separately as "startup").
Molecules: ChEBI-20 validation (3,301) from ../shared, or the 300-row test pool repeated.
Checkpoint: ../shared GCN (pretrain-gnns), else a random-init GIN (same cost per molecule).
Runs on a private local Ray with 2 CPUs (``--address auto`` or a host:port joins a cluster
instead, whose CPUs other jobs may hold). On a shared 2-core machine the numbers are noisy:
run it when the box is otherwise idle.

Every configuration runs ``--reps`` times (default 3, interleaved: loop, 1 actor, 2 actors, ...);
the table gives median [min-max] molecules/s and the 2-vs-1 ratio per repetition, so one lucky
run cannot make the headline (an earlier single run read 1.80x after others read 0.81x and 1.16x).

Run:  .venv/bin/python benchmarks/bench_embedding_scaling.py [--n 3301] [--reps 3] [--batch-size 128] [--address HOST:PORT] \
        | tee benchmarks/results/embedding_scaling_<date>.txt
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _timing import Timer, peak_rss_mb  # noqa: E402


def load_inputs(shared: Path, n: int) -> tuple[list[tuple[str, str]], Path]:
    import pandas as pd
    import torch

    validation = shared / "data" / "chebi20" / "validation.txt"
    source = validation if validation.is_file() else ROOT / "tests" / "assets" / "chebi20_validation_300.txt"
    frame = pd.read_csv(source, sep="\t", dtype={"CID": str})
    rows = [(f"{cid}-{rep}", smi) for rep in range(n // len(frame) + 1) for cid, smi in zip(frame["CID"], frame["SMILES"])][:n]
    checkpoint = shared / "weights" / "pretrain-gnns" / "gcn_contextpred.pth"
    if not checkpoint.is_file():
        from retrieval.encoders import GNNEncoder

        torch.manual_seed(0)
        checkpoint = Path(tempfile.mkdtemp()) / "random_gin.pth"
        torch.save(GNNEncoder("gin").state_dict(), checkpoint)
    print(f"{len(rows)} molecules from {source}, checkpoint {checkpoint.name}")
    return rows, checkpoint


def plain_loop(rows, checkpoint: Path, batch_size: int, threads: int) -> float:
    import torch

    from retrieval.encoders import GNNEncoder

    torch.set_num_threads(threads)
    encoder = GNNEncoder.from_pretrained(checkpoint)
    encoder.encode_smiles([s for _, s in rows[:64]])  # warm-up
    with Timer() as t:
        encoder.encode_smiles([s for _, s in rows], batch_size=batch_size)
    return len(rows) / t.seconds


def ray_run(rows, checkpoint: Path, batch_size: int, actors: int) -> tuple[float, float]:
    from ray_icma.jobs.embed import embed_molecules

    stamps: list[tuple[float, int]] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        embed_molecules(rows, out, checkpoint=checkpoint, batch_size=batch_size, concurrency=actors,
                        progress=lambda n: stamps.append((time.perf_counter(), n)))
    first_t, first_n = stamps[0]
    steady = (sum(n for _, n in stamps) - first_n) / max(stamps[-1][0] - first_t, 1e-9)
    return steady, first_t - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3301)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--reps", type=int, default=3, help="repetitions of every configuration")
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--address", default=None, help="Ray cluster to join; default: a private local Ray (2 CPUs)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import logging

    import ray

    logging.getLogger("ray.data").setLevel(logging.WARNING)
    rows, checkpoint = load_inputs(args.shared, args.n)

    from _timing import machine_load, spread

    address = args.address
    os.environ.pop("RAY_ADDRESS", None)
    ray.init(address=address or "local", num_cpus=None if address else 2, log_to_driver=False, include_dashboard=False)
    print(f"Ray: {address or 'local'}, {ray.cluster_resources().get('CPU', 0):.0f} logical CPUs, {os.cpu_count()} cores; {machine_load()}")
    loop_1, loop_all, one, two, ratios = [], [], [], [], []
    for rep in range(args.reps):
        loop_1.append(plain_loop(rows, checkpoint, args.batch_size, threads=1))
        loop_all.append(plain_loop(rows, checkpoint, args.batch_size, threads=os.cpu_count() or 1))
        one_rate, start_1 = ray_run(rows, checkpoint, args.batch_size, actors=1)
        two_rate, start_2 = ray_run(rows, checkpoint, args.batch_size, actors=2)
        one.append(one_rate), two.append(two_rate), ratios.append(two_rate / one_rate)
        print(f"rep {rep + 1}: loop 1 thread {loop_1[-1]:.0f}/s, loop {os.cpu_count()} threads {loop_all[-1]:.0f}/s, "
              f"1 actor {one_rate:.0f}/s (startup {start_1:.1f} s), 2 actors {two_rate:.0f}/s (startup {start_2:.1f} s), "
              f"2 vs 1 {ratios[-1]:.2f}x; {machine_load()}")
    print(f"plain loop, 1 thread      : {spread(loop_1)} molecules/s  baseline")
    print(f"plain loop, {os.cpu_count()} threads     : {spread(loop_all)} molecules/s")
    print(f"Ray Data, 1 actor         : {spread(one)} molecules/s")
    print(f"Ray Data, 2 actors        : {spread(two)} molecules/s")
    print(f"scaling 2 vs 1 actors     : {spread(ratios)}x per rep (goal >= 1.7x)")
    print(f"peak RSS (driver) {peak_rss_mb():.0f} MiB; {machine_load()}")


if __name__ == "__main__":
    main()
