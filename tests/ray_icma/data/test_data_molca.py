"""`download pubchem324k` path: a MolCA-style PyG release zip is fetched, unpacked and turned into TSV splits.

The release file is built here the way MolCA's files were made (collated PyG `Data` objects
with string fields, saved as ``(data, slices)``), from real ChEBI-20 rows.
"""
from __future__ import annotations

import dataclasses
import hashlib
import zipfile

import pytest

from ray_icma.data import DATASETS, download_dataset, load_records, read_split

torch = pytest.importorskip("torch")
pyg_data = pytest.importorskip("torch_geometric.data")


def _save_split(path, rows):
    items = [
        pyg_data.Data(x=torch.zeros(1, 2), smiles=smiles, text=text, iupac=iupac, cid=cid)
        for cid, smiles, text, iupac in rows
    ]
    data, slices = pyg_data.InMemoryDataset.collate(items)
    torch.save((data, slices), path)


def test_molca_release_becomes_tsv_splits(range_server, tmp_path, chebi20_test_file):
    lines = [line.split("\t") for line in chebi20_test_file.read_text(encoding="utf-8").splitlines()[1:7]]
    rows = [(cid, smiles, text, f"name-{i}") for i, (cid, smiles, text) in enumerate(lines)]
    rows[1] = (rows[1][0], rows[1][1], rows[1][2] + "\nSecond line.", "None")  # no IUPAC name, two-line text
    build = tmp_path / "build"
    build.mkdir()
    for name, part in (("train.pt", rows[:2]), ("valid.pt", rows[2:4]), ("test.pt", rows[4:])):
        _save_split(build / name, part)
    archive = range_server.root / "PubChem324kV2.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in ("train.pt", "valid.pt", "test.pt"):
            zf.write(build / name, f"PubChem324kV2/{name}")
    spec = dataclasses.replace(
        DATASETS["pubchem324k"],
        files=(dataclasses.replace(DATASETS["pubchem324k"].files[0], sha256=hashlib.sha256(archive.read_bytes()).hexdigest()),),
    )

    paths = download_dataset(spec, tmp_path / "root", base_url=range_server.url, progress=False)
    folder = tmp_path / "root" / "pubchem324k"
    assert paths == [folder / "molcap" / f"{s}.txt" for s in ("train", "validation", "test")]

    train = read_split("pubchem324k", "train", root=tmp_path / "root")
    assert [(r.cid, r.smiles) for r in train.records] == [(c, s) for c, s, _, _ in rows[:2]]
    assert train.records[1].text == rows[1][2].replace("\n", " ")
    assert train.n_skipped == 0
    iupac_train = read_split("pubchem324k-iupac", "train", root=tmp_path / "root")
    assert [(r.cid, r.text) for r in iupac_train.records] == [(rows[0][0], "name-0")]  # "None" left out
    test = load_records(folder / "molcap" / "test.txt")
    assert [r.cid for r in test.records] == [c for c, _, _, _ in rows[4:]]
