"""JSONL / Parquet / TSV writing and reading give back the same records; bad rows in them are reported."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ray_icma.data import DataError, MoleculeRecord, load_records, write_records
from ray_icma.data.problems import BAD_JSON, BAD_SMILES, COLUMNS, DUPLICATE_CID


@pytest.fixture(scope="module")
def records(chebi20_pool_file):
    return load_records(chebi20_pool_file, source="chebi20/validation").records


@pytest.mark.parametrize("name", ["pool.jsonl", "pool.parquet", "pool.tsv"])
def test_round_trip(tmp_path, records, name):
    path = write_records(records, tmp_path / "out" / name)
    assert path.is_file()
    back = load_records(path)
    assert back.n_skipped == 0
    if name.endswith(".tsv"):  # TSV has no source column: it comes from the file name
        assert [(r.cid, r.smiles, r.text) for r in back.records] == [(r.cid, r.smiles, r.text) for r in records]
        assert {r.source for r in back.records} == {"out/pool"}
    else:
        assert back.records == records
    assert not list(tmp_path.glob("out/*.tmp"))


def test_jsonl_is_one_object_per_line_with_the_four_columns(tmp_path, records):
    path = write_records(records[:2], tmp_path / "two.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [r.to_dict() for r in records[:2]]
    assert set(json.loads(lines[0])) == {"cid", "smiles", "text", "source"}


def test_parquet_columns_are_strings(tmp_path, records):
    path = write_records(records[:3], tmp_path / "three.parquet")
    table = pq.read_table(path)
    assert table.column_names == ["cid", "smiles", "text", "source"]
    assert all(t == pa.string() for t in table.schema.types)


def test_jsonl_bad_lines_are_reported(tmp_path, records):
    good = json.dumps(records[0].to_dict())
    path = tmp_path / "bad.jsonl"
    path.write_text(
        "\n".join([good, "{not json", json.dumps({"cid": "9", "smiles": "CCO"}), "[1, 2]",
                   json.dumps({"cid": 7, "smiles": "C1CC", "text": "x"}), good]) + "\n",
        encoding="utf-8",
    )
    result = load_records(path)
    assert len(result.records) == 1
    assert [(p.line, p.kind) for p in result.problems] == [
        (2, BAD_JSON), (3, COLUMNS), (4, BAD_JSON), (5, BAD_SMILES), (6, DUPLICATE_CID)
    ]
    assert "missing key(s) text" in result.problems[1].message
    assert "CID 7" in result.problems[3].message  # integer CIDs become strings
    with pytest.raises(DataError, match=r"bad\.jsonl:2: not valid JSON"):
        load_records(path, strict=True)


def test_parquet_rows_are_checked_and_missing_columns_refused(tmp_path, records):
    rows = [records[0], MoleculeRecord("1", "C1CC", "bad ring", "x"), MoleculeRecord("2", "CCO", "", "x")]
    path = write_records(rows, tmp_path / "rows.parquet")
    result = load_records(path)
    assert [r.cid for r in result.records] == [records[0].cid]
    assert [(p.line, p.kind) for p in result.problems] == [(2, BAD_SMILES), (3, "empty_text")]

    pq.write_table(pa.table({"cid": ["1"], "smiles": ["CCO"]}), tmp_path / "nocol.parquet")
    with pytest.raises(DataError, match=r"nocol\.parquet: Parquet file has no column\(s\) text"):
        load_records(tmp_path / "nocol.parquet")


def test_tsv_writer_refuses_fields_that_would_break_rows(tmp_path):
    with pytest.raises(DataError, match="tab or newline"):
        write_records([MoleculeRecord("1", "CCO", "two\nlines")], tmp_path / "x.tsv")
    assert not (tmp_path / "x.tsv").exists()
