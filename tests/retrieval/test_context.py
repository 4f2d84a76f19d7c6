"""build_context: rank list + scores + pool lookup -> prompt-ordered examples."""
from __future__ import annotations

import pytest

from retrieval.context import ContextExample, build_context

IDS = [f"c{i}" for i in range(10)]
SCORES = [1.0 - i / 10 for i in range(10)]
LOOKUP = {cid: (f"smiles-{cid}", f"caption-{cid}") for cid in IDS}


def test_build_context_resolves_and_orders_examples():
    examples = build_context(IDS, SCORES, LOOKUP, 2)
    assert examples == [
        ContextExample("c5", "smiles-c5", "caption-c5", pytest.approx(0.5)),
        ContextExample("c0", "smiles-c0", "caption-c0", pytest.approx(1.0)),
    ]


def test_build_context_passes_selection_options():
    examples = build_context(IDS, SCORES, LOOKUP, 3, strategy="top", reverse=False, start_pos=1)
    assert [e.id for e in examples] == ["c1", "c2", "c3"]
    walk = build_context(IDS, SCORES, LOOKUP, 4, strategy="probabilistic", seed=11)
    assert walk == build_context(IDS, SCORES, LOOKUP, 4, strategy="probabilistic", seed=11)
    assert [e.score for e in walk] == sorted(e.score for e in walk)  # most similar last


def test_build_context_short_and_empty_lists():
    assert build_context([], [], LOOKUP, 2) == []
    assert [e.id for e in build_context(IDS[:1], SCORES[:1], LOOKUP, 4)] == ["c0"]


def test_build_context_errors():
    with pytest.raises(ValueError, match="scores"):
        build_context(IDS, SCORES[:3], LOOKUP, 2)
    with pytest.raises(KeyError, match="not in the pool"):
        build_context(["missing"], [0.9], LOOKUP, 1)


def test_query_id_is_dropped_and_keys_the_walk_seed():
    from retrieval.context import choose_examples
    from retrieval.rerank import example_seed, select_examples

    others = [c for c in IDS if c != "c2"]
    got = build_context(IDS, SCORES, LOOKUP, 4, query_id="c2", seed=5, strategy="probabilistic")
    want = select_examples(others, 4, strategy="probabilistic", seed=example_seed(5, "c2"))
    assert [e.id for e in got] == want and "c2" not in want
    # without a query id the seed is the walk's own (Serve's per-request seed)
    assert choose_examples(list(range(10)), 4, seed=9, strategy="probabilistic") == select_examples(
        list(range(10)), 4, strategy="probabilistic", seed=9
    )
