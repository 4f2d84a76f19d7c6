"""Reading prediction files: MolT5 TSVs and project JSONL, task detection, clear errors."""
from __future__ import annotations

import json

import pytest

from ray_icma.evaluate import PredictionFileError, read_predictions


def _write(path, text):
    path.write_text(text, encoding="utf8")
    return path


def test_molt5_tsvs_are_detected_by_header(mol2cap_tsv, cap2mol_tsv):
    m2c = read_predictions(mol2cap_tsv)
    assert m2c.task == "mol2cap" and len(m2c) == 24
    assert m2c.inputs[0].startswith("C1=CC2=C(C(=C1)[O-])") and m2c.references[0].startswith("The molecule is")
    assert m2c.ids[:3] == ["0", "1", "2"]
    c2m = read_predictions(cap2mol_tsv)
    assert c2m.task == "cap2mol" and c2m.references[0] == m2c.inputs[0]


def test_jsonl_rows(tmp_path):
    rows = [
        {"id": "cid-1", "task": "cap2mol", "input": "The molecule is ethanol.", "reference": "CCO", "prediction": "OCC", "seed": 1},
        {"id": 2, "task": "cap2mol", "input": "x", "reference": "CCN", "prediction": None},
    ]
    path = _write(tmp_path / "p.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    p = read_predictions(path)
    assert (p.task, p.ids, p.references, p.predictions) == ("cap2mol", ["cid-1", "2"], ["CCO", "CCN"], ["OCC", ""])
    # content decides, not the extension
    assert read_predictions(_write(tmp_path / "p.txt", path.read_text())).task == "cap2mol"


def test_explicit_task_must_agree(mol2cap_tsv, tmp_path):
    assert read_predictions(mol2cap_tsv, task="mol2cap").task == "mol2cap"
    with pytest.raises(PredictionFileError, match="needs a 'description' column"):
        read_predictions(mol2cap_tsv, task="cap2mol")
    row = {"id": "1", "task": "mol2cap", "input": "C", "reference": "a", "prediction": "b"}
    path = _write(tmp_path / "p.jsonl", json.dumps(row) + "\n")
    with pytest.raises(PredictionFileError, match="rows are task mol2cap, but task cap2mol"):
        read_predictions(path, task="cap2mol")
    with pytest.raises(PredictionFileError, match="unknown task 'smiles'"):
        read_predictions(path, task="smiles")


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("empty.tsv", "", "empty"),
        ("blank.tsv", "\n\n", "empty"),
        ("header_only.tsv", "SMILES\tground truth\toutput\n", "header only"),
        ("wrong_header.tsv", "smiles\tcaption\n", r"lacks the MolT5 columns"),
        ("short_row.tsv", "SMILES\tground truth\toutput\nC\tmethane\tmethane\nCC\tethane\n", r"short_row.tsv:3: expected 3 tab-separated fields, found 2"),
        ("long_row.tsv", "description\tground truth\toutput\nd\tC\tC\nd\tC\tC\tC\n", r"long_row.tsv:3: expected 3 tab-separated fields, found 4"),
        ("ambiguous.tsv", "SMILES\tdescription\tground truth\toutput\nC\td\tC\tC\n", "pass the task explicitly"),
        ("bad.jsonl", '{"id": "1", "task": "mol2cap", "input": "C", "reference": "a", "prediction": "b"}\n{"id": 2,\n', r"bad.jsonl:2: not valid JSON"),
        ("list.jsonl", "[1, 2]\n", r"list.jsonl:1: expected a JSON object"),
        ("no_task.jsonl", '{"id": "1", "input": "C", "reference": "a", "prediction": "b"}\n', r"no_task.jsonl:1: 'task' is None"),
        ("no_ref.jsonl", '{"id": "1", "task": "mol2cap", "input": "C", "prediction": "b"}\n', r"no_ref.jsonl:1: field 'reference' is missing"),
        ("num_ref.jsonl", '{"id": "1", "task": "mol2cap", "input": "C", "reference": 3, "prediction": "b"}\n', r"field 'reference' is a int"),
        (
            "mixed.jsonl",
            '{"id": "1", "task": "mol2cap", "input": "C", "reference": "a", "prediction": "b"}\n'
            '{"id": "2", "task": "cap2mol", "input": "a", "reference": "C", "prediction": "C"}\n',
            r"mixed.jsonl:2: task cap2mol differs from mol2cap on line 1",
        ),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path, name, text, match):
    with pytest.raises(PredictionFileError, match=match):
        read_predictions(_write(tmp_path / name, text))


def test_missing_and_non_utf8_files(tmp_path):
    with pytest.raises(PredictionFileError, match="no such file"):
        read_predictions(tmp_path / "absent.tsv")
    path = tmp_path / "latin1.tsv"
    path.write_bytes("SMILES\tground truth\toutput\nC\tm\xe9thane\tx\n".encode("latin-1"))
    with pytest.raises(PredictionFileError, match="not UTF-8"):
        read_predictions(path)
