"""The training loss, with the vocabulary projection computed only where a label is kept.

ICMT prompts are mostly in-context examples: with ``train_on_inputs`` off, about 4 of 5 tokens of a
2-shot ChEBI-20 row carry the label -100. Hugging Face's ``model(**batch).loss`` still projects every
position onto the 49k-token vocabulary (SmolLM2: a fifth of the forward matmuls) and runs the fp32
cross-entropy over all of them. Here the model is asked for the logits of the kept positions only
(``logits_to_keep`` as a boolean mask, a transformers >= 5 forward argument) and the mean
cross-entropy over them is the same number as Hugging Face's loss (shifted labels, mean over the
labels that are not -100).
"""
from __future__ import annotations

from typing import Any

from ray_icma.train.collate import IGNORE_INDEX

__all__ = ["causal_lm_loss"]


def causal_lm_loss(model: Any, batch: dict) -> Any:
    """Mean next-token cross-entropy over the positions whose next label is not -100.

    Args:
        model: a causal LM (or its DDP / DeepSpeed / peft wrapper) whose forward takes ``logits_to_keep``.
        batch: ``input_ids``, ``attention_mask``, ``labels`` (B, T), labels -100 where no loss is taken.
    """
    import torch

    labels = batch["labels"]
    # position p predicts token p + 1: its target is labels[:, p + 1] (the last position predicts nothing)
    targets = torch.nn.functional.pad(labels[:, 1:], (0, 1), value=IGNORE_INDEX)
    keep = targets != IGNORE_INDEX
    if not bool(keep.any()):
        raise ValueError("a training batch without any answer token: every label is -100")
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=keep)
    logits = out.logits.reshape(-1, out.logits.size(-1))  # (kept positions, vocab)
    return torch.nn.functional.cross_entropy(logits.float(), targets[keep])
