"""BM25 backends head to head: queries per second of bm25s, Elasticsearch (_msearch) and rank_bm25
on the same corpus, with ratios against rank_bm25 (the baseline, what the ICMA code uses) measured
in the same run. Goal from the issue: bm25s >= 50x rank_bm25.

Corpus: ChEBI-20 validation captions (3,301) as the pool, test captions (3,300) as queries, from
../shared; without it, the bundled fixtures (300 / 200 rows) with a message. rank_bm25 scores
every document in a Python loop (~0.1-0.2 s per query here), so it runs on the first
``--rank-queries`` queries only; its rate is per query like the others.
All backends use the standard tokenizer and k1=1.2, b=0.75; bm25s and Elasticsearch rank alike
(their top-1 agreement is printed as a check).

Run:  .venv/bin/python benchmarks/bench_bm25_backends.py [--es-url http://127.0.0.1:9200] [--rank-queries 200] [--no-es]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _timing import Timer, peak_rss_mb  # noqa: E402

from retrieval.bm25 import BM25BackendUnavailable, build_bm25_index  # noqa: E402


def read_captions(path: Path) -> list[str]:
    return [line.split("\t")[2] for line in path.read_text(encoding="utf-8").splitlines()[1:] if line.strip()]


def load_corpus() -> tuple[list[str], list[str], str]:
    shared = Path(os.environ.get("RAY_ICMA_SHARED", ROOT.parent / "shared")) / "data" / "chebi20"
    if (shared / "validation.txt").is_file() and (shared / "test.txt").is_file():
        return read_captions(shared / "validation.txt"), read_captions(shared / "test.txt"), "ChEBI-20 (../shared)"
    print(f"note: {shared} not found; using the bundled 300/200-row fixtures (numbers are not comparable)")
    assets = ROOT / "tests" / "assets"
    return (read_captions(assets / "chebi20_validation_300.txt"), read_captions(assets / "chebi20_test_200.txt"),
            "fixtures")


def top1_agreement(a, b) -> float:
    return float((a.indices[:, 0] == b.indices[:, 0]).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--es-url", default=os.environ.get("RAY_ICMA_ES_URL", "http://127.0.0.1:9200"))
    parser.add_argument("--no-es", action="store_true", help="skip the Elasticsearch backend")
    parser.add_argument("--rank-queries", type=int, default=200, help="queries timed for rank_bm25 (slow)")
    parser.add_argument("--repeats", type=int, default=3, help="best of N for the fast backends")
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()

    pool, queries, source = load_corpus()
    print(f"corpus: {source}, pool {len(pool)} captions, {len(queries)} queries, k={args.k}")
    rows = []  # (backend, index seconds, queries timed, search seconds)

    bm25s_index = build_bm25_index("bm25s")
    with Timer() as t_index:
        bm25s_index.index(pool)
    best = float("inf")
    for _ in range(args.repeats):
        with Timer() as t:
            hits_bm25s = bm25s_index.search(queries, k=args.k)
        best = min(best, t.seconds)
    rows.append(("bm25s", t_index.seconds, len(queries), best))

    hits_es = None
    if not args.no_es:
        try:
            es_index = build_bm25_index("elasticsearch", url=args.es_url, index_name=f"bench-bm25-{os.getpid()}",
                                        show_progress=False)
        except BM25BackendUnavailable as exc:
            print(f"skipping Elasticsearch: {exc}")
        else:
            try:
                with Timer() as t_index:
                    es_index.index(pool)
                es_index.search(queries[:50], k=args.k)  # warm caches
                best = float("inf")
                for _ in range(args.repeats):
                    with Timer() as t:
                        hits_es = es_index.search(queries, k=args.k)
                    best = min(best, t.seconds)
                rows.append(("elasticsearch (_msearch)", t_index.seconds, len(queries), best))
            finally:
                es_index.delete_index()
                es_index.close()

    rank_index = build_bm25_index("rank_bm25")
    with Timer() as t_index:
        rank_index.index(pool)
    subset = queries[: args.rank_queries]
    with Timer() as t:
        rank_index.search(subset, k=args.k)
    rows.append(("rank_bm25 (baseline)", t_index.seconds, len(subset), t.seconds))

    baseline_qps = rows[-1][2] / rows[-1][3]
    print(f"\n{'backend':26s} {'index s':>8s} {'queries':>8s} {'search s':>9s} {'q/s':>10s} {'x rank_bm25':>12s}")
    for name, index_s, n, search_s in rows:
        qps = n / search_s
        print(f"{name:26s} {index_s:8.2f} {n:8d} {search_s:9.2f} {qps:10.1f} {qps / baseline_qps:12.1f}")
    if hits_es is not None:
        es_qps = rows[1][2] / rows[1][3]
        print(f"\nbm25s / elasticsearch: {rows[0][2] / rows[0][3] / es_qps:.1f}x; "
              f"top-1 agreement bm25s vs elasticsearch: {top1_agreement(hits_bm25s, hits_es):.4f} (ties count as misses here)")
    ratio = rows[0][2] / rows[0][3] / baseline_qps
    print(f"goal bm25s >= 50x rank_bm25: {'met' if ratio >= 50 else 'NOT met'} ({ratio:.0f}x); "
          f"peak RSS {peak_rss_mb():.0f} MiB; cores {os.cpu_count()}, load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
