"""Plain helpers for the BM25 tests (a uniquely named module: ``conftest`` names clash across folders)."""
from __future__ import annotations

import bisect
from pathlib import Path

import requests


def read_captions(path: Path) -> list[str]:
    """Descriptions (third column) of a ChEBI-20 style TSV with a header."""
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    return [line.split("\t")[2] for line in lines if line.strip()]


def es_analyze(url: str, texts: list[str], batch: int = 100) -> list[list[str]]:
    """Terms of each text under the server's ``standard`` analyzer (``_analyze`` in batches).

    ``_analyze`` with several texts returns one token stream whose offsets continue across texts
    with a gap of 1 (in UTF-16 units), which is how tokens are given back to their text.
    """
    out: list[list[str]] = []
    for start in range(0, len(texts), batch):
        chunk = texts[start : start + batch]
        response = requests.post(f"{url}/_analyze", json={"analyzer": "standard", "text": chunk}, timeout=120)
        response.raise_for_status()
        bounds, base = [], 0
        for text in chunk:
            bounds.append(base)
            base += len(text.encode("utf-16-le")) // 2 + 1
        per_text: list[list[str]] = [[] for _ in chunk]
        for token in response.json()["tokens"]:
            per_text[bisect.bisect_right(bounds, token["start_offset"]) - 1].append(token["token"])
        out.extend(per_text)
    return out


def delete_test_indices(url: str, name: str) -> None:
    """Delete every ``NAME-*`` index (wildcard deletes are refused by default, so one by one)."""
    response = requests.get(f"{url}/{name}-*/_settings", params={"expand_wildcards": "all"}, timeout=30)
    for index in response.json() if response.ok else {}:
        requests.delete(f"{url}/{index}", timeout=30)


def top1_agreement(a, b, rtol: float = 1e-4) -> float:
    """Share of queries whose best hit agrees between two ``Hits``; a tie counts as agreement.

    A tie: the two best documents differ but ``b``'s best document is in ``a``'s row with a
    score equal to ``a``'s best score within ``rtol`` (relative). Rows of -1 in both agree.
    """
    agree = 0
    for i in range(len(a)):
        best_a, best_b = int(a.indices[i, 0]), int(b.indices[i, 0])
        if best_a == best_b:
            agree += 1
            continue
        row_a = dict(a.row(i))
        if best_b in row_a and abs(row_a[best_b] - a.scores[i, 0]) <= rtol * abs(a.scores[i, 0]):
            agree += 1
    return agree / len(a)


def mean_topk_overlap(a, b) -> float:
    """Mean share of ids two ``Hits`` have in common per row (over the valid ids of ``a``)."""
    shares = []
    for i in range(len(a)):
        ids_a = {j for j, _ in a.row(i)}
        ids_b = {j for j, _ in b.row(i)}
        shares.append(len(ids_a & ids_b) / max(len(ids_a), 1))
    return sum(shares) / len(shares)
