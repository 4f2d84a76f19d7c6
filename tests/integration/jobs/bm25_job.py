"""Ray Job entrypoint: bulk-load a caption corpus into Elasticsearch (BM25, alias swap).

    python tests/integration/jobs/bm25_job.py URL INDEX_NAME CORPUS.tsv

CORPUS.tsv: ``id<TAB>text`` lines. Exits 0 after the alias points at the complete index; on an
unreachable Elasticsearch prints one ``error:`` line and exits 1 (what a batch job should do).
"""
from __future__ import annotations

import sys
import time


def main(url: str, index_name: str, corpus: str) -> int:
    from retrieval.bm25 import BM25BackendUnavailable, build_bm25_index

    ids, texts = [], []
    with open(corpus) as fh:
        for line in fh:
            doc_id, text = line.rstrip("\n").split("\t", 1)
            ids.append(doc_id)
            texts.append(text)
    started = time.time()
    try:
        index = build_bm25_index("elasticsearch", url=url, index_name=index_name, show_progress=False, max_retries=1)
        index.index(texts, ids)
    except BM25BackendUnavailable as exc:
        print(f"error: {exc}", flush=True)
        return 1
    print(f"[bm25_job] indexed {len(ids)} documents into {index_name!r} in {time.time() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
