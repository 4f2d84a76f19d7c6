"""FAISS vs NumPy brute-force cosine search: same top-k (asserted), how much faster, and what
the approximate kinds (IVF, HNSW) trade in recall@10 for speed.

Corpus: ``--n`` vectors of width 300 (the GNN embedding width) drawn from a Gaussian mixture
(real embeddings cluster too), or with ``--real`` the ChEBI-20 validation + test molecules
embedded by a pretrained GNN from ../shared. Queries: ``--queries`` held-out vectors.
Baseline, same run: NumPy ``normalize -> matmul -> argpartition -> argsort`` in chunks.

Run:  .venv/bin/python benchmarks/bench_faiss_vs_numpy.py [--n 100000] [--queries 1000] [--real]
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _timing import Timer, peak_rss_mb  # noqa: E402


def clustered(n: int, dim: int, seed: int, centers: int = 200) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((centers, dim)) * 2
    return (means[rng.integers(0, centers, n)] + rng.standard_normal((n, dim))).astype(np.float32)


def real_embeddings(shared: Path) -> np.ndarray:
    import pandas as pd

    from retrieval.encoders import GNNEncoder

    smiles = []
    for split in ("validation", "test"):
        smiles += pd.read_csv(shared / "data" / "chebi20" / f"{split}.txt", sep="\t")["SMILES"].tolist()
    encoder = GNNEncoder.from_pretrained(shared / "weights" / "pretrain-gnns" / "gcn_contextpred.pth")
    vectors, valid = encoder.encode_smiles(smiles)
    return vectors[valid]


def numpy_search(pool: np.ndarray, queries: np.ndarray, k: int, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    from retrieval.indexes import normalize

    pool_n, query_n = normalize(pool), normalize(queries)
    indices = np.empty((len(queries), k), dtype=np.int64)
    scores = np.empty((len(queries), k), dtype=np.float32)
    for start in range(0, len(queries), chunk):
        sims = query_n[start : start + chunk] @ pool_n.T
        top = np.argpartition(-sims, k, axis=1)[:, :k]
        top_scores = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        indices[start : start + chunk] = np.take_along_axis(top, order, axis=1)
        scores[start : start + chunk] = np.take_along_axis(top_scores, order, axis=1)
    return indices, scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--real", action="store_true", help="embed ChEBI-20 validation+test from ../shared instead")
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    from retrieval.indexes import FaissIndex

    if args.real:
        if not (args.shared / "weights").is_dir():
            sys.exit(f"--real needs {args.shared} (weights and ChEBI-20); not found")
        data = real_embeddings(args.shared)
        rng = np.random.default_rng(0)
        rng.shuffle(data)
        queries, pool = data[: args.queries], data[args.queries :]
        label = f"ChEBI-20 GCN embeddings, pool {len(pool)}"
    else:
        data = clustered(args.n + args.queries, 300, seed=0)
        pool, queries = data[: args.n], data[args.n :]
        label = f"Gaussian-mixture vectors, pool {len(pool)}"
    print(f"{label} x 300 dims, {len(queries)} queries, k={args.k}")

    np_search = lambda: numpy_search(pool, queries, args.k)  # noqa: E731
    np_search()  # warm-up
    with Timer() as t_np:
        np_idx, np_scores = np_search()

    flat = FaissIndex(300, "flat", device="cpu")
    with Timer() as t_build:
        flat.add(pool)
    flat.search(queries[:10], k=args.k)  # warm-up
    with Timer() as t_flat:
        hits = flat.search(queries, k=args.k)
    np.testing.assert_allclose(hits.scores, np_scores, rtol=1e-4, atol=1e-5)
    same = (hits.indices == np_idx) | np.isclose(hits.scores, np_scores, atol=1e-6)  # ties may swap
    assert same.all(), "FAISS flat and NumPy disagree"
    print(f"numpy brute force : {t_np.seconds * 1e3:8.1f} ms  ({len(queries) / t_np.seconds:8.0f} queries/s)  baseline")
    print(f"faiss flat        : {t_flat.seconds * 1e3:8.1f} ms  ({len(queries) / t_flat.seconds:8.0f} queries/s)  "
          f"{t_np.seconds / t_flat.seconds:5.2f}x numpy, identical top-{args.k}; build {t_build.seconds:.2f} s")

    nlist = max(1, int(np.sqrt(len(pool))))
    for kind, params in (("ivf", {"nlist": nlist, "nprobe": max(8, nlist // 16)}), ("hnsw", {"M": 32, "ef_search": 64})):
        index = FaissIndex(300, kind, device="cpu", **params)
        with Timer() as t_b:
            index.add(pool)
        index.search(queries[:10], k=args.k)
        with Timer() as t_s:
            approx = index.search(queries, k=args.k)
        recall = np.mean([len(set(a) & set(e)) / args.k for a, e in zip(approx.indices, hits.indices)])
        print(f"faiss {kind:<4} {str(params):<30}: {t_s.seconds * 1e3:8.1f} ms  {t_np.seconds / t_s.seconds:6.2f}x numpy, "
              f"recall@{args.k} vs flat {recall:.3f}; build {t_b.seconds:.2f} s")
    print(f"peak RSS {peak_rss_mb():.0f} MiB")


if __name__ == "__main__":
    main()
