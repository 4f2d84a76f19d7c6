"""What the embedding job reads: caption files via load_records, SMILES-only tables, records."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from ray_icma.data import MoleculeRecord
from ray_icma.jobs._molecule_inputs import read_molecule_inputs


def test_caption_file_keeps_unparsable_smiles_for_the_job_to_count(tmp_path, chebi20_pool_file):
    frame = pd.read_csv(chebi20_pool_file, sep="\t", dtype=str).head(5)
    frame.loc[2, "SMILES"] = "C1CC("
    path = tmp_path / "pool.txt"
    frame.to_csv(path, sep="\t", index=False)
    inputs = read_molecule_inputs(path)
    assert inputs.ids == frame["CID"].tolist() and inputs.smiles[2] == "C1CC(" and not inputs.problems


def test_smiles_only_table_like_chebi20_train(tmp_path):
    path = tmp_path / "train_smiles_only.tsv"
    path.write_text("CID\tSMILES\tseen_in_icma_test_retrieval\n1\tCCO\t0\n2\tc1ccccc1\t1\n1\tCC\t0\n")
    inputs = read_molecule_inputs(path)
    assert inputs.ids == ["1", "2"] and inputs.smiles == ["CCO", "c1ccccc1"]
    assert len(inputs.problems) == 1 and "duplicate id 1" in inputs.problems[0]


def test_jsonl_and_records(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text("\n".join(json.dumps({"cid": c, "smiles": s, "text": "t"}) for c, s in [("7", "C"), ("8", "N")]) + "\n")
    assert read_molecule_inputs(path).ids == ["7", "8"]
    mixed = [MoleculeRecord("a", "C", "x"), {"id": "b", "smiles": "N"}, ("c", "O")]
    inputs = read_molecule_inputs(mixed)
    assert inputs.ids == ["a", "b", "c"] and inputs.smiles == ["C", "N", "O"]


def test_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        read_molecule_inputs(tmp_path / "absent.tsv")
    with pytest.raises(ValueError, match="no 'smiles' key"):
        read_molecule_inputs([{"id": "x"}])
    bad = tmp_path / "bad.tsv"
    bad.write_text("foo\tbar\n1\t2\n")
    inputs = read_molecule_inputs(bad)  # every row is reported, none silently dropped
    assert not inputs.ids and len(inputs.problems) == 2 and "expected 3" in inputs.problems[0]
