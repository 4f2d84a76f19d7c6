"""`ray-icma evaluate`: tables, JSON and chart for several runs; one-line errors."""
from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from ray_icma.cli import evaluate as evaluate_cli
from ray_icma.evaluate import cap2mol_metrics, read_predictions


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        """Stand-in for the root app, so `evaluate` stays a sub-command."""

    evaluate_cli.register(app)
    return app


@pytest.mark.slow  # two full evaluations + a plot
def test_two_runs_compared_with_json_and_plot(app, tmp_path, cap2mol_tsv, mol2cap_tsv, scibert_dir):
    # a second cap2mol run in JSONL: the same rows with every output replaced by the reference
    rows = read_predictions(cap2mol_tsv)
    perfect = tmp_path / "perfect.jsonl"
    perfect.write_text(
        "".join(
            json.dumps({"id": i, "task": "cap2mol", "input": x, "reference": r, "prediction": r}) + "\n"
            for i, x, r in zip(rows.ids, rows.inputs, rows.references)
        )
    )
    out_json, out_png = tmp_path / "r.json", tmp_path / "r.png"
    result = CliRunner().invoke(
        app,
        ["evaluate", str(cap2mol_tsv), str(perfect), str(mol2cap_tsv), "--tokenizer", str(scibert_dir),
         "--json", str(out_json), "--plot", str(out_png)],
        env={"COLUMNS": "160"},
    )
    assert result.exit_code == 0, result.output
    assert "Morgan FTS" in result.output and "METEOR" in result.output and "perfect" in result.output
    saved = json.loads(out_json.read_text())
    assert set(saved) == {cap2mol_tsv.stem, "perfect", mol2cap_tsv.stem}
    assert saved["perfect"]["metrics"]["exact"] == 1.0 and saved["perfect"]["rows"] == 24
    assert saved[cap2mol_tsv.stem]["metrics"] == pytest.approx(cap2mol_metrics(rows.references, rows.predictions))
    assert saved[mol2cap_tsv.stem]["task"] == "mol2cap"
    assert out_png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.tsv"], "missing.tsv: no such file"),
        (["bad.tsv"], "bad.tsv:3: expected 3 tab-separated fields, found 2"),
        (["good.tsv", "--task", "mol2cap"], "needs a 'SMILES' column"),
    ],
)
def test_user_errors_are_one_line(app, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.tsv").write_text("description\tground truth\toutput\nd\tCCO\tCCO\nd\tCCO\n")
    (tmp_path / "good.tsv").write_text("description\tground truth\toutput\nd\tCCO\tCCO\n")
    result = CliRunner().invoke(app, ["evaluate", *args])
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


def test_bad_options_are_usage_errors(app, cap2mol_tsv):
    result = CliRunner().invoke(app, ["evaluate", str(cap2mol_tsv), "--task", "smiles"])
    assert result.exit_code == 2 and "unknown task" in result.output
    result = CliRunner().invoke(app, ["evaluate", str(cap2mol_tsv), "--plot", "chart.svg"])
    assert result.exit_code == 2 and ".png" in result.output
