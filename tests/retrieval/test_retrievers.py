"""The one retriever factory: a saved GNN FAISS index gives exactly the in-process search, ids are
checked against the pool, unusable queries are reported, and names are checked."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ray_icma.data import load_records
from retrieval.encoders import GNNEncoder
from retrieval.indexes import FaissIndex
from retrieval.retrievers import build_molecule_retriever, build_text_retriever


@pytest.fixture(scope="module")
def pool(chebi20_pool_file):
    return list(load_records(chebi20_pool_file).records)[:60]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(3)
    path = tmp_path_factory.mktemp("gnn") / "gin_random.pth"
    torch.save(GNNEncoder(gnn_type="gin").state_dict(), path)
    return path


def test_saved_gnn_index_gives_the_in_process_hits(tmp_path, pool, checkpoint):
    smiles, ids = [r.smiles for r in pool], [r.cid for r in pool]
    # a saved index in another row order than the pool: hits must still be pool positions
    encoder = GNNEncoder.from_pretrained(checkpoint)
    vectors, valid = encoder.encode_smiles(smiles)
    order = np.flatnonzero(valid)[::-1]
    FaissIndex(vectors.shape[1]).add(vectors[order], ids=[ids[i] for i in order]).save(tmp_path / "index")

    in_process = build_molecule_retriever("gnn", smiles, ids, checkpoint=checkpoint)
    loaded = build_molecule_retriever("gnn", smiles, ids, checkpoint=checkpoint, index_dir=tmp_path / "index")
    queries = smiles[:10] + ["C1CC("]
    hits_a, usable_a = in_process.search(queries, 5)
    hits_b, usable_b = loaded.search(queries, 5)
    assert usable_a.tolist() == usable_b.tolist() == [True] * 10 + [False]
    np.testing.assert_array_equal(hits_a.indices, hits_b.indices)
    np.testing.assert_allclose(hits_a.scores[:10], hits_b.scores[:10], rtol=1e-5)
    assert (hits_a.indices[:10, 0] == np.arange(10)).all()  # a pool molecule's best hit is itself
    assert (hits_b.indices[10] == -1).all()


def test_saved_index_over_another_pool_is_refused(tmp_path, pool, checkpoint):
    FaissIndex(300).add(np.ones((2, 300), dtype=np.float32), ids=["not-a-cid", "nor-this"]).save(tmp_path / "other")
    with pytest.raises(ValueError, match="not in this pool"):
        build_molecule_retriever("gnn", [r.smiles for r in pool], [r.cid for r in pool], checkpoint=checkpoint, index_dir=tmp_path / "other")


@pytest.mark.parametrize("kind", ["morgan", "topological"])
def test_fingerprint_retrievers_report_unparsable_queries(pool, kind):
    retriever = build_molecule_retriever(kind, [r.smiles for r in pool], [r.cid for r in pool])
    hits, usable = retriever.search([pool[3].smiles, "not a smiles"], 4)
    assert usable.tolist() == [True, False]
    assert hits.indices[0, 0] == 3 and hits.scores[0, 0] == pytest.approx(1.0)
    assert (hits.indices[1] == -1).all()


def test_text_retriever_finds_its_own_caption(pool):
    retriever = build_text_retriever("bm25s", [r.text for r in pool], [r.cid for r in pool], show_progress=False)
    hits, usable = retriever.search([pool[7].text], 3)
    assert usable.all() and hits.indices[0, 0] == 7


def test_unknown_names_list_the_choices(pool):
    with pytest.raises(ValueError, match="morgan, topological, gnn, random"):
        build_molecule_retriever("ecfp", ["C"], ["1"])
    with pytest.raises(ValueError, match="bm25s, elasticsearch"):
        build_text_retriever("tfidf", ["a"], ["1"])
    with pytest.raises(ValueError, match="checkpoint"):
        build_molecule_retriever("gnn", ["C"], ["1"])
