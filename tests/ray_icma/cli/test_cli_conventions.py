"""Conventions every `ray-icma` command follows: SMILES survive printing, usage errors exit 2,
`--version`, and `-v`/`-q` drive a real logging configuration (README "CLI")."""
from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from typer.testing import CliRunner

import ray_icma
from ray_icma.cli.app import app
from tests.conftest import ROOT, require_module

SKATOLE = "Cc1c[nH]c2ccccc12"  # 3-methylindole: `[nH]` is what rich markup used to eat
POOL_ROWS = [
    ("1", SKATOLE, "The molecule is a methylindole [a skatole] carrying a methyl group at position 3."),
    ("2", "c1ccc2[nH]ccc2c1", "The molecule is indole, a [nH]-containing bicyclic aromatic."),
    ("3", "Cc1cc2ccccc2[nH]1", "The molecule is 2-methylindole."),
    ("4", "CC(=O)Oc1ccccc1C(=O)O", "The molecule is aspirin."),
    ("5", "C[C@@H](N)C(=O)O", "The molecule is L-alanine."),
]


def _tsv(path: Path, rows) -> Path:
    path.write_text("CID\tSMILES\tdescription\n" + "".join("\t".join(r) + "\n" for r in rows))
    return path


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The installed console script in a child process: real stderr, real logging set-up."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    exe = Path(sys.executable).with_name("ray-icma")
    return subprocess.run([str(exe), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_version_is_the_package_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"ray-icma {ray_icma.__version__}"
    assert ray_icma.__version__ == version("ray-icma")  # pyproject reads it from ray_icma/__init__.py


def test_contexts_show_prints_smiles_with_brackets(tmp_path):
    require_module("rdkit")
    pool = _tsv(tmp_path / "pool.tsv", POOL_ROWS)
    out = tmp_path / "ctx.jsonl"
    runner = CliRunner()
    built = runner.invoke(app, ["contexts", "build", "--task", "mol2cap", "--queries", str(pool), "--pool", str(pool),
                                "--out", str(out), "--retriever", "morgan", "--k", "4"])
    assert built.exit_code == 0, built.output
    shown = runner.invoke(app, ["contexts", "show", str(out), "--id", "3", "--pool", str(pool), "--n", "2"])
    assert shown.exit_code == 0, shown.output
    # the neighbours table and the prompt examples both quote pool SMILES verbatim
    assert SKATOLE in shown.output and "c1ccc2[nH]ccc2c1" in shown.output
    assert shown.output.count("[nH]") >= 3


def test_caption_brackets_survive_in_the_cap2mol_table(tmp_path):
    require_module("bm25s")
    pool = _tsv(tmp_path / "pool.tsv", POOL_ROWS)
    out = tmp_path / "ctx.jsonl"
    runner = CliRunner()
    assert runner.invoke(app, ["contexts", "build", "--task", "cap2mol", "--queries", str(pool), "--pool", str(pool),
                               "--out", str(out)]).exit_code == 0
    shown = runner.invoke(app, ["contexts", "show", str(out), "--id", "2", "--pool", str(pool)])
    assert shown.exit_code == 0, shown.output
    assert "[a skatole]" in shown.output


BAD_CHOICES = {
    "contexts build --task": ["contexts", "build", "--task", "mol2txt", "--queries", "q", "--pool", "p", "--out", "o"],
    "contexts build --retriever": ["contexts", "build", "--task", "mol2cap", "--retriever", "bm25", "--queries", "q",
                                   "--pool", "p", "--out", "o"],
    "contexts show --strategy": ["contexts", "show", "ctx.jsonl", "--id", "1", "--strategy", "best"],
    "generate --task": ["generate", "--task", "caption", "--queries", "q", "--out", "o"],
    "index build --kind": ["index", "build", "--data", "d", "--checkpoint", "c", "--out", "o", "--kind", "lsh"],
    "index build --gnn-type": ["index", "build", "--data", "d", "--checkpoint", "c", "--out", "o", "--gnn-type", "mlp"],
    "index captions --backend": ["index", "captions", "--data", "{readme}", "--backend", "solr"],
    "evaluate --task": ["evaluate", "{readme}", "--task", "translate"],
    "pipeline --rerun": ["pipeline", "{quickstart}", "--rerun", "bake"],
    "data download NAME": ["data", "download", "chebi21"],
    "property inspect DATASET": ["property", "inspect", "muv"],
    "property split --format": ["property", "split", "bbbp", "--out", "o", "--format", "csv"],
    "property predict --split": ["property", "predict", "bbbp", "CCO", "--split", "random"],
}


@pytest.mark.parametrize("case", sorted(BAD_CHOICES))
def test_a_bad_choice_is_a_usage_error_exit_2_in_every_command(case):
    args = [a.format(readme=ROOT / "README.md", quickstart=ROOT / "configs" / "pipeline" / "quickstart.yaml")
            for a in BAD_CHOICES[case]]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, (case, result.exit_code, result.output)
    assert "Invalid value" in result.output and "Traceback" not in result.output


def test_a_failed_run_exits_1_with_one_line(tmp_path):
    result = CliRunner().invoke(app, ["pipeline", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and "Traceback" not in result.output


def test_warnings_go_through_logging_and_quiet_silences_them(tmp_path):
    require_module("rdkit")
    preds = tmp_path / "preds.txt"  # MolT5 cap2mol TSV; the second reference SMILES does not parse
    preds.write_text("description\tground truth\toutput\n"
                     f"The molecule is skatole.\t{SKATOLE}\t{SKATOLE}\nA broken one.\tC1CC(\tCCO\n")
    default = _cli("evaluate", str(preds), cwd=tmp_path)
    assert default.returncode == 0, default.stderr
    # formatted by the CLI's handler (level and logger), not a bare line from Python's last-resort handler
    assert "WARNING ray_icma.evaluate.molecule_metrics: 1 reference SMILES do not parse" in default.stderr
    assert "INFO" not in default.stderr
    quiet = _cli("-q", "evaluate", str(preds), cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert "do not parse" not in quiet.stderr and "Validity" in quiet.stdout


def test_verbose_shows_info(tmp_path):
    require_module("rdkit")
    pool = _tsv(tmp_path / "pool.tsv", POOL_ROWS)
    args = ["contexts", "build", "--task", "mol2cap", "--queries", str(pool), "--pool", str(pool), "--k", "2"]
    default = _cli(*args, "--out", str(tmp_path / "a.jsonl"), cwd=tmp_path)
    assert default.returncode == 0, default.stderr
    assert "record(s) from" not in default.stderr
    verbose = _cli("-v", *args, "--out", str(tmp_path / "b.jsonl"), cwd=tmp_path)
    assert verbose.returncode == 0, verbose.stderr
    assert f"INFO ray_icma.cli._records: pool: 5 record(s) from {pool}" in verbose.stderr


def test_help_texts_are_not_markup():
    # `[key=value ...]`-style text in help must print as written
    result = CliRunner().invoke(app, ["pipeline", "--help"])
    assert result.exit_code == 0
    assert "dotted.key=value" in result.output
