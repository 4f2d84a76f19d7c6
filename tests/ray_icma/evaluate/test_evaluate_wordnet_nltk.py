"""METEOR without Debian's WordNet (issue 17): the fallback to NLTK's own `wordnet` corpus gives the
same numbers. No network here, so the test builds NLTK's distribution format (`corpora/wordnet.zip`
holding `wordnet/` with the database files and `lexnames`) from Debian's WordNet 3.0 files in a
temporary NLTK_DATA, hides Debian's folder, and compares METEOR through the real evaluator."""
from __future__ import annotations

import zipfile

import pytest

from ray_icma.evaluate import mol2cap_metrics, read_predictions, text_metrics
from ray_icma.evaluate import wordnet as wn_module
from ray_icma.evaluate.wordnet import DEBIAN_WORDNET_DIR, WordNetMissingError, load_wordnet


needs_debian_wordnet = pytest.mark.skipif(
    not (DEBIAN_WORDNET_DIR / "data.noun").is_file(), reason="apt-get install wordnet-base (scripts/setup.sh does)"
)

_DB_FILES = ("index.adj", "index.adv", "index.noun", "index.verb", "data.adj", "data.adv", "data.noun",
             "data.verb", "adj.exc", "adv.exc", "noun.exc", "verb.exc", "index.sense", "cntlist.rev")


def _nltk_wordnet_zip(nltk_data):
    """`<nltk_data>/corpora/wordnet.zip` laid out as NLTK's downloader ships it."""
    corpora = nltk_data / "corpora"
    corpora.mkdir(parents=True)
    with zipfile.ZipFile(corpora / "wordnet.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("wordnet/", "")
        for name in _DB_FILES:
            if (DEBIAN_WORDNET_DIR / name).is_file():
                zf.write(DEBIAN_WORDNET_DIR / name, f"wordnet/{name}")
        zf.writestr("wordnet/lexnames", wn_module._lexnames_text())
    return corpora / "wordnet.zip"


@pytest.fixture
def without_debian_wordnet(tmp_path, monkeypatch):
    """Debian's folder and $RAY_ICMA_WORDNET_DIR point nowhere; caches are cleared before and after."""
    monkeypatch.setattr(wn_module, "DEBIAN_WORDNET_DIR", tmp_path / "no-debian-wordnet")
    monkeypatch.setenv("RAY_ICMA_WORDNET_DIR", str(tmp_path / "no-debian-wordnet"))
    monkeypatch.setenv("RAY_ICMA_HOME", str(tmp_path / "home"))
    load_wordnet.cache_clear()
    text_metrics._meteor_resources.cache_clear()
    yield
    load_wordnet.cache_clear()
    text_metrics._meteor_resources.cache_clear()


@needs_debian_wordnet
def test_nltk_corpus_gives_the_same_meteor_as_debian(tmp_path, monkeypatch, mol2cap_tsv, scibert_dir):
    preds = read_predictions(mol2cap_tsv)
    refs, hyps = list(preds.references), list(preds.predictions)
    load_wordnet.cache_clear()
    text_metrics._meteor_resources.cache_clear()
    debian = mol2cap_metrics(refs, hyps, tokenizer=scibert_dir)

    monkeypatch.setattr(wn_module, "DEBIAN_WORDNET_DIR", tmp_path / "no-debian-wordnet")
    monkeypatch.delenv("RAY_ICMA_WORDNET_DIR", raising=False)
    monkeypatch.setenv("NLTK_DATA", str(tmp_path / "nltk_data"))
    _nltk_wordnet_zip(tmp_path / "nltk_data")
    import nltk

    # as on a machine that never had Debian's files: NLTK's own folders only, not the corpus built above
    generated = str(wn_module.nltk_data_dir())
    monkeypatch.setattr(nltk.data, "path", [p for p in nltk.data.path if p != generated])
    load_wordnet.cache_clear()
    text_metrics._meteor_resources.cache_clear()
    try:
        reader = load_wordnet(download=False)
        assert "wordnet.zip" in str(reader.root)  # really the NLTK corpus, not Debian's files
        nltk_scores = mol2cap_metrics(refs, hyps, tokenizer=scibert_dir)
    finally:
        load_wordnet.cache_clear()
        text_metrics._meteor_resources.cache_clear()
    assert nltk_scores["meteor"] == debian["meteor"]  # bit-identical, not approximately
    assert nltk_scores == debian
    # and WordNet really takes part: synonyms found through the zip corpus
    assert {lemma.name() for s in reader.synsets("acid") for lemma in s.lemmas()} >= {"acid", "Zen", "back_breaker"}


def test_no_wordnet_anywhere_names_both_ways_to_get_it(tmp_path, monkeypatch, without_debian_wordnet):
    monkeypatch.setenv("NLTK_DATA", str(tmp_path / "empty_nltk_data"))
    import nltk

    monkeypatch.setattr(nltk.data, "path", [str(tmp_path / "empty_nltk_data")])
    with pytest.raises(WordNetMissingError) as info:
        load_wordnet(download=False)
    message = str(info.value)
    assert "apt-get install wordnet-base" in message and "nltk.downloader wordnet" in message
