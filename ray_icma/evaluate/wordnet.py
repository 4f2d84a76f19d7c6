"""WordNet 3.0 for NLTK's METEOR: from Debian's `wordnet-base` files, else NLTK's own `wordnet` corpus.

NLTK's `WordNetCorpusReader` wants an `nltk_data/corpora/wordnet/` folder holding the WordNet
database files plus `lexnames` (the 45 lexicographer file names). Debian ships the database in
/usr/share/wordnet but not `lexnames`, and these machines cannot run `nltk.download`. So we build
the folder at run time: copies of the Debian files, `lexnames` written from the fixed WordNet 3.0
list, and point NLTK at it. METEOR never touches the multilingual (OMW) data, so none is needed:
the reader only opens it lazily for languages other than English.

Where Debian's files are not installed (macOS, conda, other distributions) `load_wordnet` falls
back to NLTK's own `wordnet` corpus: `$NLTK_DATA` and NLTK's usual folders (a `wordnet/` folder or
NLTK's `wordnet.zip`), else `nltk.download("wordnet")`. It is the same WordNet 3.0 database, so
METEOR gives the same numbers (tests/ray_icma/evaluate/test_evaluate_wordnet_nltk.py).
"""
from __future__ import annotations

import functools
import os
import shutil
import tempfile
from pathlib import Path

__all__ = [
    "DEBIAN_WORDNET_DIR",
    "LEXNAMES",
    "WordNetMissingError",
    "ensure_wordnet",
    "find_nltk_wordnet",
    "load_wordnet",
    "nltk_data_dir",
]

DEBIAN_WORDNET_DIR = Path("/usr/share/wordnet")

#: WordNet 3.0's lexicographer files, in file-number order: (name, syntactic category number).
LEXNAMES: tuple[tuple[str, int], ...] = (
    ("adj.all", 3), ("adj.pert", 3), ("adv.all", 4), ("noun.Tops", 1), ("noun.act", 1),
    ("noun.animal", 1), ("noun.artifact", 1), ("noun.attribute", 1), ("noun.body", 1),
    ("noun.cognition", 1), ("noun.communication", 1), ("noun.event", 1), ("noun.feeling", 1),
    ("noun.food", 1), ("noun.group", 1), ("noun.location", 1), ("noun.motive", 1),
    ("noun.object", 1), ("noun.person", 1), ("noun.phenomenon", 1), ("noun.plant", 1),
    ("noun.possession", 1), ("noun.process", 1), ("noun.quantity", 1), ("noun.relation", 1),
    ("noun.shape", 1), ("noun.state", 1), ("noun.substance", 1), ("noun.time", 1),
    ("verb.body", 2), ("verb.change", 2), ("verb.cognition", 2), ("verb.communication", 2),
    ("verb.competition", 2), ("verb.consumption", 2), ("verb.contact", 2), ("verb.creation", 2),
    ("verb.emotion", 2), ("verb.motion", 2), ("verb.perception", 2), ("verb.possession", 2),
    ("verb.social", 2), ("verb.stative", 2), ("verb.weather", 2), ("adj.ppl", 3),
)

# Files NLTK's reader opens (its `_FILES`, minus `lexnames` which we write ourselves).
_REQUIRED = (
    "index.adj", "index.adv", "index.noun", "index.verb",
    "data.adj", "data.adv", "data.noun", "data.verb",
    "adj.exc", "adv.exc", "noun.exc", "verb.exc",
)
_OPTIONAL = ("index.sense", "cntlist.rev")

_APT_HINT = "install it with: apt-get install wordnet-base wordnet-sense-index"
_NLTK_HINT = "or put NLTK's corpus under $NLTK_DATA: python -m nltk.downloader wordnet"


class WordNetMissingError(RuntimeError):
    """WordNet 3.0 database files are not available to build NLTK's corpus from."""


def nltk_data_dir() -> Path:
    """Where the generated `nltk_data` lives: `$RAY_ICMA_HOME/nltk_data`, else `~/.cache/ray-icma/nltk_data`."""
    from ray_icma.env import cache_home

    return cache_home() / "nltk_data"


def _lexnames_text() -> str:
    return "".join(f"{i:02d}\t{name}\t{cat}\n" for i, (name, cat) in enumerate(LEXNAMES))


