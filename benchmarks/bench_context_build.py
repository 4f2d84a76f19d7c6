"""How long does `build_contexts` take for every ChEBI-20 test query (3,300) against the
validation pool (3,301), both tasks, with the headline retrievers (morgan, bm25)? Goal: < 60 s.

Baseline, measured in the same run on ALL queries (no sampling, no scaling), same retrievers,
same work (score every pool item for every query, keep the top k without the query itself):

* ``naive loop`` mol2cap: Morgan (r=2, 2048 bits) fingerprints of the pool computed once, one
  query at a time, every pair scored by a Python call (``DataStructs.TanimotoSimilarity``), the
  pool sorted per query.
* ``naive loop`` cap2mol: ``rank_bm25.BM25Okapi`` (k1 1.2, b 0.75) over the same Elasticsearch
  ``standard`` tokens as bm25s, ``get_scores`` per query, the pool sorted per query.

Each side runs ``--reps`` times (alternating); the table gives median [min-max] CPU and wall
seconds and the speed-up of the medians, plus the per-rep ratios' range. The ICMA-loop figure
of earlier versions (3 queries scaled by 1,100) is gone: it was never measured on the real count.

Run:  .venv/bin/python benchmarks/bench_context_build.py [--shared ../shared] [--reps 3] | tee benchmarks/results/context_build_<date>.txt
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _timing import Timer, peak_rss_mb  # noqa: E402


def naive_mol2cap(queries, pool, k):
    """Per-query Python loop over the pool with Morgan r=2 / 2048-bit fingerprints."""
    from rdkit import Chem, DataStructs
    from rdkit.Chem import rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    pool_fps = [gen.GetFingerprint(Chem.MolFromSmiles(r.smiles)) for r in pool]
    out = {}
    for query in queries:
        mol = Chem.MolFromSmiles(query.smiles) if query.smiles else None
        if mol is None:
            out[query.cid] = []
            continue
        fp = gen.GetFingerprint(mol)
        scores = [DataStructs.TanimotoSimilarity(fp, other) for other in pool_fps]
        order = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)
        out[query.cid] = [pool[i].cid for i in order if pool[i].cid != query.cid][:k]
    return out


def naive_cap2mol(queries, pool, k):
    """Per-query rank_bm25 scoring over Elasticsearch-standard tokens (Lucene's k1, b)."""
    import rank_bm25

    from retrieval.bm25 import tokenize_standard

    bm25 = rank_bm25.BM25Okapi([tokenize_standard(r.text) for r in pool], k1=1.2, b=0.75)
    out = {}
    for query in queries:
        scores = bm25.get_scores(tokenize_standard(query.text))
        order = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)
        out[query.cid] = [pool[i].cid for i in order if pool[i].cid != query.cid][:k]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of each side (>= 3 for a spread)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N queries (smoke runs; the headline uses all)")
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()

    data = args.shared / "data" / "chebi20"
    if not (data / "test.txt").is_file():
        print(f"skip: {data}/test.txt not found (pass --shared)")
        return 0

    from rdkit import RDLogger

    from ray_icma.data import load_records
    from ray_icma.jobs.contexts import build_contexts

    RDLogger.DisableLog("rdApp.*")

    queries = load_records(data / "test.txt", validate_smiles=False).records[: args.limit]
    pool = load_records(data / "validation.txt").records
    print(f"queries: {len(queries)} ChEBI-20 test, pool: {len(pool)} ChEBI-20 validation, k={args.k}")

    from _timing import machine_load, spread

    print(machine_load())
    runs: dict[str, list] = {"ours mol2cap": [], "ours cap2mol": [], "naive mol2cap": [], "naive cap2mol": []}
    for rep in range(args.reps):
        for task, retriever in (("mol2cap", "morgan"), ("cap2mol", "bm25")):
            with Timer() as t:
                table = build_contexts(queries, pool, task, retriever, k=args.k)
            runs[f"ours {task}"].append(t)
            tables = locals().setdefault("tables", {})
            tables[task] = table
        with Timer() as t:
            naive_mol = naive_mol2cap(queries, pool, args.k)
        runs["naive mol2cap"].append(t)
        with Timer() as t:
            naive_cap = naive_cap2mol(queries, pool, args.k)
        runs["naive cap2mol"].append(t)
        print(f"rep {rep + 1}: " + ", ".join(f"{name} {ts[-1].cpu_seconds:.1f} CPU-s / {ts[-1].seconds:.1f} s" for name, ts in runs.items()))

    # same lists (ties may order differently): top-1 agreement over all queries
    agree_mol = sum(naive_mol[q.cid][:1] == tables["mol2cap"][q.cid][0][:1] for q in queries) / len(queries)
    agree_cap = sum(naive_cap[q.cid][:1] == tables["cap2mol"][q.cid][0][:1] for q in queries) / len(queries)
    print(f"\n{len(queries)} queries, every one timed on both sides; top-1 agreement naive vs build_contexts: "
          f"{agree_mol:.1%} (mol2cap) / {agree_cap:.1%} (cap2mol)")
    for name, ts in runs.items():
        print(f"{name:14s} CPU s {spread(t.cpu_seconds for t in ts):28s} wall s {spread(t.seconds for t in ts)}")
    import statistics

    for unit, attr in (("CPU", "cpu_seconds"), ("wall", "seconds")):
        ours = [getattr(a, attr) + getattr(b, attr) for a, b in zip(runs["ours mol2cap"], runs["ours cap2mol"])]
        naive = [getattr(a, attr) + getattr(b, attr) for a, b in zip(runs["naive mol2cap"], runs["naive cap2mol"])]
        ratios = [n / o for n, o in zip(naive, ours)]
        print(f"both tasks, {unit}: build_contexts {spread(ours)} s, naive loop {spread(naive)} s; "
              f"speed-up {statistics.median(naive) / statistics.median(ours):.1f}x (per-rep {min(ratios):.1f}-{max(ratios):.1f}x)")
    wall_ours = statistics.median(a.seconds + b.seconds for a, b in zip(runs["ours mol2cap"], runs["ours cap2mol"]))
    print(f"goal < 60 s for both tasks: {'met' if wall_ours < 60 else 'NOT met'} ({wall_ours:.1f} s wall median); "
          f"peak RSS {peak_rss_mb():.0f} MiB; {machine_load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
