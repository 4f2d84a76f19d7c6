"""One entry point for post-retrieval re-ranking: choose ``n`` examples, then order them for
the prompt. Everything that builds an ICMA prompt goes through :func:`select_examples`."""
from __future__ import annotations

import hashlib
from typing import Sequence, TypeVar

from retrieval.rerank.random_walk import ICMA_WINDOW, random_walk_code, random_walk_probabilistic
from retrieval.rerank.reversal import sequence_reversal

T = TypeVar("T")

#: strategy name -> what it does (shown in errors and CLI help).
STRATEGIES: dict[str, str] = {
    "code": "evenly spaced ranks start_pos + m*floor((10-start_pos)/n), ICMA's bucket_sampling (default)",
    "probabilistic": "this project's random walk (not in ICMA's code): take each candidate with probability p_take (seeded)",
    "top": "the n best from start_pos on, ICMA's behaviour without bucket_sampling",
}


def select_examples(
    ranked: Sequence[T],
    n: int,
    *,
    strategy: str = "code",
    start_pos: int = 0,
    p_take: float = 0.5,
    seed: int | None = None,
    reverse: bool = True,
    window: int = ICMA_WINDOW,
) -> list[T]:
    """Choose ``n`` in-context examples from a best-first retrieval list, in prompt order.

    Args:
        ranked: retrieval results, best first (ids, (id, score) pairs, records...).
        n: number of examples (ICMA's models: 2 for mol2cap, 4 for cap2mol). 0 gives ``[]``.
        strategy: ``"code"``, ``"probabilistic"`` or ``"top"`` (see :data:`STRATEGIES`).
        start_pos: first usable rank; 1 when the list contains the query itself at rank 0
            (ICMA's own training lists). Lists made by ``ray-icma contexts`` never contain the
            query, so 0 is right for them.
        p_take: take probability of the ``"probabilistic"`` walk; ignored otherwise.
        seed: seed of the ``"probabilistic"`` walk; ignored otherwise. Use
            :func:`example_seed` to get a different but reproducible walk per query.
        reverse: Sequence Reversal; ``True`` puts the most similar example last, next to the
            query (ICMA's default), ``False`` keeps best first.
        window: only the top ``window`` items are candidates (ICMA: 10).

    Returns:
        At most ``n`` items of ``ranked`` (fewer when the list is short), in prompt order.

    Raises:
        ValueError: unknown strategy (the message lists the choices) or bad ``n``/``start_pos``/
            ``p_take``/``window``.
    """
    if strategy == "code":
        chosen = random_walk_code(ranked, n, start_pos=start_pos, window=window)
    elif strategy == "probabilistic":
        chosen = random_walk_probabilistic(ranked, n, start_pos=start_pos, p_take=p_take, seed=seed, window=window)
    elif strategy == "top":
        if n < 0 or start_pos < 0:
            raise ValueError(f"n and start_pos must be >= 0, got n={n}, start_pos={start_pos}")
        chosen = list(ranked[start_pos:min(window, start_pos + n)])
    else:
        choices = ", ".join(f"{name!r} ({what})" for name, what in STRATEGIES.items())
        raise ValueError(f"unknown example-selection strategy {strategy!r}; choose one of: {choices}")
    return sequence_reversal(chosen) if reverse else chosen


def example_seed(seed: int, key: str | int) -> int:
    """A per-query seed derived from a run seed and the query id.

    Stable across processes and Python versions (``hash()`` is salted per process), so a Ray
    worker and a local run draw the same walk for the same query.

    Args:
        seed: the run's seed.
        key: the query id (e.g. its CID).

    Returns:
        A 63-bit non-negative int for :func:`numpy.random.default_rng`.
    """
    digest = hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1
