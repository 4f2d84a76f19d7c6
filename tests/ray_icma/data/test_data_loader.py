"""load_records on real ChEBI-20 rows and on hand-made bad files, one per problem kind."""
from __future__ import annotations

from pathlib import Path

import pytest

from ray_icma.data import DataError, LoadResult, MoleculeRecord, Problem, load_records
from ray_icma.data.problems import (
    BAD_SMILES,
    COLUMNS,
    DUPLICATE_CID,
    EMPTY_CID,
    EMPTY_SMILES,
    EMPTY_TEXT,
    ENCODING,
)

HEADER = "CID\tSMILES\tdescription"


@pytest.fixture(scope="module")
def real_lines(chebi20_test_file: Path) -> list[str]:
    """The fixture's data lines (no header), as text."""
    return chebi20_test_file.read_text(encoding="utf-8").splitlines()[1:]


def _write(tmp_path: Path, lines: list[str], name: str = "bad.txt") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_fixture_files_load_completely(chebi20_test_file, chebi20_pool_file):
    test = load_records(chebi20_test_file)
    pool = load_records(chebi20_pool_file)
    assert isinstance(test, LoadResult)
    assert (len(test.records), test.n_read, test.n_skipped) == (200, 200, 0)
    assert (len(pool.records), pool.n_read, pool.n_skipped) == (300, 300, 0)
    first = test.records[0]
    assert isinstance(first, MoleculeRecord)
    assert first.cid == "5354212"
    assert first.text.startswith("The molecule is a steroid ester")
    assert first.source == "assets/chebi20_test_200"
    assert "200 rows read, 200 loaded, 0 skipped" in test.summary()


def test_escaped_backslashes_are_kept_and_valid(chebi20_test_file, real_lines):
    """ChEBI-20's doubled backslashes parse in RDKit, so they are neither altered nor reported."""
    records = load_records(chebi20_test_file).records
    with_double = [r for r in records if "\\\\" in r.smiles]
    assert len(with_double) == sum("\\\\" in line.split("\t")[1] for line in real_lines) > 0
    raw_first = real_lines[0].split("\t")[1]
    assert records[0].smiles == raw_first  # byte-for-byte what the file says
    assert "[C@]\\\\4(" in records[0].smiles


def test_header_is_optional_and_matched_by_name(tmp_path, real_lines):
    no_header = _write(tmp_path, real_lines[:3], "plain.tsv")
    assert [r.cid for r in load_records(no_header).records] == [line.split("\t")[0] for line in real_lines[:3]]
    # IUPAC splits use a lower-case "cid"; a reordered header is honoured by name.
    cid, smiles, text = real_lines[0].split("\t")
    reordered = _write(tmp_path, ["SMILES\tcid\tIUPAC name", f"{smiles}\t{cid}\t{text}"], "reordered.txt")
    (record,) = load_records(reordered).records
    assert (record.cid, record.smiles, record.text) == (cid, smiles, text)


def test_header_without_needed_column_is_a_file_error(tmp_path):
    path = _write(tmp_path, ["CID\tSMILES\tflag", "1\tCCO\t1"])
    with pytest.raises(DataError, match=r"bad\.txt:1: header .* no column for text"):
        load_records(path)


def test_crlf_bom_and_surrounding_spaces(tmp_path, real_lines):
    cid, smiles, text = real_lines[0].split("\t")
    path = tmp_path / "windows.txt"
    path.write_bytes(("\ufeff" + HEADER + "\r\n" + f"{cid}\t {smiles} \t{text}  \r\n").encode("utf-8"))
    (record,) = load_records(path).records
    assert (record.cid, record.smiles, record.text) == (cid, smiles, text)


BAD_CASES = [
    # (kind, bad line, expected message fragment)
    (COLUMNS, "123\tCCO", "expected 3 tab-separated columns (CID, SMILES, description), found 2"),
    (COLUMNS, "123\tCCO\tethanol\textra", "found 4"),
    (EMPTY_CID, "\tCCO\tThe molecule is ethanol.", "empty CID"),
    (EMPTY_SMILES, "123\t  \tThe molecule is ethanol.", "empty SMILES for CID 123"),
    (EMPTY_TEXT, "123\tCCO\t", "empty description for CID 123"),
    (BAD_SMILES, "123\tC1CC\tA ring that never closes.", "RDKit cannot parse SMILES 'C1CC' of CID 123: syntax error"),
    (BAD_SMILES, "123\tN(C)(C)(C)(C)C\tPentavalent nitrogen.", "Explicit valence"),
]


