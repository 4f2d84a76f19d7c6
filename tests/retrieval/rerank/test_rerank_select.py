"""Post-retrieval re-ranking: the code's evenly spaced walk, the paper's probabilistic walk,
and Sequence Reversal."""
from __future__ import annotations

import pytest

from retrieval.rerank import (
    STRATEGIES,
    example_seed,
    random_walk_code,
    random_walk_probabilistic,
    select_examples,
    sequence_reversal,
)

TOP10 = [f"cid{i}" for i in range(10)]


def icma_bucket_loop(ranked, n_shot, start_pos):
    """ICMA's RetrievalDataset loop with bucket_sampling, transcribed (ranks only)."""
    picked, j, num_ex = [], start_pos, 0
    while num_ex < n_shot and j < 10:
        if (j - start_pos) % int((10 - start_pos) / n_shot) == 0:
            picked.append(ranked[j])
            num_ex += 1
        j += 1
    return picked


@pytest.mark.parametrize(
    ("n", "start_pos", "ranks"),
    [(2, 0, [0, 5]), (4, 0, [0, 2, 4, 6]), (2, 1, [1, 5]), (4, 1, [1, 3, 5, 7]), (1, 0, [0]), (10, 0, list(range(10)))],
)
def test_code_walk_takes_evenly_spaced_ranks(n, start_pos, ranks):
    assert random_walk_code(TOP10, n, start_pos=start_pos) == [TOP10[r] for r in ranks]


@pytest.mark.parametrize("start_pos", [0, 1, 2, 3])
@pytest.mark.parametrize("n", range(1, 8))
def test_code_walk_matches_icma_loop(n, start_pos):
    if n > 10 - start_pos:
        pytest.skip("ICMA divides by zero here")
    assert random_walk_code(TOP10, n, start_pos=start_pos) == icma_bucket_loop(TOP10, n, start_pos)


def test_code_walk_on_short_and_long_lists():
    assert random_walk_code(TOP10[:5], 2) == ["cid0", "cid2"]  # spacing uses the real length
    assert random_walk_code(TOP10 + ["cid10", "cid11"], 2) == ["cid0", "cid5"]  # only the top 10 count
    assert random_walk_code(TOP10[:3], 5) == TOP10[:3]  # fewer candidates than n: all of them
    assert random_walk_code([], 2) == []
    assert random_walk_code(TOP10, 0) == []


def test_probabilistic_walk_is_seeded_and_respects_n():
    first = random_walk_probabilistic(TOP10, 4, seed=7)
    assert first == random_walk_probabilistic(TOP10, 4, seed=7)
    assert len(first) == 4
    assert first == sorted(first, key=TOP10.index)  # best first, no duplicates
    assert len(set(first)) == 4
    draws = {tuple(random_walk_probabilistic(TOP10, 4, seed=s)) for s in range(20)}
    assert len(draws) > 1  # different seeds walk differently


def test_probabilistic_walk_limits_and_fill():
    assert random_walk_probabilistic(TOP10, 3, p_take=1.0, seed=0) == TOP10[:3]
    # (almost) never taking: the walk runs off the end and the best skipped candidates fill in
    assert random_walk_probabilistic(TOP10, 3, p_take=1e-12, seed=0) == TOP10[:3]
    assert random_walk_probabilistic(TOP10, 2, start_pos=1, p_take=1.0) == TOP10[1:3]
    assert random_walk_probabilistic(TOP10[:2], 5, seed=0) == TOP10[:2]
    assert random_walk_probabilistic(TOP10, 0, seed=0) == []
    for p_take in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="p_take"):
            random_walk_probabilistic(TOP10, 2, p_take=p_take)


def test_lower_take_probability_reaches_deeper_ranks():
    def mean_rank(p_take):
        ranks = [TOP10.index(x) for s in range(300) for x in random_walk_probabilistic(TOP10, 2, p_take=p_take, seed=s)]
        return sum(ranks) / len(ranks)

    assert mean_rank(0.3) > mean_rank(0.6) > mean_rank(0.95)


def test_sequence_reversal_puts_most_similar_last():
    assert sequence_reversal(["best", "second", "third"]) == ["third", "second", "best"]
    assert select_examples(TOP10, 2) == ["cid5", "cid0"]
    assert select_examples(TOP10, 2, reverse=False) == ["cid0", "cid5"]
    prompt = select_examples(TOP10, 4, strategy="probabilistic", seed=3)
    assert prompt == sequence_reversal(select_examples(TOP10, 4, strategy="probabilistic", seed=3, reverse=False))
    assert prompt[-1] == min(prompt, key=TOP10.index)


def test_select_examples_strategies():
    assert select_examples(TOP10, 3, strategy="top", reverse=False) == TOP10[:3]
    assert select_examples(TOP10, 3, strategy="top", start_pos=1, reverse=False) == TOP10[1:4]
    assert select_examples(TOP10, 4, strategy="code", start_pos=1, reverse=False) == ["cid1", "cid3", "cid5", "cid7"]
    for strategy in STRATEGIES:
        assert select_examples(TOP10, 0, strategy=strategy) == []
    with pytest.raises(ValueError, match="'code'.*'probabilistic'.*'top'"):
        select_examples(TOP10, 2, strategy="bucket")
    with pytest.raises(ValueError):
        select_examples(TOP10, -1)
    with pytest.raises(ValueError):
        select_examples(TOP10, 2, start_pos=-1)


def test_example_seed_is_stable_per_query():
    assert example_seed(42, "123") == example_seed(42, "123")
    assert example_seed(42, "123") != example_seed(42, "124")
    assert example_seed(42, "123") != example_seed(43, "123")
    assert 0 <= example_seed(0, 1) < 2**63


def test_probabilistic_default_spacing_matches_bucket_sampling_on_average():
    """The documented reason for p_take=0.5: the walk's mean n=4 picks sit near ICMA's 0, 2, 4, 6."""
    import numpy as np

    from retrieval.rerank import random_walk_code, random_walk_probabilistic

    picks = np.array([random_walk_probabilistic(list(range(10)), 4, seed=s) for s in range(4000)])
    assert np.abs(picks.mean(axis=0) - [0.6, 2.4, 4.2, 6.2]).max() < 0.1
    assert np.abs(picks.mean(axis=0) - random_walk_code(list(range(10)), 4)).max() < 0.7
