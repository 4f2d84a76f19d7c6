"""Yes/No scoring: P(Yes) = softmax over the "Yes" and "No" logits at the answer position.

This is ICMA's ``inference.py`` rule for MoleculeNet (the two answer tokens' logits, softmaxed,
at the first generated position), without sampling. The model reads the prompt followed by the
answer prefix ``"Prediction:"`` tokenized exactly as in training (prompt and target tokenized
separately, then joined), and the next-token logits decide. Batches are right-padded and each
row's logits are taken at its own last real token, so padding never changes a score.

:class:`YesNoScorer` scores in-process; :func:`score_rows` runs it on a Ray Data actor pool.
"""
from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ray_icma.property.prompts import ANSWER_PREFIX, ANSWERS

__all__ = ["YesNoScorer", "answer_token_ids", "score_rows"]

log = logging.getLogger(__name__)


def answer_token_ids(tokenizer: Any) -> tuple[list[int], int, int]:
    """``(prefix ids, Yes id, No id)``: the answer prefix's tokens and the one token of each answer.

    Raises:
        ValueError: the tokenizer splits "Prediction:Yes" so that the answer is not one token after
            the prefix tokens (scoring needs a single answer position).
    """
    prefix = list(tokenizer(ANSWER_PREFIX, add_special_tokens=False)["input_ids"])
    ids = []
    for answer in (ANSWERS[1], ANSWERS[0]):
        full = list(tokenizer(ANSWER_PREFIX + answer, add_special_tokens=False)["input_ids"])
        if full[: len(prefix)] != prefix or len(full) != len(prefix) + 1:
            raise ValueError(
                f"this tokenizer makes {full} of {ANSWER_PREFIX + answer!r} (prefix {prefix}); Yes/No scoring needs the answer "
                "to be exactly one token after the prefix tokens"
            )
        ids.append(full[-1])
    if ids[0] == ids[1]:
        raise ValueError("Yes and No map to the same token")
    return prefix, ids[0], ids[1]


