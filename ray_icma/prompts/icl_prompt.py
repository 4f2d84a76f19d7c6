"""Build ICMA in-context prompts and targets, fit them to a token budget, parse model output.

Prompt order: examples come in the order given (``retrieval.rerank.select_examples`` already
returns them sequence-reversed, most similar last, right before the query), as ICMA does.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ray_icma.prompts.templates import TASKS, TEMPLATES, TaskTemplate

__all__ = ["build_prompt", "build_target", "parse_output", "fit_prompt", "count_tokens", "DEFAULT_ANSWER_RESERVE"]

# ICMA generates at most 256 new tokens; keep that much room for the answer by default.
DEFAULT_ANSWER_RESERVE = 256
_TRUNCATION_MARK = " ... "
# Where a model that keeps going starts a new (hallucinated) block.
_STOP_MARKERS = ("\n\n", "Generate a ", "Based on the above examples")


def _template(task: str) -> TaskTemplate:
    if task.startswith("property/"):  # MoleculeNet labels: property/<set>/<label> (ray_icma.property)
        from ray_icma.property.prompts import property_template

        return property_template(task)
    try:
        return TEMPLATES[task]
    except KeyError:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}") from None


def build_prompt(task: str, query: str, examples: Sequence[tuple[str, str]] = ()) -> str:
    """The prompt for one query: example blocks, then the query line (ends with a newline).

    Args:
        task: ``"mol2cap"`` (query is a SMILES) or ``"cap2mol"`` (query is a caption).
        query: the input to translate.
        examples: ``(input, output)`` pairs in prompt order (most similar last). Empty gives
            ICMA's zero-shot prompt, the direct fine-tuning baseline.

    Returns:
        The prompt text; the target (``build_target``) is appended to it directly.

    Raises:
        ValueError: unknown task, or an example that is not an (input, output) pair.
    """
    tpl = _template(task)
    query = query.strip()
    if not examples:
        return tpl.zero_shot.format(input=query)
    blocks = []
    for pos, example in enumerate(examples):
        if len(example) != 2:
            raise ValueError(f"example {pos} must be an (input, output) pair, got {len(example)} items")
        ex_in, ex_out = example
        blocks.append(tpl.example.format(input=str(ex_in).strip(), output=str(ex_out).strip()))
    return "".join(blocks) + tpl.query.format(input=query)


def build_target(task: str, answer: str) -> str:
    """What the model must write after the prompt: ``"Caption: ..."`` / ``"Molecule: ..."``.

    The EOS token is not part of the text: the training collate appends the tokenizer's EOS id,
    so the same string works for any tokenizer.
    """
    return _template(task).answer_prefix + answer.strip()


def parse_output(task: str, generated: str) -> str:
    """Pull the answer out of generated text.

    Strips a leading ``"Caption:"``/``"Molecule:"``, stops at a blank line or at the start of a
    new block (``"Generate a ..."``, ``"Based on the above examples"``), strips whitespace. For
    cap2mol only the first whitespace-free token is kept (a SMILES has no spaces).
    """
    tpl = _template(task)
    text = generated.strip()
    prefix = tpl.answer_prefix.strip()
    if text[: len(prefix)].lower() == prefix.lower():
        text = text[len(prefix):]
    for marker in _STOP_MARKERS:
        cut = text.find(marker)
        if cut >= 0:
            text = text[:cut]
    text = text.strip()
    if task == "cap2mol":
        parts = re.split(r"\s+", text, maxsplit=1)
        text = parts[0] if parts else ""
    return text


def count_tokens(tokenizer: Any, text: str) -> int:
    """Number of tokens ``tokenizer`` makes of ``text``, special tokens (BOS) included."""
    return len(tokenizer(text, add_special_tokens=True)["input_ids"])


def _truncate_middle(tokenizer: Any, task: str, query: str, budget: int) -> str:
    """Shorten ``query`` by cutting its middle (keeping head and tail) so the zero-shot prompt fits.

    Binary search over how many query tokens survive: about log2(len) tokenizer calls.
    """
    ids = tokenizer(query, add_special_tokens=False)["input_ids"]
    lo, hi = 0, len(ids)  # invariant: keeping `lo` tokens fits (0 fits: checked by the caller)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count_tokens(tokenizer, build_prompt(task, _join_ends(tokenizer, ids, mid))) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return _join_ends(tokenizer, ids, lo)


def _join_ends(tokenizer: Any, ids: list[int], keep: int) -> str:
    head = keep - keep // 2
    tail = keep // 2
    if keep == 0:
        return _TRUNCATION_MARK.strip()
    head_text = tokenizer.decode(ids[:head], skip_special_tokens=True)
    tail_text = tokenizer.decode(ids[len(ids) - tail:], skip_special_tokens=True) if tail else ""
    return head_text.rstrip() + _TRUNCATION_MARK + tail_text.lstrip()


def fit_prompt(
    tokenizer: Any,
    task: str,
    query: str,
    examples: Sequence[tuple[str, str]] = (),
    cutoff_len: int = 1024,
    answer_reserve: int = DEFAULT_ANSWER_RESERVE,
) -> tuple[str, int]:
    """The longest prompt that leaves ``answer_reserve`` tokens for the answer within ``cutoff_len``.

    Examples are dropped first, farthest from the query first (from the start of the prompt:
    prompt order puts the most similar example last). The answer is never touched. If even the
    zero-shot prompt is too long, the query text loses its middle (head and tail kept, joined
    by ``" ... "``), since the start and end of a caption or SMILES carry most of its meaning
    and a model still sees a well-formed prompt; such rows are rare (ChEBI-20 captions are
    far below 1,024 tokens).

    Args:
        tokenizer: a Hugging Face tokenizer (called as ``tokenizer(text)``).
        task: ``"mol2cap"`` or ``"cap2mol"``.
        query: the input to translate.
        examples: ``(input, output)`` pairs in prompt order.
        cutoff_len: the model's token budget for prompt + answer (ICMA: 1024).
        answer_reserve: tokens kept free for the answer (+ EOS).

    Returns:
        ``(prompt, n_examples_kept)``.

    Raises:
        ValueError: ``cutoff_len - answer_reserve`` leaves no room for even the instruction.
    """
    budget = cutoff_len - answer_reserve
    overhead = count_tokens(tokenizer, build_prompt(task, _TRUNCATION_MARK))
    if budget < overhead:
        raise ValueError(
            f"cutoff_len={cutoff_len} minus answer_reserve={answer_reserve} leaves {budget} tokens, fewer than "
            f"the {overhead} the {task} instruction needs; raise cutoff_len or lower answer_reserve"
        )
    examples = list(examples)
    for n_kept in range(len(examples), -1, -1):
        prompt = build_prompt(task, query, examples[len(examples) - n_kept:])
        if count_tokens(tokenizer, prompt) <= budget:
            return prompt, n_kept
    return build_prompt(task, _truncate_middle(tokenizer, task, query.strip(), budget)), 0
