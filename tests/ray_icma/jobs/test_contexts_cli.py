"""`ray-icma contexts build|show` end to end on the fixture files."""
from __future__ import annotations

import json

from typer.testing import CliRunner

from ray_icma.cli.app import app
from ray_icma.jobs.contexts import read_contexts

runner = CliRunner()


def test_build_then_show(tmp_path, chebi20_test_file, chebi20_pool_file):
    out = tmp_path / "test_cap2mol.jsonl"
    result = runner.invoke(
        app,
        ["contexts", "build", "--task", "cap2mol", "--queries", str(chebi20_test_file), "--pool", str(chebi20_pool_file),
         "--retriever", "bm25-icma", "--out", str(out), "--k", "5"],
    )
    assert result.exit_code == 0, result.output
    assert "200 queries" in result.output and "bm25-icma" in result.output
    table = read_contexts(out)
    assert len(table) == 200 and table.meta["k"] == 5 and table.meta["pool"] == str(chebi20_pool_file)

    first = next(iter(table))
    shown = runner.invoke(app, ["contexts", "show", str(out), "--id", first, "--n", "2"])
    assert shown.exit_code == 0, shown.output
    best = table[first][0][0]
    assert best in shown.output and "prompt order" in shown.output
    # prompt order: the best neighbour is printed last
    assert shown.output.rindex(best) > shown.output.rindex(table[first][0][4])


def test_build_reports_bad_query_smiles(tmp_path, chebi20_pool_file):
    queries = tmp_path / "queries.txt"
    queries.write_text("CID\tSMILES\tdescription\n1\tCCO\tThe molecule is ethanol.\n2\tC1CC(\tA broken one.\n")
    out = tmp_path / "q.jsonl"
    result = runner.invoke(
        app, ["contexts", "build", "--task", "mol2cap", "--queries", str(queries), "--pool", str(chebi20_pool_file), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "1 query SMILES could not be used" in result.output and "2" in result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["query_id"] for r in rows] == ["1", "2"] and rows[1]["neighbors"] == [] and len(rows[0]["neighbors"]) == 10


def test_user_errors_are_one_line(tmp_path, chebi20_test_file, chebi20_pool_file):
    out = tmp_path / "x.jsonl"
    wrong = runner.invoke(
        app, ["contexts", "build", "--task", "mol2cap", "--queries", str(chebi20_test_file), "--pool", str(chebi20_pool_file),
              "--retriever", "bm25", "--out", str(out)]
    )
    assert wrong.exit_code == 2 and "does not serve task mol2cap" in wrong.output  # a bad choice: usage error
    missing = runner.invoke(
        app, ["contexts", "build", "--task", "mol2cap", "--queries", str(tmp_path / "none.txt"), "--pool", str(chebi20_pool_file), "--out", str(out)]
    )
    assert missing.exit_code == 1 and "Traceback" not in missing.output
    unknown = runner.invoke(app, ["contexts", "show", str(tmp_path / "none.jsonl"), "--id", "1"])
    assert unknown.exit_code == 1 and "not found" in unknown.output
