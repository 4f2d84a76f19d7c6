"""MolT5-small's published ChEBI-20 predictions (../shared): our numbers equal the reference run's
to 3 decimals (shared/README.md: MolT5's scripts with RDKit 2026.9 and Debian WordNet 3.0)."""
from __future__ import annotations

import pytest

from ray_icma.evaluate import evaluate_file

pytestmark = pytest.mark.shared


def test_mol2cap_reference(shared_dir):
    result = evaluate_file(
        shared_dir / "reference/molt5/molt5-small-smiles2caption.txt",
        tokenizer=shared_dir / "tokenizers/scibert_scivocab_uncased",
    )
    assert result["task"] == "mol2cap" and result["rows"] == 3300
    assert {k: round(v, 3) for k, v in result["metrics"].items()} == {
        "bleu2": 0.532, "bleu4": 0.445, "rouge1": 0.621, "rouge2": 0.470, "rougeL": 0.564, "meteor": 0.557,
    }


def test_cap2mol_reference(shared_dir):
    result = evaluate_file(shared_dir / "reference/molt5/molt5-small-caption2smiles.txt")
    assert result["task"] == "cap2mol" and result["rows"] == 3300
    assert {k: round(v, 3) for k, v in result["metrics"].items()} == {
        "bleu": 0.749, "exact": 0.082, "levenshtein": 28.816, "maccs_fts": 0.780,
        "rdk_fts": 0.653, "morgan_fts": 0.601, "validity": 0.725,
    }
