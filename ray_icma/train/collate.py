"""Tokenize in-context rows into training tensors once; batch them by length; the loss sees only the answer tokens."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ray_icma.prompts import build_target, fit_prompt

__all__ = ["IGNORE_INDEX", "PackedRows", "tokenize_row", "tokenize_rows", "pad_batch", "global_batches", "rank_micro_batch"]

IGNORE_INDEX = -100  # torch cross-entropy skips these labels


def tokenize_row(
    tokenizer: Any,
    task: str,
    query: str,
    examples: Sequence[tuple[str, str]],
    reference: str,
    cutoff_len: int,
) -> tuple[list[int], list[int]]:
    """``(input_ids, labels)`` for one row: prompt tokens are masked with -100, the answer + EOS kept.

    The prompt and the target are tokenized separately and concatenated, so the mask boundary
    is exact and the prompt tokens are the ones the model sees at generation time. Examples are
    dropped (farthest first) to leave room for the whole answer; an answer longer than half the
    budget is itself cut at its end (the only case where the answer loses tokens).
    """
    target_ids = list(tokenizer(build_target(task, reference), add_special_tokens=False)["input_ids"])
    target_ids.append(tokenizer.eos_token_id)
    reserve = min(len(target_ids), cutoff_len // 2)
    prompt, _ = fit_prompt(tokenizer, task, query, examples, cutoff_len=cutoff_len, answer_reserve=reserve)
    prompt_ids = list(tokenizer(prompt, add_special_tokens=True)["input_ids"])
    target_ids = target_ids[: cutoff_len - len(prompt_ids)]
    return prompt_ids + target_ids, [IGNORE_INDEX] * len(prompt_ids) + target_ids


def pad_batch(pairs: Sequence[tuple[list[int], list[int]]], pad_id: int) -> dict:
    """Right-pad ``(input_ids, labels)`` pairs into ``input_ids``, ``attention_mask``, ``labels`` tensors."""
    import torch

    width = max(len(ids) for ids, _ in pairs)
    input_ids = torch.full((len(pairs), width), pad_id, dtype=torch.long)
    labels = torch.full((len(pairs), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(pairs), width), dtype=torch.long)
    for i, (ids, labs) in enumerate(pairs):
        input_ids[i, : len(ids)] = torch.tensor(ids)  # a list, or a PackedRows view (read-only int32: copied)
        labels[i, : len(labs)] = torch.tensor(labs)
        mask[i, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def _examples(cell: Any) -> list[tuple[str, str]]:
    if cell is None:
        return []
    return [(str(pair[0]), str(pair[1])) for pair in cell]


def tokenize_rows(tokenizer: Any, rows: Sequence[dict], cutoff_len: int, *, train_on_inputs: bool = False) -> list[dict]:
    """Tokenize in-context rows once (before training): ``{"input_ids", "labels"}`` per row.

    Rows are ``build_icl_rows`` dicts (``task``, ``input``, ``examples``, ``reference``). With
    ``train_on_inputs`` (ICMA's switch) the labels cover the prompt tokens too.
    """
    out = []
    for row in rows:
        ids, labels = tokenize_row(tokenizer, str(row["task"]), str(row["input"]), _examples(row.get("examples")),
                                   str(row["reference"]), cutoff_len)
        out.append({"input_ids": ids, "labels": list(ids) if train_on_inputs else labels})
    return out


def global_batches(lengths: Sequence[int], batch_rows: int, *, seed: int, epoch: int, bucket: bool = True,
                   window: int = 16) -> list[list[int]]:
    """One epoch's global batches (row indices), ``batch_rows`` each, the incomplete last one dropped.

    A seeded shuffle of all rows (seed + epoch); with ``bucket`` each window of ``window``
    batches' worth of rows is sorted by length before it is cut into batches, and the batch
    order is shuffled again, so every batch holds rows of similar length (little padding) and
    still comes from anywhere in the data set. Every worker computes the same list.
    """
    import random

    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    n_batches = len(order) // batch_rows
    order = order[: n_batches * batch_rows]
    if bucket:
        span = batch_rows * window
        order = [i for s in range(0, len(order), span) for i in sorted(order[s : s + span], key=lambda j: -lengths[j])]
    batches = [order[b * batch_rows : (b + 1) * batch_rows] for b in range(n_batches)]
    if bucket:
        rng.shuffle(batches)
    return batches


def rank_micro_batch(rows: Sequence[dict] | PackedRows, batch: Sequence[int], rank: int, world_size: int, pad_id: int) -> dict:
    """This rank's slice (``rank::world_size``) of a global batch, right-padded to its own longest row."""
    return pad_batch([(rows[i]["input_ids"], rows[i]["labels"]) for i in batch[rank::world_size]], pad_id)


class PackedRows:
    """Tokenized rows as three flat numpy arrays (``input_ids``, ``labels`` int32, ``offsets`` int64): what the
    driver puts in Ray's object store once and every training worker reads without a copy (workers on one
    node share it). ``rows[i]`` is ``{"input_ids", "labels"}`` of row ``i`` (array views)."""

    def __init__(self, arrays: dict) -> None:
        self.arrays = arrays
        self._ids, self._labels, self._offsets = arrays["input_ids"], arrays["labels"], arrays["offsets"]

    @classmethod
    def pack(cls, rows: Sequence[dict]) -> PackedRows:
        import numpy as np

        lengths = [len(r["input_ids"]) for r in rows]
        if any(len(r["labels"]) != n for r, n in zip(rows, lengths)):
            raise ValueError("a tokenized row whose labels and input_ids differ in length")
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        ids = np.fromiter((t for r in rows for t in r["input_ids"]), dtype=np.int32, count=int(offsets[-1]))
        labels = np.fromiter((t for r in rows for t in r["labels"]), dtype=np.int32, count=int(offsets[-1]))
        return cls({"input_ids": ids, "labels": labels, "offsets": offsets})

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, i: int) -> dict:
        a, b = int(self._offsets[i]), int(self._offsets[i + 1])
        return {"input_ids": self._ids[a:b], "labels": self._labels[a:b]}

    def lengths(self) -> list[int]:
        import numpy as np

        return np.diff(self._offsets).tolist()
