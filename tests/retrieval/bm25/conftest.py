"""Fixtures for the BM25 tests: captions from the bundled ChEBI-20 rows and ES index clean-up.

Plain helpers live in ``bm25_test_helpers`` (``conftest`` module names clash across test folders).
"""
from __future__ import annotations

import uuid

import pytest
from bm25_test_helpers import delete_test_indices, read_captions


@pytest.fixture(scope="session")
def pool_captions(chebi20_pool_file) -> list[str]:
    return read_captions(chebi20_pool_file)


@pytest.fixture(scope="session")
def query_captions(chebi20_test_file) -> list[str]:
    return read_captions(chebi20_test_file)


@pytest.fixture
def es_index_name(es_url):
    """A fresh ``test-bm25-...`` alias name; the alias and every index behind it are deleted afterwards."""
    name = f"test-bm25-{uuid.uuid4().hex[:10]}"
    yield name
    delete_test_indices(es_url, name)
