"""Turn records + retrieved contexts into in-context rows (what training and generation consume)."""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from ray_icma.data.records import MoleculeRecord
from ray_icma.prompts.icl_prompt import build_prompt
from ray_icma.prompts.templates import TASKS

__all__ = ["build_icl_rows", "record_io"]

log = logging.getLogger(__name__)


def record_io(task: str, record: MoleculeRecord) -> tuple[str, str]:
    """``(input, output)`` of a record for a task: (SMILES, caption) for mol2cap, reversed for cap2mol."""
    if task == "mol2cap":
        return record.smiles, record.text
    if task == "cap2mol":
        return record.text, record.smiles
    raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")


def _neighbors(contexts: Any, cid: str) -> list[str] | None:
    """Neighbor ids (best first) of ``cid`` in a ContextTable-like mapping, or None when absent."""
    try:
        entry = contexts[cid]
    except KeyError:
        return None
    ids = entry[0] if isinstance(entry, tuple) else getattr(entry, "neighbors", entry)
    return [str(i) for i in ids]


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
        from retrieval.rerank import example_seed, select_examples

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
            chosen = select_examples(known, n_shot, strategy=strategy, start_pos=start_pos, seed=example_seed(seed, query.cid), reverse=True)
            examples = [list(record_io(task, by_cid[c])) for c in chosen]
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
