"""The real full files in ../shared/data: row counts, and exactly which real problems they have."""
from __future__ import annotations

import pytest

from ray_icma.data import DataError, load_records, read_split

pytestmark = pytest.mark.shared

# (data set, split, rows in the file). Problems found (see the asserts below): only the
# PubChem324k IUPAC train split has any, two repeated CIDs.
SPLITS = [
    ("chebi20", "test", 3300),
    ("chebi20", "validation", 3301),
    ("pubchem324k", "test", 2000),
    ("pubchem324k", "validation", 1000),
    ("pubchem324k-iupac", "train", 11856),
    ("pubchem324k-iupac", "validation", 982),
    ("pubchem324k-iupac", "test", 1985),
]


@pytest.mark.parametrize(("name", "split", "rows"), SPLITS)
def test_real_split_counts_and_problems(shared_dir, name, split, rows):
    result = read_split(name, split, root=shared_dir / "data")
    print(result.summary())
    for problem in result.problems:
        print("  ", problem)
    assert result.n_read == rows
    if (name, split) == ("pubchem324k-iupac", "train"):
        # CID 124190594 appears on lines 1453 and 1454 (identical rows); CID 1003 on lines 22
        # and 9134 with two different SMILES (OP(=O)(O)[O-] vs OP(=O)([O-])[O]).
        assert [(p.line, p.kind) for p in result.problems] == [(1454, "duplicate_cid"), (9134, "duplicate_cid")]
        assert "CID 124190594" in result.problems[0].message and "identical row" in result.problems[0].message
        assert "CID 1003" in result.problems[1].message and "different SMILES" in result.problems[1].message
    else:
        assert result.problems == []
    assert len(result.records) == rows - len(result.problems)
    assert {r.source for r in result.records} == {f"{name}/{split}"}


def test_chebi20_smiles_are_passed_through_unchanged(shared_dir):
    path = shared_dir / "data" / "chebi20" / "test.txt"
    raw = [line.split("\t")[1] for line in path.read_text(encoding="utf-8").splitlines()[1:]]
    records = load_records(path).records
    assert [r.smiles for r in records] == raw
    assert sum("\\\\" in s for s in raw) == 484  # doubled backslashes: valid for RDKit, kept as is


def test_smiles_only_table_is_refused_with_a_clear_message(shared_dir):
    path = shared_dir / "data" / "chebi20" / "train_smiles_only.tsv"
    with pytest.raises(DataError, match=r"train_smiles_only\.tsv:1: header .* no column for text"):
        load_records(path)
