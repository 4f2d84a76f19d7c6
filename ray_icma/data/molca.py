"""Convert MolCA's PubChem324kV2 release (PyTorch Geometric ``.pt`` files) to our TSV layout.

The release (``PubChem324kV2.zip``) holds ``{pretrain,train,valid,test}.pt``, each a
``torch.save((data, slices))`` of a collated PyG ``InMemoryDataset`` whose string fields
(``smiles``, ``text``, ``iupac``, ``cid`` when present) come out as per-molecule lists. The
caption splits become ``molcap/{train,validation,test}.txt`` and the IUPAC names
``iupac/{...}.txt`` (names that are missing or ``"None"`` left out, as ICMA's
``reformat.py`` does). Tabs and line breaks inside a text become spaces (a TSV row is one
line). Needs torch and torch_geometric (``pip install 'ray-icma[gnn]'``).
"""
from __future__ import annotations

from pathlib import Path

from ray_icma.data.problems import DataError
from ray_icma.data.records import MoleculeRecord
from ray_icma.data.writers import write_records

SPLIT_FILES = {"train": "train.pt", "validation": "valid.pt", "test": "test.pt"}


def _field(data: object, name: str) -> list | None:
    value = data.get(name) if isinstance(data, dict) else getattr(data, name, None)
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _one_line(text: object) -> str:
    return " ".join(str(text).replace("\t", " ").replace("\r", " ").split("\n")).strip()


def read_molca_split(pt_file: Path, split: str) -> tuple[list[MoleculeRecord], list[MoleculeRecord]]:
    """(caption records, IUPAC records) of one MolCA ``.pt`` split file.

    Raises:
        DataError: the file does not hold ``smiles`` and ``text`` lists of equal length.
    """
    try:
        import torch
        import torch_geometric  # noqa: F401 - unpickling the release needs PyG's Data classes
    except ImportError as exc:
        raise DataError(
            f"{pt_file}: converting MolCA's release needs torch and torch_geometric: pip install 'ray-icma[gnn]'"
        ) from exc

    # weights_only=False: the file pickles PyG objects; only load the release you downloaded.
    loaded = torch.load(pt_file, map_location="cpu", weights_only=False)
    data = loaded[0] if isinstance(loaded, (tuple, list)) else loaded
    smiles, text = _field(data, "smiles"), _field(data, "text")
    if smiles is None or text is None or len(smiles) != len(text):
        raise DataError(f"{pt_file}: expected equal-length 'smiles' and 'text' fields in a MolCA PubChem324k file")
    n = len(smiles)
    cids = _field(data, "cid") or [f"{split}-{i}" for i in range(n)]  # no CID in the file: stable row ids
    iupacs = _field(data, "iupac")
    caption_source, iupac_source = f"pubchem324k/{split}", f"pubchem324k-iupac/{split}"
    captions = [
        MoleculeRecord(cid=str(cids[i]).strip(), smiles=str(smiles[i]).strip(), text=_one_line(text[i]), source=caption_source)
        for i in range(n)
    ]
    names = []
    if iupacs is not None and len(iupacs) == n:
        for i in range(n):
            name = _one_line(iupacs[i]) if iupacs[i] is not None else ""
            if name and name != "None":
                names.append(MoleculeRecord(cid=captions[i].cid, smiles=captions[i].smiles, text=name, source=iupac_source))
    return captions, names


def convert_release(src_dir: str | Path, out_dir: str | Path) -> list[Path]:
    """Write TSV splits for every ``{train,valid,test}.pt`` found under `src_dir`.

    Args:
        src_dir: where the archive was unpacked (searched recursively).
        out_dir: receives ``molcap/<split>.txt`` and ``iupac/<split>.txt``.

    Returns:
        The TSV files written.

    Raises:
        DataError: no split file found, or one with an unexpected layout.
    """
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    written: list[Path] = []
    for split, name in SPLIT_FILES.items():
        found = sorted(src_dir.rglob(name))
        if not found:
            continue
        captions, names = read_molca_split(found[0], split)
        written.append(write_records(captions, out_dir / "molcap" / f"{split}.txt"))
        if names:
            written.append(write_records(names, out_dir / "iupac" / f"{split}.txt"))
    if not written:
        raise DataError(f"{src_dir}: no MolCA split files ({', '.join(SPLIT_FILES.values())}) found")
    return written