@pytest.mark.parametrize(("kind", "bad", "fragment"), BAD_CASES)
def test_each_bad_row_is_reported_with_file_and_line(tmp_path, real_lines, kind, bad, fragment):
    # header = line 1, two good rows = lines 2-3, the bad row = line 4, one more good row = line 5
    path = _write(tmp_path, [HEADER, *real_lines[:2], bad, real_lines[2]])
    result = load_records(path)
    assert [r.cid for r in result.records] == [line.split("\t")[0] for line in real_lines[:3]]
    assert result.n_read == 4 and result.n_skipped == 1
    (problem,) = result.problems
    assert isinstance(problem, Problem)
    assert (problem.path, problem.line, problem.kind) == (str(path), 4, kind)
    assert fragment in problem.message
    assert str(problem).startswith(f"{path}:4: ")
    assert kind in result.summary()

    with pytest.raises(DataError) as err:
        load_records(path, strict=True)
    assert isinstance(err.value, ValueError)
    assert str(err.value) == str(problem)
    assert err.value.problem == problem
    assert "Traceback" not in str(err.value) and "\n" not in str(err.value)


def test_duplicate_cid_keeps_first_and_says_where(tmp_path, real_lines):
    cid, smiles, text = real_lines[0].split("\t")
    path = _write(tmp_path, [HEADER, real_lines[0], real_lines[1], f"{cid}\tCCO\t{text}", real_lines[0]])
    result = load_records(path)
    assert [r.cid for r in result.records] == [cid, real_lines[1].split("\t")[0]]
    assert [(p.line, p.kind) for p in result.problems] == [(4, DUPLICATE_CID), (5, DUPLICATE_CID)]
    assert "line 2 has it with a different SMILES" in result.problems[0].message
    assert "identical row" in result.problems[1].message
    assert result.records[0].smiles == smiles


def test_non_utf8_byte_is_reported_with_its_line(tmp_path, real_lines):
    path = tmp_path / "latin1.txt"
    bad = "99\tCCO\tCaf\u00e9 molecule".encode("latin-1")  # 0xe9 alone is not UTF-8
    path.write_bytes(b"\n".join([HEADER.encode(), real_lines[0].encode(), bad, real_lines[1].encode()]) + b"\n")
    result = load_records(path)
    assert len(result.records) == 2
    (problem,) = result.problems
    assert (problem.line, problem.kind) == (3, ENCODING)
    assert "0xe9" in problem.message and "UTF-8" in problem.message
    with pytest.raises(DataError, match=r"latin1\.txt:3: not valid UTF-8"):
        load_records(path, strict=True)


def test_blank_line_in_the_middle_is_reported(tmp_path, real_lines):
    path = _write(tmp_path, [HEADER, real_lines[0], "", real_lines[1]])
    result = load_records(path)
    assert len(result.records) == 2
    assert [(p.line, p.kind) for p in result.problems] == [(3, COLUMNS)]
    assert "empty line" in result.problems[0].message


def test_strict_stops_at_the_first_of_several(tmp_path, real_lines):
    path = _write(tmp_path, [HEADER, real_lines[0], "1\tCCO", "2\t\tx", "3\tC1CC\tx"])
    lenient = load_records(path)
    assert [p.line for p in lenient.problems] == [3, 4, 5]
    assert lenient.problem_counts() == {COLUMNS: 1, EMPTY_SMILES: 1, BAD_SMILES: 1}
    with pytest.raises(DataError, match=r":3: expected 3"):
        load_records(path, strict=True)


def test_validate_smiles_off_keeps_unparsable_rows(tmp_path, real_lines):
    path = _write(tmp_path, [HEADER, real_lines[0], "123\tC1CC\tbroken ring"])
    assert load_records(path).n_skipped == 1
    result = load_records(path, validate_smiles=False)
    assert result.n_skipped == 0 and result.records[-1].smiles == "C1CC"


def test_source_override_and_file_errors(tmp_path, real_lines):
    path = _write(tmp_path, [HEADER, real_lines[0]])
    assert load_records(path, source="chebi20/test").records[0].source == "chebi20/test"
    with pytest.raises(DataError, match="no such file"):
        load_records(tmp_path / "missing.txt")
    with pytest.raises(DataError, match=r"unknown file type '\.csv'"):
        load_records(tmp_path / "x.csv")
