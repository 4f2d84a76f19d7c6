"""mol2cap metrics: hand-computed cases, and equality with a literal transcription of MolT5's script."""
from __future__ import annotations

import math

import pytest

from ray_icma.evaluate import mol2cap_metrics, read_predictions
from ray_icma.evaluate.tokenizer import DROPPED_TOKENS, load_tokenizer, resolve_tokenizer, word_pieces

from .molt5_reference import text_translation_metrics


def test_identical_captions_score_one_and_meteor_keeps_its_fragmentation_penalty(scibert_dir):
    caption = "The molecule is an acid."
    tok = load_tokenizer(scibert_dir)
    assert word_pieces(tok, [caption]) == [["the", "molecule", "is", "an", "acid", "."]]
    m = mol2cap_metrics([caption], [caption], tokenizer=scibert_dir)
    for key in ("bleu2", "bleu4", "rouge1", "rouge2", "rougeL"):
        assert m[key] == pytest.approx(1.0)
    # 6 matched pieces in one chunk: penalty 0.5 * (1/6)^3; fmean 1.
    assert m["meteor"] == pytest.approx(1 - 0.5 / 6**3)


def test_partial_overlap_by_hand(scibert_dir):
    # pieces: ref [the molecule is an acid .], hyp [the molecule is a base .]
    m = mol2cap_metrics(["The molecule is an acid."], ["The molecule is a base."], tokenizer=scibert_dir)
    # unigram precision 4/6, bigram 2/5 ("the molecule", "molecule is"), equal lengths -> BP 1
    assert m["bleu2"] == pytest.approx(math.sqrt(4 / 6 * 2 / 5))
    # no 4-gram matches and no smoothing (as MolT5): nltk floors the log of 0 at float min -> ~0
    assert m["bleu4"] < 1e-50
    # rouge_score words (punctuation dropped): 3 of 5 shared unigrams, 2 of 4 bigrams, LCS 3
    assert m["rouge1"] == pytest.approx(0.6)
    assert m["rouge2"] == pytest.approx(0.5)
    assert m["rougeL"] == pytest.approx(0.6)
    # 4 exact matches (the, molecule, is, .) in 2 chunks: P = R = 4/6, penalty 0.5 * (2/4)^3
    assert m["meteor"] == pytest.approx((1 - 0.5 * 0.5**3) * 4 / 6)


def test_meteor_uses_wordnet_synonyms(scibert_dir):
    # "car" and "auto" share WordNet synset car.n.01: one match, one chunk, penalty 0.5
    m = mol2cap_metrics(["auto"], ["car"], tokenizer=scibert_dir)
    assert m["meteor"] == pytest.approx(0.5)
    assert m["rouge1"] == 0.0
    # nltk looks synonyms up for the Porter *stems* left over from its stem stage ("large" ->
    # "larg"), so large/big do not match although they are synonyms; MolT5's numbers include this.
    assert mol2cap_metrics(["big"], ["large"], tokenizer=scibert_dir)["meteor"] == 0.0


def test_cls_prefix_is_stripped_like_molt5(scibert_dir):
    refs = ["The molecule is an acid.", "It is a conjugate base of citric acid."]
    plain = mol2cap_metrics(refs, refs, tokenizer=scibert_dir)
    assert mol2cap_metrics(refs, ["[CLS] " + r for r in refs], tokenizer=scibert_dir) == plain


def test_batched_word_pieces_equal_molt5_per_sentence_tokenize(scibert_dir, mol2cap_tsv):
    preds = read_predictions(mol2cap_tsv)
    long_text = " ".join(["hydroxy-5-oxo carboxylic"] * 200)  # > 512 pieces: truncation matters
    texts = preds.references + preds.predictions + [long_text, "", "a [CLS] b [SEP] c [PAD]", "Ünïcode—text"]
    tok = load_tokenizer(scibert_dir)
    batched = word_pieces(tok, texts)
    for text, pieces in zip(texts, batched):
        # MolT5 ran transformers 4, whose fast `tokenize(..., truncation=True, max_length=512,
        # padding="max_length")` kept the first 512 pieces plus [PAD]s; transformers 5 silently
        # ignores those kwargs, so the cut is spelled out here.
        expected = tok.tokenize(text)[:512]
        assert pieces == [t for t in expected if t not in DROPPED_TOKENS]
    assert len(tok.tokenize(long_text)) > 512
    assert len(batched[-4]) == 512


@pytest.mark.slow  # the literal MolT5 transcription is slow by design
def test_equals_literal_molt5_transcription(scibert_dir, mol2cap_tsv):
    preds = read_predictions(mol2cap_tsv)
    ours = mol2cap_metrics(preds.references, preds.predictions, tokenizer=scibert_dir)
    theirs = text_translation_metrics(mol2cap_tsv, str(scibert_dir))
    assert ours == {k: float(v) for k, v in theirs.items()}  # bit-identical, not approximately


@pytest.mark.parametrize(
    ("refs", "preds", "match"),
    [(["a", "b"], ["a"], "2 references but 1 predictions"), ([], [], "nothing to evaluate"), (["a"], [None], "prediction #0")],
)
def test_bad_arguments(refs, preds, match, scibert_dir):
    with pytest.raises(ValueError, match=match):
        mol2cap_metrics(refs, preds, tokenizer=scibert_dir)


def test_tokenizer_resolution_order(monkeypatch, scibert_dir):
    monkeypatch.delenv("RAY_ICMA_SCIBERT", raising=False)
    assert resolve_tokenizer() == "allenai/scibert_scivocab_uncased"
    monkeypatch.setenv("RAY_ICMA_SCIBERT", str(scibert_dir))
    assert resolve_tokenizer() == str(scibert_dir)
    assert resolve_tokenizer("/elsewhere") == "/elsewhere"


def test_unloadable_tokenizer_says_what_to_do(tmp_path):
    from ray_icma.evaluate import TokenizerLoadError

    with pytest.raises(TokenizerLoadError, match="--tokenizer DIR"):
        mol2cap_metrics(["x"], ["x"], tokenizer=str(tmp_path / "no-such-tokenizer"))
