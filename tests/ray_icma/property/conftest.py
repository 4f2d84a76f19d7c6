"""MoleculeNet fixtures: a few real rows of ICMA's files, copied into tests/assets (no ../shared needed)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ASSETS = Path(__file__).resolve().parents[2] / "assets"


@pytest.fixture(scope="session")
def mn_assets() -> Path:
    return ASSETS


@pytest.fixture()
def clintox_root(tmp_path: Path) -> Path:
    """A data root holding clintox/{train,validation,test}.csv built from the fixtures."""
    folder = tmp_path / "clintox"
    folder.mkdir()
    shutil.copy(ASSETS / "moleculenet_clintox_train_30.csv", folder / "train.csv")
    shutil.copy(ASSETS / "moleculenet_clintox_test_20.csv", folder / "test.csv")
    lines = (ASSETS / "moleculenet_clintox_test_20.csv").read_text().splitlines(keepends=True)
    (folder / "validation.csv").write_text("".join(lines[:6]))
    return tmp_path
