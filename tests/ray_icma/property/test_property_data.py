"""Loading MoleculeNet files: missing labels, bad rows (file:line), JSONL/Parquet, the two splits."""
from __future__ import annotations

import csv

import pytest

pytest.importorskip("rdkit")

from ray_icma.data import DataError
from ray_icma.property import load_property_file, load_property_splits, murcko_scaffold, scaffold_split, write_property_records
from ray_icma.property.datasets import get_set


def test_tox21_empty_cells_are_unknown_labels(mn_assets):
    path = mn_assets / "moleculenet_tox21_train_40.csv"
    result = load_property_file(path, "tox21")
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))[1:]
    assert len(result.records) == len(rows) == 40 and not result.problems
    for record, row in zip(result.records, rows):
        assert record.smiles == row[13]
        assert record.labels == tuple(None if c == "" else int(c) for c in row[:12])
    assert sum(v is None for r in result.records for v in r.labels) == sum(c == "" for row in rows for c in row[:12]) > 0
    assert result.records[2].id == "moleculenet_tox21_train_40:4" and result.records[2].labels[6] is None


def test_unparsable_smiles_is_reported_with_file_and_line(mn_assets):
    path = mn_assets / "moleculenet_bbbp_train_89.csv"
    result = load_property_file(path, "bbbp")
    assert [(p.line, p.kind) for p in result.problems] == [(85, "bad_smiles")]
    assert str(result.problems[0]).startswith(f"{path}:85: RDKit cannot parse SMILES")
    assert len(result.records) == 88
    with pytest.raises(DataError, match=r"moleculenet_bbbp_train_89\.csv:85: "):
        load_property_file(path, "bbbp", strict=True)


def test_bad_rows_are_reported_and_loading_goes_on(mn_assets, tmp_path):
    lines = (mn_assets / "moleculenet_clintox_train_30.csv").read_text().splitlines()
    lines[3] = "CCO,1"  # line 4: a column missing
    lines[5] = "CCN,2,0"  # line 6: a label that is neither 0, 1 nor empty
    lines[7] = ",1,0"  # line 8: no SMILES
    lines[9] = "CCC,,"  # line 10: no known label
    path = tmp_path / "train.csv"
    path.write_text("\n".join(lines) + "\n")
    result = load_property_file(path, "clintox")
    assert [(p.line, p.kind) for p in result.problems] == [(4, "columns"), (6, "bad_label"), (8, "empty_smiles"), (10, "no_label")]
    assert "label FDA_APPROVED is '2'" in result.problems[1].message
    assert len(result.records) == 30 - 4
    assert "26 loaded, 4 skipped" in result.summary()


def test_sider_quoted_header_gives_27_plain_named_labels(mn_assets):
    result = load_property_file(mn_assets / "moleculenet_sider_train_20.csv", "sider")
    spec = get_set("sider")
    assert spec.n_labels == 27 and "Neoplasms benign, malignant and unspecified (incl cysts and polyps)" in spec.labels
    assert len(result.records) == 20 and all(len(r.labels) == 27 for r in result.records)


def test_header_without_the_label_columns_is_a_clear_error(mn_assets):
    with pytest.raises(DataError, match=r":1: header has no column\(s\) mol, Class for bace"):
        load_property_file(mn_assets / "moleculenet_clintox_train_30.csv", "bace")


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_jsonl_and_parquet_round_trip_keep_unknown_labels(mn_assets, tmp_path, suffix):
    records = load_property_file(mn_assets / "moleculenet_tox21_train_40.csv", "tox21").records
    path = write_property_records(records, tmp_path / f"tox21{suffix}", "tox21")
    again = load_property_file(path, "tox21")
    assert again.records == records and not again.problems


def test_jsonl_bad_rows_have_line_numbers(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"id": "a", "smiles": "CCO", "p_np": 1}\nnot json\n{"id": "b", "smiles": "CCO"}\n{"id": "a", "smiles": "CC", "p_np": 0}\n')
    result = load_property_file(path, "bbbp")
    assert [(p.line, p.kind) for p in result.problems] == [(2, "bad_json"), (3, "columns"), (4, "duplicate_id")]


def test_scaffold_split_is_deterministic_and_shares_no_scaffold(mn_assets):
    records = load_property_file(mn_assets / "moleculenet_bbbp_train_89.csv", "bbbp").records
    first, second = scaffold_split(records), scaffold_split(list(records))
    assert first == second
    assert sum(len(v) for v in first.values()) == len(records)
    assert len(first["train"]) <= 0.8 * len(records) + 1e-9
    train_scaffolds = {murcko_scaffold(r.smiles) for r in first["train"]}
    held_out = [murcko_scaffold(r.smiles) for s in ("validation", "test") for r in first[s]]
    assert held_out and not train_scaffolds & set(held_out)


def test_both_split_kinds_from_a_data_root(clintox_root):
    icma, results = load_property_splits("clintox", "icma", root=clintox_root)
    assert {k: len(v) for k, v in icma.items()} == {"train": 30, "validation": 5, "test": 20}
    scaffold, _ = load_property_splits("clintox", "scaffold", root=clintox_root)
    assert sorted(r.id for v in scaffold.values() for r in v) == sorted(r.id for v in icma.values() for r in v)
    assert scaffold != icma
    with pytest.raises(ValueError, match="unknown split kind"):
        load_property_splits("clintox", "random", root=clintox_root)
