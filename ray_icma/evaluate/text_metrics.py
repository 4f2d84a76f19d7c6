"""Molecule-to-caption metrics, computed exactly as MolT5's `evaluation/text_translation_metrics.py`.

- BLEU-2 / BLEU-4: nltk `corpus_bleu` over SciBERT word pieces, weights (.5,.5) and (.25,)*4.
- METEOR: nltk `meteor_score([ref_pieces], hyp_pieces)` per sentence, then the mean.
- ROUGE-1/2/L: `rouge_score.RougeScorer(['rouge1','rouge2','rougeL']).score(prediction, reference)`
  on the raw strings (MolT5's argument order), mean F-measure.
- Predictions starting with "[CLS] " lose that prefix first, as MolT5 does when reading its files.

The only departures are for speed and keep every number identical: word pieces come from one
batched tokenizer call, and METEOR's WordNet and Porter-stemmer lookups are memoised (both are
pure functions of the word).
"""
from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Sequence

import numpy as np

__all__ = ["MOL2CAP_METRICS", "mol2cap_metrics", "check_pairs"]

#: Metric keys returned by `mol2cap_metrics`, in MolT5's reporting order.
MOL2CAP_METRICS = ("bleu2", "bleu4", "rouge1", "rouge2", "rougeL", "meteor")


def check_pairs(references: Sequence[str], predictions: Sequence[str]) -> None:
    """Raise ValueError unless both are equally long, non-empty sequences of strings."""
    if len(references) != len(predictions):
        raise ValueError(
            f"{len(references)} references but {len(predictions)} predictions: they must pair up one to one"
        )
    if not references:
        raise ValueError("nothing to evaluate: no references/predictions given")
    for name, seq in (("reference", references), ("prediction", predictions)):
        for i, value in enumerate(seq):
            if not isinstance(value, str):
                raise ValueError(f"{name} #{i} is {type(value).__name__}, expected str")


class _MemoWordNet:
    """The one WordNet call METEOR makes (`synsets(word)`), memoised per word."""

    def __init__(self, reader) -> None:
        self._reader = reader
        self.synsets = functools.lru_cache(maxsize=None)(reader.synsets)


class _MemoStemmer:
    """A Porter stemmer (METEOR's default) whose `stem` is memoised per word."""

    def __init__(self) -> None:
        from nltk.stem.porter import PorterStemmer

        self.stem = functools.lru_cache(maxsize=None)(PorterStemmer().stem)


@functools.lru_cache(maxsize=1)
def _meteor_resources():
    from ray_icma.evaluate.wordnet import load_wordnet

    return _MemoWordNet(load_wordnet()), _MemoStemmer()


def _strip_cls(text: str) -> str:
    return text[6:] if text.startswith("[CLS] ") else text


def mol2cap_metrics(
    references: list[str],
    predictions: list[str],
    tokenizer: str | os.PathLike[str] | None = None,
) -> dict[str, float]:
    """Score generated captions against reference captions the way MolT5 does.

    Args:
        references: ground-truth captions.
        predictions: generated captions, paired with `references` by position.
        tokenizer: SciBERT tokenizer folder or hub id; default `$RAY_ICMA_SCIBERT` or
            `allenai/scibert_scivocab_uncased`.

    Returns:
        `{"bleu2", "bleu4", "rouge1", "rouge2", "rougeL", "meteor"}` as floats in [0, 1].

    Raises:
        ValueError: the lists differ in length, are empty or hold non-strings.
        TokenizerLoadError: the tokenizer cannot be loaded.
        WordNetMissingError: WordNet 3.0 is not installed (METEOR needs it).
    """
    from nltk.translate.bleu_score import corpus_bleu
    from nltk.translate.meteor_score import meteor_score
    from rouge_score import rouge_scorer

    from ray_icma.evaluate.tokenizer import load_tokenizer, word_pieces

    check_pairs(references, predictions)
    predictions = [_strip_cls(p) for p in predictions]
    tok = load_tokenizer(tokenizer)
    wordnet, stemmer = _meteor_resources()

    ref_pieces = word_pieces(tok, references)
    hyp_pieces = word_pieces(tok, predictions)
    corpus_refs = [[r] for r in ref_pieces]
    with warnings.catch_warnings():  # nltk warns (once per call) when an n-gram order has no match
        warnings.filterwarnings("ignore", message=r"\s*The hypothesis contains 0 counts", category=UserWarning)
        bleu2 = corpus_bleu(corpus_refs, hyp_pieces, weights=(0.5, 0.5))
        bleu4 = corpus_bleu(corpus_refs, hyp_pieces, weights=(0.25, 0.25, 0.25, 0.25))
    meteor = np.mean(
        [meteor_score([r], h, stemmer=stemmer, wordnet=wordnet) for r, h in zip(ref_pieces, hyp_pieces)]
    )

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
    rouge = [scorer.score(out, gt) for gt, out in zip(references, predictions)]
    return {
        "bleu2": float(bleu2),
        "bleu4": float(bleu4),
        "rouge1": float(np.mean([r["rouge1"].fmeasure for r in rouge])),
        "rouge2": float(np.mean([r["rouge2"].fmeasure for r in rouge])),
        "rougeL": float(np.mean([r["rougeL"].fmeasure for r in rouge])),
        "meteor": float(meteor),
    }
