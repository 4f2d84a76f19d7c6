"""FaissIndex: exact search equals NumPy brute force; approximate kinds keep recall; ids,
self-exclusion, incremental adds and persistence."""
from __future__ import annotations

import numpy as np
import pytest

from retrieval.indexes import FaissIndex, faiss_has_gpu, normalize


def _clustered(n: int, dim: int, seed: int, centers: int = 40) -> np.ndarray:
    """Gaussian mixture: like real embeddings, neighbours live in clusters."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((centers, dim)) * 3
    return (means[rng.integers(0, centers, n)] + rng.standard_normal((n, dim))).astype(np.float32)


def _brute_force(pool: np.ndarray, queries: np.ndarray, k: int):
    scores = normalize(queries) @ normalize(pool).T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


def test_flat_equals_numpy_brute_force():
    rng = np.random.default_rng(0)
    pool, queries = rng.standard_normal((2000, 32)), rng.standard_normal((50, 32))
    index = FaissIndex(32, "flat", device="cpu").add(pool)
    hits = index.search(queries, k=10)
    order, scores = _brute_force(pool, queries, 10)
    np.testing.assert_array_equal(hits.indices, order)
    np.testing.assert_allclose(hits.scores, scores, rtol=1e-5, atol=1e-6)
    assert hits.indices.dtype == np.int64 and hits.scores.dtype == np.float32


def test_scores_are_cosine_whatever_the_norm():
    index = FaissIndex(3).add(np.array([[10.0, 0, 0], [0, 0.1, 0]]), ids=["x", "y"])
    hits = index.search(np.array([[2.0, 2.0, 0]]), k=2)
    np.testing.assert_allclose(hits.scores[0], [np.sqrt(0.5)] * 2, rtol=1e-6)


def test_self_exclusion_drops_only_the_query_itself():
    pool = _clustered(500, 16, seed=1)
    ids = [f"cid{i}" for i in range(500)]
    index = FaissIndex(16).add(pool, ids)
    plain = index.search(pool[:20], k=5)
    assert (plain.indices[:, 0] == np.arange(20)).all()
    hits = index.search(pool[:20], k=5, exclude_ids=ids[:20])
    np.testing.assert_array_equal(hits.indices, index.search(pool[:20], k=6).indices[:, 1:])
    partial = index.search(pool[:2], k=5, exclude_ids=[None, "not-indexed"])
    np.testing.assert_array_equal(partial.indices, plain.indices[:2])
    with pytest.raises(ValueError, match="one per query"):
        index.search(pool[:2], k=5, exclude_ids=["cid0"])


def test_zero_vectors_do_not_make_nans():
    pool = np.vstack([np.zeros((2, 8)), np.eye(8)])
    index = FaissIndex(8).add(pool)
    hits = index.search(np.vstack([np.zeros(8), np.eye(8)[0]]), k=3)
    assert np.isfinite(hits.scores).all()
    assert (hits.scores[0] == 0).all() and hits.indices[1, 0] == 2 and hits.scores[1, 0] == pytest.approx(1.0)


def test_k_larger_than_index_pads():
    hits = FaissIndex(4).add(np.eye(4)[:2]).search(np.eye(4)[:1], k=4)
    assert hits.indices[0].tolist()[2:] == [-1, -1] and np.isneginf(hits.scores[0, 2:]).all()
    assert FaissIndex(4).search(np.eye(4)[:1], k=2).indices.tolist() == [[-1, -1]]


@pytest.mark.parametrize("kind, params", [("ivf", {"nlist": 40, "nprobe": 8}), ("hnsw", {"M": 32, "ef_search": 64})])
def test_approximate_recall_at_10(kind, params):
    data = _clustered(4200, 64, seed=2)
    pool, queries = data[:4000], data[4000:]  # held-out queries from the same clusters
    exact = FaissIndex(64, "flat").add(pool).search(queries, k=10)
    approx = FaissIndex(64, kind, device="cpu", **params).add(pool).search(queries, k=10)
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx.indices, exact.indices)])
    assert recall >= 0.9, f"{kind} recall@10 {recall:.3f}"


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_add_appends_without_rebuild(kind):
    pool = _clustered(3000, 32, seed=4)
    index = FaissIndex(32, kind, nlist=30, nprobe=30, device="cpu").add(pool[:2500], [f"a{i}" for i in range(2500)])
    if kind == "ivf":
        centroids = index._index.quantizer.reconstruct_n(0, 30).copy()
    index.add(pool[2500:], [f"b{i}" for i in range(500)])
    assert len(index) == 3000 and index.ids[2500] == "b0"
    if kind == "ivf":  # the trained cells are kept, not re-learnt
        np.testing.assert_array_equal(index._index.quantizer.reconstruct_n(0, 30), centroids)
    hits = index.search(pool[2500:2600], k=1)
    assert (hits.indices[:, 0] == np.arange(2500, 2600)).mean() >= 0.95
    if kind == "flat":
        one_shot = FaissIndex(32).add(pool)
        np.testing.assert_array_equal(index.search(pool[:50], k=10).indices, one_shot.search(pool[:50], k=10).indices)


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_save_load_roundtrip(tmp_path, kind):
    pool = _clustered(1000, 16, seed=5)
    index = FaissIndex(16, kind, nlist=10, nprobe=3, M=16, ef_search=40, device="cpu").add(pool, [f"m{i}" for i in range(1000)])
    before = index.search(pool[:30], k=7)
    index.save(tmp_path / "idx")
    loaded = FaissIndex.load(tmp_path / "idx", device="cpu")
    after = loaded.search(pool[:30], k=7)
    np.testing.assert_array_equal(before.indices, after.indices)
    assert loaded.ids == index.ids and loaded.kind == kind and loaded.params == index.params
    loaded.add(pool[:1] + 1, ["new"])  # still appendable after loading
    assert len(loaded) == 1001
    loaded.build(pool[:500], [f"r{i}" for i in range(500)])  # build replaces
    assert len(loaded) == 500 and loaded.ids[0] == "r0"


def test_bad_inputs_have_clear_errors(tmp_path):
    index = FaissIndex(8).add(np.eye(8), [str(i) for i in range(8)])
    with pytest.raises(ValueError, match="duplicate id"):
        index.add(np.eye(8)[:1], ["3"])
    with pytest.raises(ValueError, match="width 4"):
        index.add(np.ones((2, 4)))
    with pytest.raises(ValueError, match="needs at least"):
        FaissIndex(8, "ivf", nlist=100).add(np.random.default_rng(0).standard_normal((50, 8)))
    with pytest.raises(ValueError, match="kind must be"):
        FaissIndex(8, "lsh")
    with pytest.raises(FileNotFoundError, match="index.faiss"):
        FaissIndex.load(tmp_path)
    if not faiss_has_gpu():
        with pytest.raises(RuntimeError, match="GPU build of faiss"):
            FaissIndex(8, device="gpu")
    assert FaissIndex(8, "hnsw", device="auto").device == "cpu"  # HNSW has no GPU version