class YesNoScorer:
    """Scores in-context property rows with a causal LM (base model or base + LoRA adapter).

    Args:
        model: a loaded causal LM, or a model spec for ``ray_icma.models.load_causal_lm``.
        tokenizer: its tokenizer (required when ``model`` is an object).
        adapter: LoRA adapter dir (merged into the weights) when ``model`` is a spec.
        cutoff_len: token budget of prompt + answer; farthest examples are dropped first.
        batch_size: prompts per forward pass (rows are length-sorted first, then restored).
        precision: ``fp32`` or ``bf16`` (CPU/GPU autocast; weights stay fp32).
        device: ``cpu`` or ``cuda``; default: cuda when available.
    """

    def __init__(self, model: Any, tokenizer: Any = None, *, adapter: str | None = None, cutoff_len: int = 1024,
                 batch_size: int = 8, precision: str = "fp32", device: str | None = None, num_threads: int = 0) -> None:
        import torch

        if num_threads > 0:
            torch.set_num_threads(num_threads)
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be fp32 or bf16, got {precision!r}")
        if isinstance(model, str):
            if adapter:
                from ray_icma.models import load_with_adapter

                model, tokenizer = load_with_adapter(adapter, model, merge=True, torch_dtype="float32")
            else:
                from ray_icma.models import load_causal_lm

                model, tokenizer = load_causal_lm(model, torch_dtype="float32")
        if tokenizer is None:
            raise ValueError("pass the tokenizer with a model object")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.cutoff_len, self.batch_size, self.precision = int(cutoff_len), int(batch_size), precision
        self.prefix_ids, self.yes_id, self.no_id = answer_token_ids(tokenizer)

    def encode(self, task: str, query: str, examples: Sequence[Sequence[str]]) -> tuple[list[int], int]:
        """Token ids the model reads (prompt fitted to the budget + answer prefix), and examples kept."""
        from ray_icma.prompts import fit_prompt

        prompt, kept = fit_prompt(self.tokenizer, task, query, [tuple(e) for e in examples], cutoff_len=self.cutoff_len,
                                  answer_reserve=len(self.prefix_ids) + 2)
        return list(self.tokenizer(prompt, add_special_tokens=True)["input_ids"]) + self.prefix_ids, kept

    def _autocast(self):
        import torch

        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def score_ids(self, sequences: Sequence[list[int]]) -> np.ndarray:
        """P(Yes) for each token sequence (already ending in the answer prefix)."""
        import torch

        out = np.zeros(len(sequences), dtype=np.float64)
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            width = max(len(sequences[i]) for i in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, i in enumerate(chunk):
                ids[row, : len(sequences[i])] = torch.tensor(sequences[i])
                mask[row, : len(sequences[i])] = 1
            last = mask.sum(dim=1) - 1
            with torch.inference_mode(), self._autocast():
                logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
            at = logits[torch.arange(len(chunk)), last.to(self.device)].float()
            pair = torch.stack([at[:, self.yes_id], at[:, self.no_id]], dim=1).softmax(dim=1)[:, 0]
            out[chunk] = pair.cpu().numpy()
        return out

    def score(self, rows: Sequence[dict]) -> tuple[np.ndarray, list[int]]:
        """P(Yes) and examples kept for in-context rows (``task``, ``input``, ``examples``)."""
        encoded = [self.encode(str(r["task"]), str(r["input"]), r.get("examples") or []) for r in rows]
        return self.score_ids([e[0] for e in encoded]), [e[1] for e in encoded]


class _ScoreBatches:
    """Ray Data callable class: one scorer (model copy) per actor."""

    def __init__(self, model: str, adapter: str | None, cutoff_len: int, batch_size: int, precision: str, num_threads: int) -> None:
        self.scorer = YesNoScorer(model, adapter=adapter, cutoff_len=cutoff_len, batch_size=batch_size, precision=precision,
                                  num_threads=num_threads)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import json

        rows = [{"task": t, "input": q, "examples": json.loads(e)} for t, q, e in zip(batch["task"], batch["input"], batch["examples_json"])]
        probs, kept = self.scorer.score(rows)
        return {"_order": batch["_order"], "p_yes": probs, "n_examples": np.array(kept, dtype=np.int64)}


def score_rows(
    rows: Sequence[dict],
    *,
    model: str,
    adapter: str | None = None,
    cutoff_len: int = 1024,
    batch_size: int = 8,
    concurrency: int = 1,
    num_cpus_per_actor: float = 1,
    num_gpus_per_actor: float = 0,
    precision: str = "fp32",
) -> tuple[np.ndarray, dict]:
    """P(Yes) for every row, computed by a Ray Data actor pool of :class:`YesNoScorer`s.

    Args:
        rows: in-context rows (``build_property_rows``).
        model: model spec (``smollm2-135m``, ``tiny-random-llama``, a dir or Hub id).
        adapter: LoRA adapter dir, or None for the base model.
        cutoff_len, batch_size, precision: see :class:`YesNoScorer`.
        concurrency: actors (one model copy each).
        num_cpus_per_actor, num_gpus_per_actor: resources per actor (CPUs = torch threads).

    Returns:
        ``(p_yes float array in row order, meta)``; meta has rows, seconds and rows/s.
    """
    import json

    import ray

    from ray_icma.ray_connect import connect_ray

    if not rows:
        return np.zeros(0), {"rows": 0, "seconds": 0.0}
    items = [{"_order": i, "task": str(r["task"]), "input": str(r["input"]), "examples_json": json.dumps(r.get("examples") or [])}
             for i, r in enumerate(rows)]
    connect_ray()
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    n_blocks = max(1, min(-(-len(items) // batch_size), 8 * concurrency))
    scored = ray.data.from_items(items, override_num_blocks=n_blocks).map_batches(
        _ScoreBatches,
        fn_constructor_kwargs={"model": model, "adapter": str(adapter) if adapter else None, "cutoff_len": cutoff_len,
                               "batch_size": batch_size, "precision": precision, "num_threads": max(1, int(num_cpus_per_actor))},
        batch_size=batch_size * 4,
        compute=ray.data.ActorPoolStrategy(size=concurrency),
        num_cpus=num_cpus_per_actor,
        num_gpus=num_gpus_per_actor or None,
        batch_format="numpy",
    )
    started = time.perf_counter()
    probs = np.full(len(items), np.nan)
    kept = np.zeros(len(items), dtype=np.int64)
    for batch in scored.iter_batches(batch_size=None, batch_format="numpy"):
        probs[batch["_order"]] = batch["p_yes"]
        kept[batch["_order"]] = batch["n_examples"]
    seconds = time.perf_counter() - started
    if np.isnan(probs).any():
        raise RuntimeError(f"{int(np.isnan(probs).sum())} rows came back without a score")
    meta = {"rows": len(items), "seconds": round(seconds, 2), "rows_per_s": round(len(items) / seconds, 3) if seconds else None,
            "mean_examples": float(kept.mean()), "precision": precision, "model": model, "adapter": str(adapter) if adapter else None}
    return probs, meta
