"""`ray-icma index captions`: the caption-index step of the index-building RayJob."""
from __future__ import annotations

import pytest
import requests
from typer.testing import CliRunner

from ray_icma.cli.app import app

runner = CliRunner()


@pytest.mark.es
def test_elasticsearch_rebuild_replaces_without_duplicates(es_url, chebi20_pool_file):
    alias = "test-cli-captions"
    try:
        for _ in range(2):  # a re-run swaps a fresh index in: still one copy of each caption
            result = runner.invoke(app, ["index", "captions", "--data", str(chebi20_pool_file),
                                         "--backend", "elasticsearch", "--url", es_url, "--index-name", alias])
            assert result.exit_code == 0, result.output
            requests.post(f"{es_url}/{alias}/_refresh", timeout=10)
            assert requests.get(f"{es_url}/{alias}/_count", timeout=10).json()["count"] == 300
    finally:
        requests.delete(f"{es_url}/{alias}-*", timeout=10)


def test_bm25s_saves_a_loadable_index(tmp_path, chebi20_pool_file):
    from retrieval.bm25 import BM25Index

    result = runner.invoke(app, ["index", "captions", "--data", str(chebi20_pool_file), "--out", str(tmp_path / "bm25")])
    assert result.exit_code == 0, result.output
    index = BM25Index.load(tmp_path / "bm25")
    assert len(index) == 300


def test_dead_elasticsearch_is_one_clear_line(chebi20_pool_file):
    result = runner.invoke(app, ["index", "captions", "--data", str(chebi20_pool_file),
                                 "--backend", "elasticsearch", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert "127.0.0.1:9" in result.output and "not reachable" in result.output
    assert "Traceback" not in result.output
