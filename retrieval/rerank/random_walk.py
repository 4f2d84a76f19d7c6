"""Random Walk: pick ``n`` in-context examples from a top-k retrieval list without always
taking the ``n`` most similar, so training prompts see more varied (still similar) examples.

Two variants, both returning the chosen items best-first (rank order):

* :func:`random_walk_code` is what the released ICMA code computes (``RetrievalDataset`` with
  ``bucket_sampling``): it takes ranks ``start_pos + m * floor((window - start_pos) / n)`` for
  ``m = 0..n-1``; evenly spaced, no randomness at all.
* :func:`random_walk_probabilistic` is **this project's own** reading of the paper's prose
  ("random walk" down the ranked list, sometimes skipping an example): walk down the list and
  take each candidate with probability ``p_take``, skipping it otherwise. It has no source in
  ICMA's released code (whose only selection is the deterministic ``bucket_sampling`` above), so
  no result of the paper was produced with it. The default ``p_take=0.5`` is ours too: a fair coin
  per candidate makes the expected gap between picks ``1/p_take = 2`` ranks, the spacing of
  ICMA's ``bucket_sampling`` for n=4 (its cap2mol models): over 4,000 seeds the n=4 picks land
  on average at ranks 0.6, 2.4, 4.2, 6.2 against the code's 0, 2, 4, 6
  (``tests/retrieval/rerank/test_rerank_select.py``), so the walk looks as deep into the top 10
  as the released code while varying between epochs.
  ICMA's behaviour is ``strategy="code"`` (the default everywhere).
"""
from __future__ import annotations

from typing import Sequence, TypeVar

import numpy as np

T = TypeVar("T")

#: ICMA retrieves the top 10 candidates per query and picks its examples among them.
ICMA_WINDOW = 10


def _check(n: int, start_pos: int, window: int) -> None:
    if n < 0:
        raise ValueError(f"n (number of examples) must be >= 0, got {n}")
    if start_pos < 0:
        raise ValueError(f"start_pos must be >= 0, got {start_pos}")
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")


def _candidates(ranked: Sequence[T], start_pos: int, window: int) -> list[T]:
    """The items ICMA may choose from: ranks ``start_pos .. window-1`` of the list."""
    return list(ranked[start_pos:window])


def random_walk_code(ranked: Sequence[T], n: int, *, start_pos: int = 0, window: int = ICMA_WINDOW) -> list[T]:
    """Evenly spaced ranks, exactly as ICMA's ``bucket_sampling`` loop.

    ICMA walks ``j`` from ``start_pos`` and keeps rank ``j`` when
    ``(j - start_pos) % floor((10 - start_pos) / n) == 0`` until it has ``n``, i.e. ranks
    ``start_pos + m * step``. With ``n=2, start_pos=0`` that is ranks 0 and 5; ``n=4`` gives
    0, 2, 4, 6; ``n=4, start_pos=1`` gives 1, 3, 5, 7.

    The spacing uses the list's real length when it is shorter than ``window`` (small pools),
    so picks stay inside it. ICMA divides by zero when ``n`` exceeds the candidates
    (``window - start_pos``); here the step becomes 1 and every candidate is returned (fewer
    than ``n``).

    Args:
        ranked: retrieval results, best first (ids, tuples, anything).
        n: number of examples wanted.
        start_pos: first rank allowed; 1 skips the query itself when the list was retrieved
            from the query's own split (ICMA's training lists for cap2mol).
        window: only the top ``window`` items are candidates (ICMA: 10).

    Returns:
        The chosen items, best first.

    Raises:
        ValueError: negative ``n`` or ``start_pos``, or ``window < 1``.
    """
    _check(n, start_pos, window)
    limit = min(window, len(ranked))
    available = limit - start_pos
    if n == 0 or available <= 0:
        return []
    step = max(1, available // n)
    return [ranked[start_pos + m * step] for m in range(min(n, available))]


def random_walk_probabilistic(
    ranked: Sequence[T],
    n: int,
    *,
    start_pos: int = 0,
    p_take: float = 0.5,
    seed: int | None = None,
    window: int = ICMA_WINDOW,
) -> list[T]:
    """This project's probabilistic random walk (no source in ICMA's code; see the module
    docstring for where ``p_take=0.5`` comes from): take each candidate with probability
    ``p_take``, else skip it.

    The walk goes down ranks ``start_pos .. window-1`` and stops once it holds ``n`` items.
    If it reaches the end with fewer, the best-ranked candidates it skipped fill the gap, in
    rank order (deterministic; so the result always has ``min(n, candidates)`` items and
    ``p_take=1`` equals plain top-n).

    Args:
        ranked: retrieval results, best first.
        n: number of examples wanted.
        start_pos: first rank allowed (see :func:`random_walk_code`).
        p_take: probability of taking a candidate, in (0, 1].
        seed: seed of the walk's generator; the same seed gives the same choice. ``None``
            draws fresh entropy (not reproducible).
        window: only the top ``window`` items are candidates (ICMA: 10).

    Returns:
        The chosen items, best first.

    Raises:
        ValueError: ``p_take`` outside (0, 1], negative ``n`` or ``start_pos``, ``window < 1``.
    """
    _check(n, start_pos, window)
    if not 0.0 < p_take <= 1.0:
        raise ValueError(f"p_take must be in (0, 1], got {p_take}")
    candidates = _candidates(ranked, start_pos, window)
    if n == 0 or not candidates:
        return []
    rng = np.random.default_rng(seed)
    draws = rng.random(len(candidates))
    taken: list[int] = []
    for position, draw in enumerate(draws):
        if len(taken) == n:
            break
        if draw < p_take:
            taken.append(position)
    if len(taken) < n:
        chosen = set(taken)
        skipped = [p for p in range(len(candidates)) if p not in chosen]
        taken = sorted(taken + skipped[: n - len(taken)])
    return [candidates[p] for p in taken]
