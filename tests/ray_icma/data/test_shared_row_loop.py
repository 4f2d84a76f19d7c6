"""Molecule records (ray_icma.data) and property records (ray_icma.property) go through one JSONL reader
(`readers.jsonl_objects`) and one problem-collecting loop (`loader.collect_rows`): the same defects give
the same problems, with the same lines and words, lenient or strict."""
from __future__ import annotations

import pytest

from ray_icma.data import DataError, load_records
from ray_icma.property import load_property_file

# a byte-order mark, CRLF endings, then: a good row, bytes that are not UTF-8, an empty line, a JSON
# array, text that is not JSON, another good row
DEFECTS = [b"\xff\xfe", b"", b"[1, 2]", b"{not json"]


def _write(path, good_rows: list[bytes]) -> None:
    lines = [good_rows[0], *DEFECTS, good_rows[1]]
    path.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(lines) + b"\r\n")


def test_molecule_and_property_files_report_the_same_problems(tmp_path):
    molecules, props = tmp_path / "molecules.jsonl", tmp_path / "bbbp.jsonl"
    _write(molecules, [b'{"cid": "1", "smiles": "CCO", "text": "ethanol"}', b'{"cid": "2", "smiles": "CC", "text": "ethane"}'])
    _write(props, [b'{"id": "1", "smiles": "CCO", "p_np": 1}', b'{"id": "2", "smiles": "CC", "p_np": 0}'])
    mol = load_records(molecules)
    prop = load_property_file(props, "bbbp")
    assert [r.cid for r in mol.records] == ["1", "2"] and [r.id for r in prop.records] == ["1", "2"]
    seen = [(p.line, p.kind) for p in mol.problems]
    assert seen == [(2, "encoding"), (3, "bad_json"), (4, "bad_json"), (5, "bad_json")]
    assert [(p.line, p.kind) for p in prop.problems] == seen
    for a, b in zip(mol.problems, prop.problems):
        assert a.message.split(";")[0] == b.message.split(";")[0]  # same words up to the file-specific hint

    for path, load in ((molecules, load_records), (props, lambda p, **kw: load_property_file(p, "bbbp", **kw))):
        with pytest.raises(DataError, match=r":2: not valid UTF-8: byte 0xff"):
            load(path, strict=True)
