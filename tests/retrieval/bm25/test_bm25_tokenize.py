"""Tokenizers: the standard analyzer port agrees with Elasticsearch; the ICMA split is ICMA's."""
from __future__ import annotations

import re

import pytest
from bm25_test_helpers import es_analyze

from retrieval.bm25 import tokenize_icma, tokenize_standard

# Strings where word-break rules matter; expected terms are what Elasticsearch 9.2's _analyze returned.
TRICKY = "2-methyl-4,17-dien N,N'-di 2'-deoxy e.g. 1.5 Delta(4) a_b 25\u2103 3.x x.3 O=C"
TRICKY_TERMS = ["2", "methyl", "4,17", "dien", "n", "n", "di", "2", "deoxy", "e.g", "1.5", "delta", "4",
                "a_b", "25", "3", "x", "x", "3", "o", "c"]
MORE_TRICKY = [
    "alpha-L-Fucp-(1->3)-[alpha-L-Fucp-(1->6)]-beta-D-GlcpNAc",
    "(2S,3R)-3-hydroxy; 1,2;3,4 x:y 3:4 don't rock'n'roll 5'-end 1.2.3 a.b.c 1,2,3-triol",
    "The molecule is a steroid ester that is methyl (17E)-pregna-4,17-dien-21-oate.",
    "", "   ", "--(),.", "\u03a3\u0399\u0393\u039c\u0391 \u0130stanbul caf\u00e9 na\u00efve \u00b5M 10\u00b5M",
    "\u5316\u5408\u7269 \u3072\u3089\u304c\u306a", "x" * 300, "CO2 H2O pH7.4 IC50 N-[(2S)-2-amino]",
    "some_long_name__x 3_4 _a a_ tab\tsep\nnew line",
    "x\u00b2 H\u2082O \u00bd \u2460 \u216b-form 10\u207b\u00b3 M Fe\u00b3\u207a CH\u2083CH\u2082OH",
    "\u03b1-D-glucose \u03b2-lactam na\u00efve \u0152uvre \u00df a\u2013b a\u2014b a\u2010b",
    "a\u00b7b a\u2019b 1\u20192 \u22069-THC \u00b5-opioid \U0001f600 emoji \u0967\u0968\u0969 \u30ab\u30bf \ud55c\uad6d\uc5b4",
]


def test_standard_matches_recorded_elasticsearch_terms():
    assert tokenize_standard(TRICKY) == TRICKY_TERMS


def test_standard_keeps_one_character_tokens_and_lowercases():
    assert tokenize_standard("2-Methyl-D-Glucose") == ["2", "methyl", "d", "glucose"]


def test_standard_splits_tokens_longer_than_255_characters():
    assert tokenize_standard("y" * 600) == ["y" * 255, "y" * 255, "y" * 90]


def test_standard_empty_and_punctuation_only_give_no_tokens():
    assert tokenize_standard("") == []
    assert tokenize_standard(" -(),. ") == []


def _icma_reference(text: str) -> list[str]:
    """ICMA data/easy_load_examples.py: remove_punctuation(text).split(" "), copied step by step."""
    text = text.replace("-", " ")
    text = text.replace(",", " ")
    text = text.replace(".", "")
    text = text.replace("(", " ")
    text = text.replace(")", " ")
    text = re.sub(r" +", " ", text)
    return text.split(" ")


def test_icma_tokenizer_hand_examples():
    assert tokenize_icma("The molecule is 2-methyl-1,3-dioxolane.") == ["The", "molecule", "is", "2", "methyl", "1", "3", "dioxolane"]
    # leading/trailing separators leave empty tokens, as ICMA's split(" ") does
    assert tokenize_icma("(R)-lactate (a)") == ["", "R", "lactate", "a", ""]
    assert tokenize_icma("e.g. 1.5") == ["eg", "15"]
    assert tokenize_icma("") == [""]


def test_icma_tokenizer_equals_icma_code_on_fixture_captions(pool_captions, query_captions):
    for caption in pool_captions + query_captions + MORE_TRICKY:
        assert tokenize_icma(caption) == _icma_reference(caption)


@pytest.mark.es
def test_standard_equals_elasticsearch_on_tricky_strings(es_url):
    texts = [TRICKY] + MORE_TRICKY
    for text, expected in zip(texts, es_analyze(es_url, texts)):
        assert tokenize_standard(text) == expected, text


@pytest.mark.es
def test_standard_equals_elasticsearch_on_fixture_captions(es_url, pool_captions, query_captions):
    texts = pool_captions + query_captions
    expected = es_analyze(es_url, texts)
    mismatches = [t for t, e in zip(texts, expected) if tokenize_standard(t) != e]
    assert not mismatches, f"{len(mismatches)} of {len(texts)} captions tokenize differently, e.g. {mismatches[0]!r}"
