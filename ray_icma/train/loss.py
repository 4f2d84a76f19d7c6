"""The training loss, with the vocabulary projection computed only where a label is kept.

ICMT prompts are mostly in-context examples: with ``train_on_inputs`` off, about 4 of 5 tokens of a
2-shot ChEBI-20 row carry the label -100. Hugging Face's ``model(**batch).loss`` still projects every
position onto the 49k-token vocabulary (SmolLM2: a fifth of the forward matmuls) and runs the fp32
cross-entropy over all of them. Here the model is asked for the logits of the kept positions only
(``logits_to_keep`` as a boolean mask, a transformers >= 5 forward argument) and the mean
cross-entropy over them is the same number as Hugging Face's loss (shifted labels, mean over the
labels that are not -100).

Older transformers (5.17, as on the GPU image seen 2026-12-04) slice ``hidden_states[:, logits_to_keep, :]``,
which takes a 1-D index but not a (B, T) mask: there the loss asks for the columns where any row keeps
a label (a 1-D index) and ignores the rest; the first forward finds out which form the model takes.
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
    if _MASK_FORM.get(type(model), True):
        try:
            out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=keep)
        except IndexError:  # this transformers indexes logits_to_keep as columns: ask for columns below
            _MASK_FORM[type(model)] = False
        else:
            _MASK_FORM[type(model)] = True
            logits = out.logits.reshape(-1, out.logits.size(-1))  # (kept positions, vocab)
            return torch.nn.functional.cross_entropy(logits.float(), targets[keep])
    columns = keep.any(dim=0).nonzero().squeeze(1)  # positions where any row has a label
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=columns)
    logits = out.logits.reshape(-1, out.logits.size(-1))  # (B * kept columns, vocab)
    return torch.nn.functional.cross_entropy(logits.float(), targets[:, columns].reshape(-1), ignore_index=IGNORE_INDEX)


#: per model class: whether its forward takes ``logits_to_keep`` as a (B, T) mask (absent: not tried yet)
_MASK_FORM: dict[type, bool] = {}
