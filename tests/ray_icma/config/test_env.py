"""ray_icma.env: every RAY_ICMA_* name used anywhere in the repository is documented once, the
README table is the generated one, and RAY_ICMA_HOME means the cache root everywhere."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from ray_icma import env

ROOT = Path(__file__).resolve().parents[3]
SOURCES = ("ray_icma", "retrieval", "serve", "scripts", "tests", "cluster", "benchmarks", "configs", ".ci")
NAME = re.compile(r"RAY_ICMA_[A-Z0-9_]*[A-Z0-9]")


def _names_in_repo() -> dict[str, str]:
    found: dict[str, str] = {}
    for folder in SOURCES:
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and path.suffix in {".py", ".sh", ".yaml", ".yml", ""} and "results" not in path.parts:
                try:
                    text = path.read_text(encoding="utf-8")
                except (UnicodeDecodeError, OSError):
                    continue
                for name in NAME.findall(text):
                    found.setdefault(name, str(path.relative_to(ROOT)))
    return found


def test_every_variable_in_the_repository_is_documented():
    documented = {v.name for v in env.VARIABLES}
    missing = {name: where for name, where in _names_in_repo().items() if name not in documented}
    assert not missing, f"undocumented environment variables (add them to ray_icma.env.VARIABLES): {missing}"


def test_readme_table_is_the_generated_one():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert env.markdown_table() in readme, "README's environment table is stale: paste ray_icma.env.markdown_table()"


def test_home_is_the_cache_root_everywhere(monkeypatch, tmp_path):
    from ray_icma.evaluate.wordnet import nltk_data_dir
    from ray_icma.models.smollm2 import cache_dir

    monkeypatch.setenv("RAY_ICMA_HOME", str(tmp_path))
    assert env.cache_home() == tmp_path
    assert nltk_data_dir() == tmp_path / "nltk_data"
    assert cache_dir() == tmp_path


def test_serve_paths_resolve_against_base_dir_not_home(monkeypatch, tmp_path):
    from serve.configs import ICMAServingArgs

    (tmp_path / "pool.tsv").write_text("x")
    monkeypatch.setenv("RAY_ICMA_HOME", "/nonexistent-cache")
    monkeypatch.setenv("RAY_ICMA_BASE_DIR", str(tmp_path))
    args = ICMAServingArgs.model_validate({"retriever": {"pool": {"path": "pool.tsv"}}})
    assert Path(args.retriever.pool.path) == tmp_path / "pool.tsv"


def test_unknown_switch_is_refused():
    with pytest.raises(KeyError, match="not a documented"):
        env.get("RAY_ICMA_" + "NOPE")
