"""SciBERT word pieces for the caption metrics, as MolT5's `text_translation_metrics.py` makes them.

MolT5 calls `BertTokenizerFast.tokenize(text, truncation=True, max_length=512,
padding="max_length")` once per sentence and drops `[PAD]`, `[CLS]` and `[SEP]`. `tokenize` adds no
special tokens, so under the transformers 4 releases MolT5 used that is the first 512 word pieces
with those three strings removed. We get the same pieces from one batched call, which is much
faster, and which still truncates under transformers 5 (whose `tokenize` ignores the truncation and
padding kwargs).
"""
from __future__ import annotations

import functools
import os
from collections.abc import Sequence

__all__ = [
    "DEFAULT_TOKENIZER",
    "DROPPED_TOKENS",
    "MAX_LENGTH",
    "TokenizerLoadError",
    "load_tokenizer",
    "resolve_tokenizer",
    "word_pieces",
]

#: MolT5's `--text_model` default; users with hub access get it from there.
DEFAULT_TOKENIZER = "allenai/scibert_scivocab_uncased"
#: MolT5's `--text_trunc_length`.
MAX_LENGTH = 512
#: The strings MolT5 filters out of every token list.
DROPPED_TOKENS = frozenset({"[PAD]", "[CLS]", "[SEP]"})


class TokenizerLoadError(RuntimeError):
    """The SciBERT tokenizer could not be loaded from the given directory or hub id."""


def resolve_tokenizer(tokenizer: str | os.PathLike[str] | None = None) -> str:
    """Pick the tokenizer: the argument, else `$RAY_ICMA_SCIBERT`, else the hub id MolT5 uses."""
    if tokenizer:
        return os.fspath(tokenizer)
    from ray_icma.env import scibert

    return scibert(DEFAULT_TOKENIZER)


@functools.lru_cache(maxsize=4)
def _load(name: str):
    from transformers import BertTokenizerFast

    try:
        return BertTokenizerFast.from_pretrained(name)
    except Exception as exc:
        raise TokenizerLoadError(
            f"cannot load the SciBERT tokenizer {name!r} ({type(exc).__name__}: {exc}). "
            "Offline? Pass a local folder holding vocab.txt (--tokenizer DIR) or set RAY_ICMA_SCIBERT."
        ) from exc


def load_tokenizer(tokenizer: str | os.PathLike[str] | None = None):
    """Load (once per name) `BertTokenizerFast` for `resolve_tokenizer(tokenizer)`.

    Raises:
        TokenizerLoadError: the folder or hub id does not hold a loadable BERT tokenizer.
    """
    return _load(resolve_tokenizer(tokenizer))


def word_pieces(tokenizer, texts: Sequence[str], max_length: int = MAX_LENGTH) -> list[list[str]]:
    """Word pieces of each text: the first `max_length`, minus `[PAD]`/`[CLS]`/`[SEP]`.

    Args:
        tokenizer: a loaded fast BERT tokenizer (`load_tokenizer`).
        texts: sentences to split.
        max_length: truncation length (MolT5: 512).

    Returns:
        One token list per text, identical to MolT5's per-sentence `tokenize` + filter.
    """
    if not texts:
        return []
    encoded = tokenizer(list(texts), add_special_tokens=False, truncation=True, max_length=max_length)
    return [[t for t in encoded.tokens(i) if t not in DROPPED_TOKENS] for i in range(len(texts))]
