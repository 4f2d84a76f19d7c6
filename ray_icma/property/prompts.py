"""ICMA's property prompts: neighbours with their Yes/No answers (most similar last), then the query.

One prompt per (molecule, label), exactly the text of the official ICMA code
(``utils.retrieve_<set>_prompts`` + ``dataset.py``)::

    Predict whether the molecule: <neighbour 2> inhibits HIV replication
    Prediction:No

    Predict whether the molecule: <neighbour 1, the most similar> inhibits HIV replication
    Prediction:Yes

    Based on the above examples, analyse the similarities and differences between the examples and
    finally predict whether the molecule: <query> inhibits HIV replication
    Prediction:Yes                                      <- the answer the model learns / is scored on

Each label is a task ``property/<set>/<label column>`` with a `TaskTemplate`, so the caption
tasks' prompt builder, token-budget fitting and training collate handle it unchanged
(``ray_icma.prompts`` resolves these names through :func:`property_template`). The answer prefix is
``"Prediction:"`` and the answer ``"Yes"`` / ``"No"``.

Examples for a label are the query's nearest training neighbours that have that label measured
(ICMA skips neighbours whose cell is empty), the first ``n_shot`` in similarity order.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache

from ray_icma.prompts.templates import TaskTemplate
from ray_icma.property.datasets import PropertySet, get_set
from ray_icma.property.records import PropertyRecord

__all__ = ["ANSWERS", "ANSWER_PREFIX", "TASK_PREFIX", "property_task", "parse_property_task", "property_template", "build_property_rows"]

ANSWERS = ("No", "Yes")  # index = label value
ANSWER_PREFIX = "Prediction:"
TASK_PREFIX = "property/"
_QUERY_LEAD = "Based on the above examples, analyse the similarities and differences between the examples and finally predict whether "


def property_task(dataset: str, label: str) -> str:
    """Task name of one label, e.g. ``property/tox21/NR-AR``."""
    spec = get_set(dataset)
    spec.label_index(label)
    return f"{TASK_PREFIX}{spec.name}/{label}"


def parse_property_task(task: str) -> tuple[PropertySet, int]:
    """``property/<set>/<label>`` -> (set spec, label index); ValueError for anything else."""
    if not task.startswith(TASK_PREFIX):
        raise ValueError(f"{task!r} is not a property task (property/<set>/<label>)")
    name, _, label = task[len(TASK_PREFIX):].partition("/")
    spec = get_set(name)
    return spec, spec.label_index(label)


@lru_cache(maxsize=None)
def property_template(task: str) -> TaskTemplate:
    """The prompt template of a property task (what ``ray_icma.prompts`` uses for it)."""
    spec, index = parse_property_task(task)
    question = spec.questions[index]
    # `{input}`/`{output}` survive this first format for TaskTemplate's own .format(...)
    example = question.example_text("{input}")
    return TaskTemplate(
        example=example + "\n" + ANSWER_PREFIX + "{output}\n\n",
        query=_QUERY_LEAD + question.query_text("{input}") + "\n",
        zero_shot=example + "\n",
        answer_prefix=ANSWER_PREFIX,
    )


def build_property_rows(
    queries: Sequence[PropertyRecord],
    pool: Mapping[str, PropertyRecord],
    neighbours: Mapping[str, Sequence[str]],
    dataset: str | PropertySet,
    n_shot: int,
    *,
    labels: Sequence[int] | None = None,
    known_only: bool = True,
) -> list[dict]:
    """In-context rows (the shape ``ray_icma.prompts.build_icl_rows`` makes) for every (query, label).

    Args:
        queries: molecules to build prompts for.
        pool: training records by id (the only place examples come from).
        neighbours: query id -> pool ids, most similar first (the query itself never in it).
        dataset: the set.
        n_shot: examples per prompt (0: zero-shot).
        labels: label indices to ask about (default: all).
        known_only: skip (query, label) pairs whose label is unknown (training and evaluation);
            False for prediction, where the query has no labels.

    Returns:
        Dicts with ``id`` (``<query id>|<label column>``), ``task``, ``input`` (SMILES), ``reference``
        (Yes/No, "" when unknown), ``examples`` ([SMILES, Yes/No] in prompt order), ``prompt``, plus
        ``query_id``, ``label``, ``y`` (1/0/None) and ``knn`` (share of Yes among the examples: the
        k-NN vote of the very same neighbours; None without examples).
    """
    from ray_icma.prompts import build_prompt

    spec = dataset if isinstance(dataset, PropertySet) else get_set(dataset)
    if n_shot < 0:
        raise ValueError(f"n_shot must be >= 0, got {n_shot}")
    wanted = range(spec.n_labels) if labels is None else labels
    rows = []
    for query in queries:
        ranked = [pool[n] for n in neighbours.get(query.id, ()) if n in pool and n != query.id]
        for index in wanted:
            y = query.labels[index] if query.labels else None
            if known_only and y is None:
                continue
            chosen = [r for r in ranked if r.labels[index] is not None][:n_shot]
            examples = [[r.smiles, ANSWERS[r.labels[index]]] for r in reversed(chosen)]  # most similar last
            task = f"{TASK_PREFIX}{spec.name}/{spec.labels[index]}"
            rows.append(
                {
                    "id": f"{query.id}|{spec.labels[index]}",
                    "task": task,
                    "input": query.smiles,
                    "reference": ANSWERS[y] if y is not None else "",
                    "examples": examples,
                    "prompt": build_prompt(task, query.smiles, [tuple(e) for e in examples]),
                    "query_id": query.id,
                    "label": spec.labels[index],
                    "y": y,
                    "knn": (sum(r.labels[index] for r in chosen) / len(chosen)) if chosen else None,
                }
            )
    return rows
