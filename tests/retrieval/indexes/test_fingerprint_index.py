"""FingerprintIndex (ICMA/MolReGPT-compatible ranking) and the RandomIndex baseline."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem, DataStructs
from rdkit.Chem.Fingerprints import FingerprintMols

from retrieval.indexes import FingerprintIndex, RandomIndex


@pytest.fixture(scope="module")
def pool(chebi20_pool_file) -> pd.DataFrame:
    return pd.read_csv(chebi20_pool_file, sep="\t", dtype={"CID": str})


def _molregpt_ranking(query: str, pool_smiles: list[str], k: int):
    """MolReGPT's loop: FingerprintMol + FingerprintSimilarity per pair, stable descending sort."""
    q = FingerprintMols.FingerprintMol(Chem.MolFromSmiles(query))
    scores = [DataStructs.FingerprintSimilarity(q, FingerprintMols.FingerprintMol(Chem.MolFromSmiles(s))) for s in pool_smiles]
    order = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)[:k]  # sorted() is stable
    return order, [scores[i] for i in order]


@pytest.mark.slow  # ~40 s: the MolReGPT pairwise loop over the fixture pool
def test_topological_ranking_equals_molregpt_loop(pool, chebi20_test_file):
    queries = pd.read_csv(chebi20_test_file, sep="\t")["SMILES"].tolist()[:8]
    pool_smiles = pool["SMILES"].tolist()
    index = FingerprintIndex("topological").build(pool_smiles, pool["CID"])
    hits = index.search(queries, k=10)
    for i, query in enumerate(queries):
        order, scores = _molregpt_ranking(query, pool_smiles, 10)
        assert hits.indices[i].tolist() == order
        np.testing.assert_allclose(hits.scores[i], scores, rtol=1e-6)


def test_ties_keep_pool_order():
    index = FingerprintIndex("morgan").build(["CCO", "CCC", "CCO", "CCO"], ["a", "b", "c", "d"])
    hits = index.search(["CCO"], k=3)
    assert hits.indices[0].tolist() == [0, 2, 3]


def test_exclude_self_like_icma_start_pos(pool):
    smiles, ids = pool["SMILES"].tolist(), pool["CID"].tolist()
    index = FingerprintIndex("morgan").build(smiles, ids)
    with_self = index.search(smiles[:10], k=6)
    assert (with_self.indices[:, 0] == np.arange(10)).all()
    hits = index.search(smiles[:10], k=5, exclude_ids=ids[:10])
    assert not (hits.indices == np.arange(10)[:, None]).any()
    np.testing.assert_array_equal(hits.indices, with_self.indices[:, 1:])


def test_invalid_pool_entries_never_returned_and_bad_queries_get_empty_rows():
    index = FingerprintIndex("topological").build(["CCO", "C1CC", "CCN"], ["a", "bad", "c"])
    assert index.n_invalid == 1
    hits = index.search(["CCO", "not smiles"], k=3)
    assert 1 not in hits.indices[0] and hits.indices[0].tolist()[:2] == [0, 2] and hits.indices[0, 2] == -1
    assert hits.indices[1].tolist() == [-1, -1, -1]


def test_save_load_and_add(tmp_path, pool):
    smiles, ids = pool["SMILES"].tolist(), pool["CID"].tolist()
    index = FingerprintIndex("topological").build(smiles[:200], ids[:200])
    before = index.search(smiles[250:260], k=5)
    index.save(tmp_path)
    loaded = FingerprintIndex.load(tmp_path)
    np.testing.assert_array_equal(loaded.search(smiles[250:260], k=5).indices, before.indices)
    loaded.add(smiles[200:], ids[200:])
    full = FingerprintIndex("topological").build(smiles, ids)
    np.testing.assert_array_equal(loaded.search(smiles[:5], k=5).indices, full.search(smiles[:5], k=5).indices)
    with pytest.raises(ValueError, match="duplicate id"):
        loaded.add(["C"], [ids[0]])


def test_random_index_is_seeded_distinct_and_excludes(pool):
    smiles, ids = pool["SMILES"].tolist(), pool["CID"].tolist()
    a = RandomIndex(seed=7).build(smiles, ids).search(smiles[:20], k=10, exclude_ids=ids[:20])
    b = RandomIndex(seed=7).build(smiles, ids).search(smiles[:20], k=10, exclude_ids=ids[:20])
    c = RandomIndex(seed=8).build(smiles, ids).search(smiles[:20], k=10, exclude_ids=ids[:20])
    np.testing.assert_array_equal(a.indices, b.indices)
    assert not np.array_equal(a.indices, c.indices)
    assert all(len(set(row)) == 10 and i not in row for i, row in enumerate(a.indices.tolist()))
    assert (a.indices >= 0).all() and (a.indices < len(smiles)).all()
