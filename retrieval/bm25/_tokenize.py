"""Caption tokenizers: Elasticsearch's ``standard`` analyzer in pure Python, and ICMA's split.

Both embedded backends and Elasticsearch must see the same terms or their rankings drift apart,
so ``tokenize_standard`` re-implements what the server-side ``standard`` analyzer does
(Lucene ``StandardTokenizer`` + ``LowerCaseFilter``, no stop words, max token length 255) with a
regular expression for the Unicode word-break rules (UAX #29) that matter for text like
``(17E)-pregna-4,17-dien-21-oate``: letters and digits glue together (``17e``), a ``.``/``'``/``:``
between two letters keeps them together (``e.g``), a ``.``/``,``/``;``/``'`` between two digits keeps
them together (``4,17``, ``1.5``), ``_`` glues anything, everything else separates, and each
CJK ideograph or hiragana character is its own token. Checked against Elasticsearch's
``_analyze`` on every ChEBI-20 validation and test caption (see tests/retrieval/bm25/).

Known approximations (none occurs in ChEBI-20): Hebrew-letter and Katakana rules, emoji
sequences (each pictograph is one token), ``Extend``/``Format`` characters inside words,
"other number" characters outside the basic plane, and Unicode-version differences.

``tokenize_icma`` reproduces the official ICMA code (``data/easy_load_examples.py``) exactly,
including its empty-string tokens at leading/trailing punctuation.
"""
from __future__ import annotations

import re
import unicodedata
from functools import cache

__all__ = ["MAX_TOKEN_LENGTH", "tokenize_standard", "tokenize_icma", "TOKENIZERS", "get_tokenizer"]

MAX_TOKEN_LENGTH = 255  # Elasticsearch standard analyzer default; longer tokens are split every 255 chars

# UAX #29 word-break classes (only the members that Lucene's grammar and real text need).
_IDEOGRAPHIC = "\u3040-\u309f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # Hiragana + CJK: one token per char
_EMOJI = "\U0001f300-\U0001faff"  # pictographs: one token each (ZWJ sequences are not joined)
_DIGIT = r"\d"  # Numeric (Unicode decimal digits)
_EXTEND_NUM_LET = r"[_\u203f\u2040\u2054\ufe33\ufe34\ufe4d-\ufe4f\uff3f]"  # connector punctuation
_MID_LETTER = r"[:\u00b7\u0387\u055f\u05f4\u2027\ufe13\ufe55\uff1a]"
_MID_NUM = r"[,;\u037e\u0589\u060c\u060d\u066c\u07f8\u2044\ufe10\ufe14\ufe50\ufe54\uff0c\uff1b]"
_MID_NUM_LET_Q = r"[.'\u2018\u2019\u2024\ufe52\uff07\uff0e]"  # MidNumLet + Single_Quote


def _other_number_class() -> str:
    """Characters of category No (superscripts, fractions, circled digits): separators in UAX #29,
    but Python's ``\\w`` counts them as word characters. Basic plane only (captions live there)."""
    chars = [chr(c) for c in range(0x80, 0x10000) if unicodedata.category(chr(c)) == "No"]
    return "".join(re.escape(c) for c in chars)


def _compile(letter: str, digit: str, extra_single: str) -> re.Pattern:
    word_char = rf"(?:{letter}|{digit}|{_EXTEND_NUM_LET})"
    word = (
        rf"{word_char}"
        rf"(?:{word_char}"
        rf"|(?<={letter})(?:{_MID_LETTER}|{_MID_NUM_LET_Q})(?={letter})"  # WB6/WB7: e.g, don't
        rf"|(?<={digit})(?:{_MID_NUM}|{_MID_NUM_LET_Q})(?={digit}))*"  # WB11/WB12: 4,17  1.5
    )
    return re.compile(rf"{word}|[{extra_single}]" if extra_single else word)


_ASCII_TOKEN = _compile("[A-Za-z]", "[0-9]", "")  # fast path: most captions are ASCII


@cache
def _unicode_token_pattern() -> re.Pattern:
    """The full token regex, compiled on first use (building the No class costs ~20 ms)."""
    letter = rf"[^\W\d_{_IDEOGRAPHIC}{_EMOJI}{_other_number_class()}]"  # ALetter ~ Unicode letters and Nl
    return _compile(letter, _DIGIT, _IDEOGRAPHIC + _EMOJI)


_ICMA_SPACES = re.compile(r" +")


def _java_lower(text: str) -> str:
    """Lower-case like Java's per-code-point ``Character.toLowerCase`` (Lucene's LowerCaseFilter)."""
    if text.isascii():
        return text.lower()
    out = []
    for ch in text:
        low = ch.lower()
        out.append(low if len(low) == 1 else low[0])  # e.g. U+0130 -> "i", never two chars
    return "".join(out)


def tokenize_standard(text: str) -> list[str]:
    """Terms of ``text`` as Elasticsearch's ``standard`` analyzer produces them.

    Args:
        text: Any string; empty or punctuation-only text gives ``[]``.

    Returns:
        Lower-cased tokens in order, one-character tokens kept (``"2-methyl"`` -> ``["2", "methyl"]``),
        tokens longer than 255 characters split into 255-character pieces.
    """
    if text.isascii():
        tokens = _ASCII_TOKEN.findall(text.lower())
    else:  # lower-casing first is safe: it never turns a letter into a non-letter
        tokens = _unicode_token_pattern().findall(_java_lower(text))
    if any(len(token) > MAX_TOKEN_LENGTH for token in tokens):
        tokens = [token[i : i + MAX_TOKEN_LENGTH] for token in tokens for i in range(0, len(token), MAX_TOKEN_LENGTH)]
    return tokens


def tokenize_icma(text: str) -> list[str]:
    """Tokens exactly as ICMA's ``remove_punctuation(text).split(" ")`` makes them for BM25Okapi.

    ``-``, ``,``, ``(`` and ``)`` become spaces, ``.`` is removed, runs of spaces collapse, and the text
    is split on single spaces without stripping: case is kept and a caption that starts or ends with
    a separator yields an empty-string token, as in the original code.
    """
    text = text.replace("-", " ").replace(",", " ").replace(".", "").replace("(", " ").replace(")", " ")
    return _ICMA_SPACES.sub(" ", text).split(" ")


TOKENIZERS = {"standard": tokenize_standard, "icma": tokenize_icma}


def get_tokenizer(name: str):
    """The tokenizer function called ``name``; ValueError listing the choices otherwise."""
    try:
        return TOKENIZERS[name]
    except KeyError:
        raise ValueError(f"unknown tokenizer {name!r}; choose one of {sorted(TOKENIZERS)}") from None
