"""Report helpers: tables, JSON, and the comparison chart."""
from __future__ import annotations

import json
import math
import re

import pytest
from rich.console import Console

from ray_icma.evaluate import plot_runs, print_table, run_names, write_json

RESULTS = {
    "icma": {"task": "mol2cap", "rows": 3, "metrics": {"bleu2": 0.61, "bleu4": 0.5, "rouge1": 0.6, "rouge2": 0.5, "rougeL": 0.55, "meteor": 0.6}},
    "base": {"task": "mol2cap", "rows": 3, "metrics": {"bleu2": 0.52, "bleu4": 0.4, "rouge1": 0.6, "rouge2": 0.4, "rougeL": 0.5, "meteor": 0.5}},
    "c2m": {"bleu": 0.7, "exact": 0.1, "levenshtein": 20.5, "maccs_fts": 0.8, "rdk_fts": 0.6, "morgan_fts": math.nan, "validity": 0.7},
}


def test_table_has_a_section_per_task_and_marks_the_best():
    console = Console(record=True, width=120)
    print_table(RESULTS, console=console)
    text = console.export_text(clear=False)
    assert text.index("mol2cap") < text.index("cap2mol")  # bare metrics dict -> task inferred from keys
    assert "BLEU-2" in text and "0.610" in text and "Levenshtein" in text and "n/a" in text
    html = console.export_html(inline_styles=True)
    assert re.search(r'font-weight: bold[^>]*>0\.610<', html)  # best BLEU-2 of the two runs
    assert not re.search(r'font-weight: bold[^>]*>0\.520<', html)


def test_json_turns_nan_into_null(tmp_path):
    out = write_json(RESULTS, tmp_path / "sub" / "r.json")
    back = json.loads(out.read_text())
    assert back["c2m"]["morgan_fts"] is None and back["icma"]["metrics"]["bleu2"] == 0.61


def test_plot_writes_a_png(tmp_path):
    out = plot_runs(RESULTS, tmp_path / "runs.png", title="test")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    with pytest.raises(ValueError):
        plot_runs({}, tmp_path / "none.png")


def test_run_names_disambiguate_equal_stems():
    assert run_names(["a/preds.tsv", "b/preds.tsv", "c/other.jsonl"]) == ["a/preds.tsv", "b/preds.tsv", "other"]
