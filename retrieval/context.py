"""Turn one query's retrieval list into the in-context examples of its prompt.

Generic on purpose: an example is an (input, output) pair looked up by id, whatever the task
(molecule -> caption, caption -> molecule, molecule -> property). Prompt wording belongs to the
application, not here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Hashable, Mapping, Sequence

from retrieval.rerank import select_examples

__all__ = ["ContextExample", "build_context"]


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


def build_context(
    ranked_ids: Sequence[Hashable],
    scores: Sequence[float],
    lookup: Mapping[Hashable, tuple[str, str]],
    n: int,
    **select_kwargs: Any,
) -> list[ContextExample]:
    """Choose ``n`` examples from a best-first retrieval list and resolve them to text.

    Args:
        ranked_ids: neighbour ids, best first.
        scores: their similarity scores, same length.
        lookup: id -> (input, output) for every id that may appear (the retrieval pool).
        n: number of examples.
        **select_kwargs: passed to :func:`retrieval.rerank.select_examples` (``strategy``,
            ``start_pos``, ``p_take``, ``seed``, ``reverse``, ``window``).

    Returns:
        The examples in prompt order (most similar last unless ``reverse=False``).

    Raises:
        ValueError: ``ranked_ids`` and ``scores`` differ in length, or bad selection options.
        KeyError: a chosen id is missing from ``lookup`` (the contexts file was built against
            a different pool).
    """
    if len(ranked_ids) != len(scores):
        raise ValueError(f"ranked_ids has {len(ranked_ids)} items but scores has {len(scores)}")
    chosen = select_examples(list(zip(ranked_ids, scores)), n, **select_kwargs)
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
