"""`ray-icma data inspect|convert|download` through Typer's runner (the real command functions)."""
from __future__ import annotations

import hashlib
import json

import pytest
import typer
from typer.testing import CliRunner

from ray_icma.cli import data as data_cli
from ray_icma.data import DATASETS, load_records


@pytest.fixture(scope="module")
def cli():
    app = typer.Typer()
    data_cli.register(app)

    @app.callback()
    def _root() -> None:  # keeps "data" a sub-command even with one group
        pass

    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["data", *map(str, args)])


def _bad_file(tmp_path, chebi20_test_file):
    lines = chebi20_test_file.read_text(encoding="utf-8").splitlines()
    path = tmp_path / "bad.txt"
    path.write_text("\n".join([lines[0], lines[1], "42\tC1CC\tbroken ring", lines[2], lines[1]]) + "\n", encoding="utf-8")
    return path


def test_inspect_prints_counts(cli, chebi20_test_file):
    result = cli("inspect", chebi20_test_file, "--strict")
    assert result.exit_code == 0, result.output
    out = result.output
    records = load_records(chebi20_test_file).records
    mean_chars = sum(len(r.text) for r in records) / len(records)
    for label, value in [("rows", "200"), ("unique CIDs", "200"), ("valid SMILES", "200")]:
        assert any(label in line and value in line for line in out.splitlines()), (label, out)
    assert f"{mean_chars:.1f} chars" in out
    assert "0 skipped" in out


def test_inspect_lists_problems_and_strict_exits_1(cli, tmp_path, chebi20_test_file):
    path = _bad_file(tmp_path, chebi20_test_file)
    lenient = cli("inspect", path)
    assert lenient.exit_code == 0
    assert f"{path}:3\tbad_smiles\tRDKit cannot parse SMILES 'C1CC' of CID 42" in lenient.output
    assert f"{path}:5\tduplicate_cid\t" in lenient.output
    strict = cli("inspect", path, "--strict")
    assert strict.exit_code == 1
    assert f"{path}:3" in strict.output


def test_inspect_missing_file_is_one_line_error(cli, tmp_path):
    result = cli("inspect", tmp_path / "missing.txt")
    assert result.exit_code == 1
    assert "no such file" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_convert_tsv(cli, tmp_path, chebi20_test_file, suffix):
    path = _bad_file(tmp_path, chebi20_test_file)
    out = tmp_path / f"out{suffix}"
    result = cli("convert", path, out, "--source", "chebi20/test")
    assert result.exit_code == 0, result.output
    assert "2 loaded, 2 skipped" in result.output
    back = load_records(out)
    assert [r.cid for r in back.records] == [r.cid for r in load_records(path).records]
    assert {r.source for r in back.records} == {"chebi20/test"}
    if suffix == ".jsonl":
        assert json.loads(out.read_text(encoding="utf-8").splitlines()[0])["source"] == "chebi20/test"


def test_convert_strict_stops_and_writes_nothing(cli, tmp_path, chebi20_test_file):
    path = _bad_file(tmp_path, chebi20_test_file)
    result = cli("convert", path, tmp_path / "out.jsonl", "--strict")
    assert result.exit_code == 1
    assert f"{path}:3: RDKit cannot parse" in result.output
    assert not (tmp_path / "out.jsonl").exists()


def test_download_checksum_mismatch_fails_clearly(cli, range_server, tmp_path, chebi20_test_file, chebi20_pool_file):
    """The 200/300-row fixtures are not the real splits, so the recorded sha256 must reject them."""
    (range_server.root / "train.txt").write_bytes(chebi20_pool_file.read_bytes())
    (range_server.root / "validation.txt").write_bytes(chebi20_pool_file.read_bytes())
    (range_server.root / "test.txt").write_bytes(chebi20_test_file.read_bytes())
    result = cli("download", "chebi20", "--to", tmp_path / "root", "--base-url", range_server.url, "--no-progress")
    assert result.exit_code == 1
    assert "warning:" in result.output and "no sha256 on record" in result.output  # train.txt
    assert "sha256 mismatch" in result.output and f"{range_server.url}/validation.txt" in result.output
    folder = tmp_path / "root" / "chebi20"
    assert (folder / "train.txt").is_file()  # unverifiable but kept
    assert not (folder / "validation.txt").exists() and not (folder / "validation.txt.part").exists()


def test_download_network_failure_names_url(cli, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = cli("download", "chebi20", "--to", tmp_path, "--base-url", f"http://127.0.0.1:{port}", "--no-progress")
    assert result.exit_code == 1
    assert f"cannot download http://127.0.0.1:{port}/train.txt" in result.output
    assert "Traceback" not in result.output


def test_download_unknown_name_is_a_usage_error(cli, tmp_path):
    result = cli("download", "chebi21", "--to", tmp_path)
    assert result.exit_code == 2
    assert "chebi20" in result.output


@pytest.mark.shared
def test_download_real_files_from_local_mirror(cli, range_server, tmp_path, shared_dir):
    """Serving the real validation/test files: both pass their recorded sha256 and load completely."""
    for name in ("validation.txt", "test.txt"):
        (range_server.root / name).write_bytes((shared_dir / "data" / "chebi20" / name).read_bytes())
    (range_server.root / "train.txt").write_bytes((shared_dir / "data" / "chebi20" / "validation.txt").read_bytes())
    result = cli("download", "chebi20", "--to", tmp_path, "--base-url", range_server.url, "--no-progress")
    assert result.exit_code == 0, result.output
    for name in ("validation.txt", "test.txt"):
        got = (tmp_path / "chebi20" / name).read_bytes()
        assert hashlib.sha256(got).hexdigest() == next(f.sha256 for f in DATASETS["chebi20"].files if f.name == name)
