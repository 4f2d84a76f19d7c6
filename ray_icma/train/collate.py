"""Tokenize in-context rows into training tensors; the loss sees only the answer tokens."""
from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from ray_icma.prompts import build_target, fit_prompt

__all__ = ["IGNORE_INDEX", "tokenize_row", "pad_batch", "ICLCollate", "make_collate_fn"]

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
        input_ids[i, : len(ids)] = torch.tensor(ids)
        labels[i, : len(labs)] = torch.tensor(labs)
        mask[i, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def _examples(cell: Any) -> list[tuple[str, str]]:
    if cell is None:
        return []
    return [(str(pair[0]), str(pair[1])) for pair in cell]


class ICLCollate:
    """A Ray Data collate function: takes this rank's rows (``rank::world_size``) of a global batch.

    Every worker reads the same globally ordered batch and keeps its own slice, like torch's
    DistributedSampler; this keeps the data order independent of Ray Data's block scheduling,
    so a seeded run and a resumed run see exactly the same rows.
    """

    def __init__(self, tokenizer: Any, cutoff_len: int, rank: int = 0, world_size: int = 1):
        self.tokenizer, self.cutoff_len, self.rank, self.world_size = tokenizer, cutoff_len, rank, world_size

    def __call__(self, batch: dict) -> dict:
        n = len(batch["prompt"])
        pairs = [
            tokenize_row(
                self.tokenizer,
                str(batch["task"][i]),
                str(batch["input"][i]),
                _examples(batch["examples"][i]),
                str(batch["reference"][i]),
                self.cutoff_len,
            )
            for i in range(self.rank, n, self.world_size)
        ]
        return pad_batch(pairs, self.tokenizer.pad_token_id)


@functools.lru_cache(maxsize=None)
def _ray_collate_cls() -> type:
    """ICLCollate marked as a numpy-batch collate for Ray Data (plain callables are deprecated)."""
    try:
        from ray.data.collate_fn import NumpyBatchCollateFn
    except ImportError:  # Ray < 2.47 takes plain callables
        return ICLCollate
    return type("RayICLCollate", (ICLCollate, NumpyBatchCollateFn), {})


def make_collate_fn(tokenizer: Any, cutoff_len: int, rank: int = 0, world_size: int = 1) -> ICLCollate:
    """The ``collate_fn`` for ``iter_torch_batches`` (see :class:`ICLCollate`); imports Ray lazily."""
    return _ray_collate_cls()(tokenizer, cutoff_len, rank, world_size)
