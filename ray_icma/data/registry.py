"""`DATASETS`: where each public data set comes from and where its splits land locally.

Local layout under a data root (what `ray-icma data download --to ROOT` writes and what
`read_split(name, split, root=ROOT)` reads; ../shared/data has the same layout)::

    ROOT/chebi20/{train,validation,test}.txt                 CID, SMILES, description
    ROOT/pubchem324k/molcap/{train,validation,test}.txt      CID, SMILES, description
    ROOT/pubchem324k/iupac/{train,validation,test}.txt       cid, SMILES, IUPAC name

Checksums: a set sha256 is enforced after download; None means "not known here" and the
downloader warns instead (see `download.verify_checksum`).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class RemoteFile:
    """One file to fetch.

    Attributes:
        name: path relative to the data set's base URL; also its path under the local dir.
        sha256: expected hex digest, or None when unknown (verification then warns).
        size: expected size in bytes when known (only used for messages).
    """

    name: str
    sha256: str | None = None
    size: int | None = None


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    """A downloadable (or local-only) data set.

    Attributes:
        name: registry key, e.g. ``"chebi20"``.
        description: one line for ``--help`` and listings.
        base_url: URL the file names are appended to ('' when not downloadable).
        files: what to fetch, in order.
        local_dir: folder under the data root that receives the files.
        splits: split name -> TSV path relative to `local_dir`.
        homepage: where a human can check the source.
        license: the data licence.
        extract: unzip downloaded .zip files into `local_dir` and convert them (MolCA release).
        note: anything a user must know (e.g. why there is no download).
    """

    name: str
    description: str
    base_url: str
    files: tuple[RemoteFile, ...]
    local_dir: str
    splits: Mapping[str, str]
    homepage: str
    license: str
    extract: bool = False
    note: str = ""

    @property
    def downloadable(self) -> bool:
        return bool(self.base_url and self.files)

    def url(self, file: RemoteFile, base_url: str | None = None) -> str:
        return f"{(base_url or self.base_url).rstrip('/')}/{file.name}"


CHEBI20 = DatasetSpec(
    name="chebi20",
    description="ChEBI-20 molecule-caption pairs (MolT5): 26,407 train / 3,301 validation / 3,300 test",
    base_url="https://raw.githubusercontent.com/blender-nlp/MolT5/main/ChEBI-20_data",
    files=(
        # train.txt: digest not known here (the file cannot be fetched from this machine).
        RemoteFile("train.txt", sha256=None),
        # validation/test: sha256 of the unchanged copies of these exact files in ../shared/data/chebi20.
        RemoteFile("validation.txt", sha256="f410b58e6825986577d01b4f0c14b59ed61c1343a15118ba584de4bbcea1508c", size=1289422),
        RemoteFile("test.txt", sha256="91776254b54ef13ad701ede0ecdbd7bcd30c19a66e52aa34a6dac8d0e7306d72", size=1274868),
    ),
    local_dir="chebi20",
    splits=MappingProxyType({"train": "train.txt", "validation": "validation.txt", "test": "test.txt"}),
    homepage="https://github.com/blender-nlp/MolT5/tree/main/ChEBI-20_data",
    license="CC BY 4.0 (ChEBI)",
)

PUBCHEM324K = DatasetSpec(
    name="pubchem324k",
    description=(
        "PubChem324k (MolCA release, PubChem324kV2.zip, 61.4 MB): caption splits 12,000 train / "
        "1,000 validation / 2,000 test, converted to TSV under pubchem324k/{molcap,iupac}/"
    ),
    base_url="https://huggingface.co/datasets/acharkq/PubChem324kV2/resolve/main",
    files=(
        # Digest not known here (the Hugging Face dataset cannot be reached from this machine).
        RemoteFile("PubChem324kV2.zip", sha256=None, size=None),
    ),
    local_dir="pubchem324k",
    splits=MappingProxyType({"train": "molcap/train.txt", "validation": "molcap/validation.txt", "test": "molcap/test.txt"}),
    homepage="https://huggingface.co/datasets/acharkq/PubChem324kV2 (linked from github.com/acharkq/MolCA)",
    license="PubChem data (public domain); MolCA release",
    extract=True,
    note=(
        "The archive holds PyTorch Geometric files ({pretrain,train,valid,test}.pt); converting them "
        "to TSV needs torch and torch_geometric (pip install 'ray-icma[gnn]')."
    ),
)

PUBCHEM324K_IUPAC = DatasetSpec(
    name="pubchem324k-iupac",
    description="PubChem324k IUPAC-name subset as used by ICMA: 11,856 train / 982 validation / 1,985 test",
    base_url="",
    files=(),
    local_dir="pubchem324k",
    splits=MappingProxyType({"train": "iupac/train.txt", "validation": "iupac/validation.txt", "test": "iupac/test.txt"}),
    homepage="https://github.com/phenixace/ICMA/tree/main/data/PubChem324k/iupac",
    license="PubChem data (public domain)",
    note=(
        "Written by `ray-icma data download pubchem324k` (from the release's iupac field; rows whose "
        "name is None are left out, as ICMA's reformat.py does)."
    ),
)

DATASETS: Mapping[str, DatasetSpec] = MappingProxyType(
    {spec.name: spec for spec in (CHEBI20, PUBCHEM324K, PUBCHEM324K_IUPAC)}
)


def get_dataset(name: str) -> DatasetSpec:
    """The spec registered as `name`; KeyError listing the known names otherwise."""
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}") from None


__all__ = ["DATASETS", "DatasetSpec", "RemoteFile", "get_dataset"]