def _atomic_write(path: Path, text: str) -> None:
    """Write via a temp file + rename, so concurrent workers never read a half-written file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf8") as fh:
        fh.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _place(source: Path, dest: Path) -> None:
    """Copy `source` into the corpus unless an identical-size copy is already there.

    NLTK (3.10's hardened paths) refuses symlinks leaving the corpus root and multiply-linked
    files, so the corpus holds real copies (about 36 MB, made once).
    """
    size = source.stat().st_size
    if dest.is_file() and not dest.is_symlink() and dest.stat().st_nlink == 1 and dest.stat().st_size == size:
        return
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    os.close(fd)
    shutil.copyfile(source, tmp)
    os.chmod(tmp, 0o644)
    os.replace(tmp, dest)


def ensure_wordnet(source: str | os.PathLike[str] | None = None, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Build (idempotently) `<data_dir>/corpora/wordnet` from a WordNet 3.0 database folder.

    Args:
        source: folder with WordNet's `data.*`/`index.*`/`*.exc` files; default
            `$RAY_ICMA_WORDNET_DIR` or Debian's /usr/share/wordnet.
        data_dir: the `nltk_data` root to build in; default `nltk_data_dir()`.

    Returns:
        The `nltk_data` root, also prepended to `nltk.data.path`.

    Raises:
        WordNetMissingError: the source folder or one of its required files is missing.
    """
    from ray_icma.env import wordnet_dir

    src = Path(source or wordnet_dir(str(DEBIAN_WORDNET_DIR)))
    if not src.is_dir():
        raise WordNetMissingError(f"WordNet 3.0 not found at {src} (needed for METEOR); {_APT_HINT}")
    missing = [name for name in _REQUIRED if not (src / name).is_file()]
    if missing:
        raise WordNetMissingError(f"WordNet folder {src} lacks {', '.join(missing)}; {_APT_HINT}")

    root = Path(data_dir) if data_dir is not None else nltk_data_dir()
    corpus = root / "corpora" / "wordnet"
    corpus.mkdir(parents=True, exist_ok=True)
    for name in _REQUIRED + _OPTIONAL:
        if (src / name).is_file():
            _place((src / name).resolve(), corpus / name)
    lexnames = corpus / "lexnames"
    if not lexnames.is_file() or lexnames.read_text(encoding="utf8") != _lexnames_text():
        _atomic_write(lexnames, _lexnames_text())

    import nltk

    if str(root) not in nltk.data.path:
        nltk.data.path.insert(0, str(root))
    return root


def _english_reader_class():
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class EnglishWordNetReader(WordNetCorpusReader):
        """NLTK's reader minus the WordNet-3.0 -> loaded-version offset map built at start-up.

        That map (3.5 s: it parses index.sense twice) only re-keys multilingual OMW data; for the
        WordNet 3.0 database itself it is the identity and English lookups never read it.
        """

        def map_wn(self, version="wordnet"):
            if self.get_version() == "3.0" and version == "wordnet":
                return None
            return super().map_wn(version)

    return EnglishWordNetReader


def find_nltk_wordnet(download: bool = True):
    """NLTK's own `wordnet` corpus: a path pointer (folder or `wordnet.zip`), or None.

    Searches `$NLTK_DATA` (read now, not only when nltk was imported: its folders join
    `nltk.data.path`, which is also what NLTK's path sandbox allows) and the rest of
    `nltk.data.path`, as NLTK's own `wordnet` loader does; when absent and ``download`` is true,
    tries `nltk.download("wordnet")` once (needs the network).
    """
    import nltk

    for folder in reversed([p for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p]):
        if folder not in nltk.data.path:
            nltk.data.path.insert(0, folder)
    for attempt in range(2):
        for resource in ("corpora/wordnet", "corpora/wordnet.zip/wordnet/"):  # unpacked, or the zip as downloaded
            try:
                return nltk.data.find(resource)
            except LookupError:
                pass
        if attempt or not download:
            return None
        try:
            nltk.download("wordnet", quiet=True, raise_on_error=True)
        except Exception:  # noqa: BLE001 - offline, proxy, permissions: all mean "not available"
            return None
    return None


@functools.lru_cache(maxsize=None)
def load_wordnet(source: str | None = None, download: bool = True):
    """A ready WordNet 3.0 reader (found or built on first use, then cached).

    Debian's files (or ``source`` / `$RAY_ICMA_WORDNET_DIR`) first, as `ensure_wordnet`; where they
    are missing, NLTK's own `wordnet` corpus (`find_nltk_wordnet`). Both are WordNet 3.0: METEOR
    scores are identical.

    Args:
        source: WordNet database folder, as for `ensure_wordnet`.
        download: let the NLTK fallback try `nltk.download("wordnet")`.

    Returns:
        A subclass of `nltk.corpus.reader.wordnet.WordNetCorpusReader` for English lookups.

    Raises:
        WordNetMissingError: neither Debian's files nor NLTK's corpus are available.
    """
    from nltk.corpus import CorpusReader, LazyCorpusLoader

    # The OMW loader is only resolved for non-English lookups, which METEOR never makes.
    omw = LazyCorpusLoader("omw-1.4", CorpusReader, r".*/wn-data-.*\.tab", encoding="utf8")
    try:
        root = ensure_wordnet(source)
    except WordNetMissingError as exc:
        corpus = find_nltk_wordnet(download=download)
        if corpus is None:
            raise WordNetMissingError(f"{exc}; {_NLTK_HINT}") from None
        return _english_reader_class()(corpus, omw)
    return _english_reader_class()(str(root / "corpora" / "wordnet"), omw)
