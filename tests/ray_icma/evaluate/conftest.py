"""Fixtures for the evaluator tests: the bundled MolT5 prediction slices."""
from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def mol2cap_tsv() -> Path:
    """24 rows of MolT5-small's published smiles2caption predictions."""
    return DATA / "molt5_small_smiles2caption_24.tsv"


@pytest.fixture(scope="session")
def cap2mol_tsv() -> Path:
    """24 rows of MolT5-small's published caption2smiles predictions (4 unparsable outputs)."""
    return DATA / "molt5_small_caption2smiles_24.tsv"
