"""How long does `build_contexts` take for every ChEBI-20 test query (3,300) against the
validation pool (3,301), both tasks? Goal: < 60 s on 2 cores.

Baselines, measured in the same run on a sample of queries and scaled linearly to all of them:

* ``naive loop``: one query at a time, pool fingerprints / BM25 index built once, every pair
  scored by a Python call (``DataStructs.FingerprintSimilarity``, ``BM25Okapi.get_scores``)
  and the pool sorted per query: the obvious straightforward implementation.
* ``ICMA loop``: what the official ``data/easy_load_examples.py`` does per query: fingerprint
  the query and every pool molecule again, rebuild ``BM25Okapi`` over all captions again.

Run:  .venv/bin/python benchmarks/bench_context_build.py [--shared ../shared] [--sample 100]
"""
from __future__ import annotations

import argparse
import re
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _timing import Timer, peak_rss_mb  # noqa: E402


def icma_tokens(text: str) -> list[str]:
    """ICMA's remove_punctuation + split(" ")."""
    for old, new in (("-", " "), (",", " "), (".", ""), ("(", " "), (")", " ")):
        text = text.replace(old, new)
    return re.sub(r" +", " ", text).split(" ")


def naive_mol2cap(queries, pool, k, recompute_pool: bool):
    """Per-query loop over the pool with topological fingerprints (recompute_pool: ICMA's way)."""
    from rdkit import Chem, DataStructs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from rdkit.Chem.Fingerprints import FingerprintMols

    pool_mols = [Chem.MolFromSmiles(r.smiles) for r in pool]
    pool_fps = None if recompute_pool else [FingerprintMols.FingerprintMol(m) for m in pool_mols]
    out = {}
    for query in queries:
        query_mol = Chem.MolFromSmiles(query.smiles)
        if query_mol is None:
            out[query.cid] = []
            continue
        if recompute_pool:
            scores = [DataStructs.FingerprintSimilarity(FingerprintMols.FingerprintMol(m), FingerprintMols.FingerprintMol(query_mol)) for m in pool_mols]
        else:
            query_fp = FingerprintMols.FingerprintMol(query_mol)
            scores = [DataStructs.FingerprintSimilarity(fp, query_fp) for fp in pool_fps]
        order = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)
        out[query.cid] = [pool[i].cid for i in order if pool[i].cid != query.cid][:k]
    return out


def naive_cap2mol(queries, pool, k, rebuild_index: bool):
    """Per-query rank_bm25 scoring with ICMA's tokens (rebuild_index: ICMA's way)."""
    import rank_bm25

    corpus = [icma_tokens(r.text) for r in pool]
    bm25 = None if rebuild_index else rank_bm25.BM25Okapi(corpus)
    out = {}
    for query in queries:
        index = rank_bm25.BM25Okapi(corpus) if rebuild_index else bm25
        scores = index.get_scores(icma_tokens(query.text))
        order = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)
        out[query.cid] = [pool[i].cid for i in order if pool[i].cid != query.cid][:k]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--sample", type=int, default=100, help="queries timed for the naive loop baselines")
    parser.add_argument("--icma-sample", type=int, default=3, help="queries timed for the ICMA-loop baselines")
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

    queries = load_records(data / "test.txt", validate_smiles=False).records
    pool = load_records(data / "validation.txt").records
    print(f"queries: {len(queries)} ChEBI-20 test, pool: {len(pool)} ChEBI-20 validation, k={args.k}")

    timings = {}
    for task, retriever in (("mol2cap", "morgan"), ("mol2cap", "topological"), ("cap2mol", "bm25"), ("cap2mol", "bm25-icma")):
        with Timer() as t:
            table = build_contexts(queries, pool, task, retriever, k=args.k)
        timings[(task, retriever)] = t
        print(f"build_contexts {task:8s} {retriever:12s} wall {t.seconds:7.2f} s, cpu {t.cpu_seconds:7.2f} s  "
              f"({len(table)} queries, {table.meta['n_empty']} empty)")
        if retriever == "topological":
            topological = table
        if retriever == "bm25-icma":
            bm25_icma = table

    sample = queries[: args.sample]
    scale = len(queries) / len(sample)
    with Timer() as t_mol:
        naive_mol = naive_mol2cap(sample, pool, args.k, recompute_pool=False)
    with Timer() as t_cap:
        naive_cap = naive_cap2mol(sample, pool, args.k, rebuild_index=False)
    icma_sample = queries[: args.icma_sample]
    with Timer() as t_icma_mol:
        naive_mol2cap(icma_sample, pool, args.k, recompute_pool=True)
    with Timer() as t_icma_cap:
        naive_cap2mol(icma_sample, pool, args.k, rebuild_index=True)
    icma_scale = len(queries) / len(icma_sample)

    # The naive loops compute the same lists (ties may order differently): check the top-1.
    agree_mol = sum(naive_mol[q.cid][:1] == topological[q.cid][0][:1] for q in sample) / len(sample)
    agree_cap = sum(naive_cap[q.cid][:1] == bm25_icma[q.cid][0][:1] for q in sample) / len(sample)

    def total(pairs, attr):
        return sum(getattr(timings[p], attr) for p in pairs)

    icma_pairs = [("mol2cap", "topological"), ("cap2mol", "bm25-icma")]
    default_pairs = [("mol2cap", "morgan"), ("cap2mol", "bm25")]
    print()
    print(f"baselines on {len(sample)} queries (naive) / {len(icma_sample)} (ICMA), scaled to {len(queries)}; "
          f"top-1 agrees with build_contexts for {agree_mol:.0%} (mol2cap) / {agree_cap:.0%} (cap2mol)")
    header = f"{'':46s} {'wall s':>9s} {'cpu s':>9s}"
    print(header)
    rows = [
        ("naive loop mol2cap (topological)", t_mol, scale), ("naive loop cap2mol (rank_bm25)", t_cap, scale),
        ("ICMA loop mol2cap (recompute fingerprints)", t_icma_mol, icma_scale), ("ICMA loop cap2mol (rebuild BM25)", t_icma_cap, icma_scale),
    ]
    for name, t, factor in rows:
        print(f"{name:46s} {t.seconds * factor:9.1f} {t.cpu_seconds * factor:9.1f}")
    naive = {a: (getattr(t_mol, a) + getattr(t_cap, a)) * scale for a in ("seconds", "cpu_seconds")}
    icma = {a: (getattr(t_icma_mol, a) + getattr(t_icma_cap, a)) * icma_scale for a in ("seconds", "cpu_seconds")}
    print()
    for label, pairs in (("ICMA-compatible (topological + bm25-icma)", icma_pairs), ("default (morgan + bm25s)", default_pairs)):
        wall, cpu = total(pairs, "seconds"), total(pairs, "cpu_seconds")
        print(f"both tasks, {label:42s} wall {wall:7.1f} s, cpu {cpu:7.1f} s; vs naive loop x{naive['seconds'] / wall:.1f} wall, "
              f"x{naive['cpu_seconds'] / cpu:.1f} cpu; vs ICMA loop x{icma['seconds'] / wall:.0f} wall, x{icma['cpu_seconds'] / cpu:.0f} cpu")
    wall_default = total(default_pairs, "seconds")
    print(f"goal < 60 s for both tasks (default retrievers): {'met' if wall_default < 60 else 'NOT met'} "
          f"({wall_default:.1f} s wall); peak RSS {peak_rss_mb():.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
