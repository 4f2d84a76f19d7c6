"""The NLTK WordNet corpus built from Debian's WordNet 3.0 files."""
from __future__ import annotations

from pathlib import Path

import pytest

from ray_icma.evaluate.wordnet import DEBIAN_WORDNET_DIR, LEXNAMES, WordNetMissingError, ensure_wordnet, load_wordnet

needs_debian_wordnet = pytest.mark.skipif(
    not (DEBIAN_WORDNET_DIR / "data.noun").is_file(), reason="apt-get install wordnet-base (scripts/setup.sh does)"
)


@needs_debian_wordnet
def test_builds_corpus_with_lexnames(tmp_path, monkeypatch):
    import nltk

    monkeypatch.setattr(nltk.data, "path", list(nltk.data.path))  # keep the temp root out of later tests
    root = ensure_wordnet(data_dir=tmp_path / "nltk_data")
    assert nltk.data.path[0] == str(root)
    corpus = root / "corpora" / "wordnet"
    lines = (corpus / "lexnames").read_text().splitlines()
    assert len(lines) == 45 == len(LEXNAMES)
    assert lines[0] == "00\tadj.all\t3" and lines[5] == "05\tnoun.animal\t1" and lines[44] == "44\tadj.ppl\t3"
    # real files, not links: NLTK refuses symlinks out of the root and multiply-linked files
    data = corpus / "data.noun"
    assert not data.is_symlink() and data.stat().st_nlink == 1
    assert data.stat().st_size == (DEBIAN_WORDNET_DIR / "data.noun").stat().st_size
    before = data.stat().st_mtime_ns
    ensure_wordnet(data_dir=tmp_path / "nltk_data")  # idempotent: nothing recopied
    assert data.stat().st_mtime_ns == before


@needs_debian_wordnet
def test_reader_agrees_with_the_database_lexicographer_numbers():
    wn = load_wordnet()
    # data.noun stores dog.n.01 with lex_filenum 05, car.n.01 with 06: lexnames must map them
    assert wn.synset("dog.n.01").lexname() == "noun.animal"
    assert wn.synset("car.n.01").lexname() == "noun.artifact"
    assert wn.synset("run.v.01").lexname() == "verb.motion"
    assert wn.get_version() == "3.0"
    assert "auto" in {lemma.name() for s in wn.synsets("car") for lemma in s.lemmas()}


def test_home_override(monkeypatch, tmp_path):
    from ray_icma.evaluate.wordnet import nltk_data_dir

    monkeypatch.setenv("RAY_ICMA_HOME", str(tmp_path))
    assert nltk_data_dir() == tmp_path / "nltk_data"
    monkeypatch.delenv("RAY_ICMA_HOME")
    assert nltk_data_dir() == Path.home() / ".cache" / "ray-icma" / "nltk_data"


def test_missing_wordnet_names_the_apt_packages(tmp_path):
    with pytest.raises(WordNetMissingError, match="apt-get install wordnet-base"):
        ensure_wordnet(source=tmp_path / "nowhere", data_dir=tmp_path / "nltk_data")
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / "data.noun").write_text("")
    with pytest.raises(WordNetMissingError, match="lacks index.adj"):
        ensure_wordnet(source=tmp_path / "partial", data_dir=tmp_path / "nltk_data")
