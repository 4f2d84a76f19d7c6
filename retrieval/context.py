"""Turn one query's retrieval list into the in-context examples of its prompt: the one path from
ranked ids to examples, used by training and generation rows (``ray_icma.prompts.build_icl_rows``),
``ray-icma contexts show`` and the Serve reranker, so the same query, seed and switches give the
same examples everywhere.

Seeding: with ``query_id`` the walk's seed is ``example_seed(seed, query_id)`` (a run seed gives
each query its own reproducible walk); without it ``seed`` is the walk's seed itself (Serve, where
each request carries its own seed).

Generic on purpose: an example is an (input, output) pair looked up by id, whatever the task
(molecule -> caption, caption -> molecule, molecule -> property). Prompt wording belongs to the
application, not here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Hashable, Mapping, Sequence

from retrieval.rerank import example_seed, select_examples

__all__ = ["ContextExample", "build_context", "choose_examples"]


@dataclass(frozen=True, slots=True)
class ContextExample:
    """One in-context example.

    Attributes:
        id: the pool item's id (e.g. a CID).
        input: what the example shows as the question (a SMILES for mol2cap).
        output: what it shows as the answer (a caption for mol2cap).
        score: the retriever's similarity to the query (higher is closer).
    """

    id: Hashable
    input: str
    output: str
    score: float


def choose_examples(
    ranked: Sequence[Any],
    n: int,
    *,
    query_id: Hashable | None = None,
    seed: int | None = 0,
    key=None,
    **select_kwargs: Any,
) -> list[Any]:
    """Which items of a best-first list become the ``n`` examples, in prompt order.

    Args:
        ranked: best-first items (ids, or ``(id, score)`` pairs with ``key`` picking the id).
        n: number of examples.
        query_id: the query's own id: never its own example (dropped from ``ranked``), and it
            keys the walk's seed (``example_seed(seed, query_id)``).
        seed: the run seed (with ``query_id``) or the walk's seed itself (without).
        key: maps an item to its id (default: the item itself).
        **select_kwargs: :func:`retrieval.rerank.select_examples` options (``strategy``,
            ``start_pos``, ``window``, ``p_take``, ``reverse``).
    """
    ident = key or (lambda item: item)
    if query_id is not None:
        ranked = [item for item in ranked if ident(item) != query_id]
        seed = example_seed(0 if seed is None else seed, query_id)
    return select_examples(list(ranked), n, seed=seed, **select_kwargs)


def build_context(
    ranked_ids: Sequence[Hashable],
    scores: Sequence[float],
    lookup: Mapping[Hashable, tuple[str, str]],
    n: int,
    *,
    query_id: Hashable | None = None,
    seed: int | None = 0,
    **select_kwargs: Any,
) -> list[ContextExample]:
    """Choose ``n`` examples from a best-first retrieval list and resolve them to text.

    Args:
        ranked_ids: neighbour ids, best first.
        scores: their similarity scores, same length.
        lookup: id -> (input, output) for every id that may appear (the retrieval pool).
        n: number of examples.
        query_id, seed: see :func:`choose_examples`.
        **select_kwargs: passed to :func:`retrieval.rerank.select_examples` (``strategy``,
            ``start_pos``, ``p_take``, ``reverse``, ``window``).

    Returns:
        The examples in prompt order (most similar last unless ``reverse=False``).

    Raises:
        ValueError: ``ranked_ids`` and ``scores`` differ in length, or bad selection options.
        KeyError: a chosen id is missing from ``lookup`` (the contexts file was built against
            a different pool).
    """
    if len(ranked_ids) != len(scores):
        raise ValueError(f"ranked_ids has {len(ranked_ids)} items but scores has {len(scores)}")
    chosen = choose_examples(list(zip(ranked_ids, scores)), n, query_id=query_id, seed=seed, key=lambda item: item[0], **select_kwargs)
    examples = []
    for item_id, score in chosen:
        try:
            example_input, example_output = lookup[item_id]
        except KeyError:
            raise KeyError(
                f"example id {item_id!r} is not in the pool lookup; was the contexts file built "
                "against another pool? Rebuild it with `ray-icma contexts build`."
            ) from None
        examples.append(ContextExample(item_id, example_input, example_output, float(score)))
    return examples
