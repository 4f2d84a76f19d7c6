"""Turn records + retrieved contexts into in-context rows (what training and generation consume).

Examples are chosen by :func:`retrieval.context.build_context`, the same function ``ray-icma
contexts show`` and the Serve reranker use, with the same seeding (``example_seed(seed, query id)``).

ICMA's selection window (``window="icma"``): ICMA's released code walks ranks ``start_pos .. 9`` of
a top-10 list. Its cap2mol training lists hold the query itself at rank 0 and it uses
``start_pos=1``, so the walk sees the 9 other candidates; its mol2cap lists do not hold the
query and it uses ``start_pos=0`` over 10 candidates. Contexts files made here never hold the
query, so ICMA's windows are: cap2mol, query in the pool (training rows) -> the top 9 others;
otherwise the top 10. The default window (10 for every row) is this project's: one candidate
wider for cap2mol training rows.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from ray_icma.data.records import MoleculeRecord
from ray_icma.prompts.icl_prompt import build_prompt
from ray_icma.prompts.templates import TASKS

__all__ = ["ICMA_SELECTION_WINDOW", "build_icl_rows", "record_io", "selection_window"]

#: ``window`` value that reproduces ICMA's per-task windows (see the module docstring).
ICMA_SELECTION_WINDOW = "icma"

log = logging.getLogger(__name__)


def record_io(task: str, record: MoleculeRecord) -> tuple[str, str]:
    """``(input, output)`` of a record for a task: (SMILES, caption) for mol2cap, reversed for cap2mol."""
    if task == "mol2cap":
        return record.smiles, record.text
    if task == "cap2mol":
        return record.text, record.smiles
    raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")


def selection_window(window: int | str, task: str, query_in_pool: bool) -> int:
    """The candidate window of one row: an int as given, or ICMA's (9 for cap2mol rows whose
    query is in the pool, where ICMA's list held the query at rank 0 and it walked from
    ``start_pos=1``; 10 otherwise).

    Raises:
        ValueError: a window that is neither an int >= 1 nor ``"icma"``.
    """
    from retrieval.rerank import ICMA_WINDOW

    if window == ICMA_SELECTION_WINDOW:
        return ICMA_WINDOW - 1 if task == "cap2mol" and query_in_pool else ICMA_WINDOW
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"window must be an integer >= 1 or {ICMA_SELECTION_WINDOW!r}, got {window!r}")
    return window


def _neighbors(contexts: Any, cid: str) -> list[str] | None:
    """Neighbor ids (best first) of ``cid`` in a ContextTable-like mapping, or None when absent."""
    try:
        entry = contexts[cid]
    except KeyError:
        return None
    ids = entry[0] if isinstance(entry, tuple) else getattr(entry, "neighbors", entry)
    return [str(i) for i in ids]


class _IOLookup(Mapping):
    """cid -> (input, output) of a pool record for a task, without building a second dict."""

    def __init__(self, task: str, by_cid: Mapping[str, MoleculeRecord]):
        self._task, self._by_cid = task, by_cid

    def __getitem__(self, cid: str) -> tuple[str, str]:
        return record_io(self._task, self._by_cid[cid])

    def __iter__(self):
        return iter(self._by_cid)

    def __len__(self) -> int:
        return len(self._by_cid)


def build_icl_rows(
    queries: Sequence[MoleculeRecord],
    pool: Sequence[MoleculeRecord],
    contexts: Mapping | None,
    task: str,
    n_shot: int,
    *,
    strategy: str = "code",
    start_pos: int = 0,
    seed: int = 0,
    reverse: bool = True,
    window: int | str = 10,
    p_take: float = 0.5,
) -> list[dict]:
    """One row per query: the query, its answer, its in-context examples and the full prompt.

    Args:
        queries: the records to build prompts for (training rows or test queries).
        pool: the records examples are drawn from (looked up by ``cid``).
        contexts: a ``ContextTable`` (query_id -> (neighbor ids best first, scores), ``.task``),
            or None for zero-shot rows.
        task: ``"mol2cap"`` or ``"cap2mol"``.
        n_shot: examples per prompt; 0 gives zero-shot rows.
        strategy, start_pos: passed to ``retrieval.rerank.select_examples``. ``start_pos``
            counts positions after the query's own id has been removed from its neighbor list
            (so ICMA's ``start_pos=1``, which skips the query itself on the training split, is
            ``start_pos=0`` here).
        seed: run seed; each query's walk uses ``example_seed(seed, cid)``, reproducible anywhere.
        reverse: Sequence Reversal (ICMA's default ``True``: most similar example last, next to
            the query); ``False`` keeps them best first.
        window: candidates the walk chooses among (top ``window`` after the query's own id is
            removed); ``"icma"`` gives ICMA's per-task windows (module docstring).
        p_take: take probability of the ``probabilistic`` strategy.

    Returns:
        Dicts with keys ``id, task, input, reference, examples, prompt``; ``examples`` is a list of
        ``[input, output]`` in prompt order. Prompts are not cut to a token budget here (the
        training collate and generation call ``fit_prompt``).

    Raises:
        ValueError: unknown task, negative ``n_shot``, or contexts built for the other task.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if n_shot < 0:
        raise ValueError(f"n_shot must be >= 0, got {n_shot}")
    ctx_task = getattr(contexts, "task", None)
    if contexts is not None and ctx_task not in (None, task):
        raise ValueError(f"contexts were retrieved for task {ctx_task!r} but rows are for {task!r}; use the {task} contexts file")
    use_examples = contexts is not None and n_shot > 0
    if use_examples:
        from retrieval.context import build_context
    selection_window(window, task, False)  # a bad window fails even for zero-shot rows

    by_cid = {r.cid: r for r in pool}
    missing_query, missing_pool, short = 0, 0, 0
    rows = []
    for query in queries:
        examples: list[list[str]] = []
        if use_examples:
            ranked = _neighbors(contexts, query.cid)
            if ranked is None:
                missing_query += 1
                ranked = []
            known = [c for c in ranked if c != query.cid and c in by_cid]
            missing_pool += sum(1 for c in ranked if c != query.cid and c not in by_cid)
            chosen = build_context(
                known, [0.0] * len(known), _IOLookup(task, by_cid), n_shot, query_id=query.cid, seed=seed, strategy=strategy,
                start_pos=start_pos, reverse=reverse, p_take=p_take, window=selection_window(window, task, query.cid in by_cid),
            )
            examples = [[e.input, e.output] for e in chosen]
            short += len(examples) < n_shot
        inp, ref = record_io(task, query)
        rows.append(
            {
                "id": query.cid,
                "task": task,
                "input": inp,
                "reference": ref,
                "examples": examples,
                "prompt": build_prompt(task, inp, [tuple(e) for e in examples]),
            }
        )
    if missing_query:
        log.warning("%d of %d queries have no retrieved contexts; their prompts have no examples", missing_query, len(queries))
    if missing_pool:
        log.warning("%d neighbor ids are not in the pool and were skipped", missing_pool)
    if short:
        log.warning("%d of %d rows got fewer than %d examples", short, len(queries), n_shot)
    return rows
