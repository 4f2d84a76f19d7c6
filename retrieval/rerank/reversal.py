"""Sequence Reversal: ICMA lists its examples least similar first, so the most similar one
stands last, right before the query (the paper finds LLMs attend most to the nearest text)."""
from __future__ import annotations

from typing import Sequence, TypeVar

T = TypeVar("T")


def sequence_reversal(selected: Sequence[T]) -> list[T]:
    """Turn best-first examples into prompt order (best last).

    ICMA's ``retrieve_m2c_prompts(..., reverse=True)`` prepends each example in turn, which is
    exactly a reversal of the rank-ordered list.

    Args:
        selected: chosen examples, best first.

    Returns:
        A new list, best last.
    """
    return list(reversed(selected))
