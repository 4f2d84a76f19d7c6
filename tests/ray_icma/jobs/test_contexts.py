"""build_contexts / read_contexts on real ChEBI-20 rows with the real retrievers."""
from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pytest

from ray_icma.data import MoleculeRecord, load_records
from ray_icma.jobs.contexts import ContextsFileError, build_contexts, meta_path, parse_retriever, read_contexts


@pytest.fixture(scope="module")
def test_records(chebi20_test_file):
    return load_records(chebi20_test_file).records


@pytest.fixture(scope="module")
def pool_records(chebi20_pool_file):
    return load_records(chebi20_pool_file).records


def topological_fp(smiles):
    """ICMA / MolReGPT's fingerprint, computed the official way (one molecule at a time)."""
    from rdkit import Chem
    from rdkit.Chem.Fingerprints import FingerprintMols

    return FingerprintMols.FingerprintMol(Chem.MolFromSmiles(smiles))


def assert_well_formed(table, queries, pool, k):
    pool_ids = {r.cid for r in pool}
    assert list(table) == [q.cid for q in queries]
    for query in queries:
        ids, scores = table[query.cid]
        assert len(ids) == len(scores) == min(k, len(pool_ids - {query.cid}))
        assert query.cid not in ids
        assert set(ids) <= pool_ids and len(set(ids)) == len(ids)
        assert scores == sorted(scores, reverse=True)


def test_topological_matches_icma_pairwise_scores(test_records, pool_records):
    queries = test_records[:20]
    table = build_contexts(queries, pool_records, "mol2cap", "topological", k=10)
    assert_well_formed(table, queries, pool_records, 10)
    from rdkit import DataStructs

    pool_fps = {r.cid: topological_fp(r.smiles) for r in pool_records}
    for query in queries[:5]:
        ids, scores = table[query.cid]
        query_fp = topological_fp(query.smiles)
        brute = sorted((DataStructs.FingerprintSimilarity(query_fp, fp) for fp in pool_fps.values()), reverse=True)
        assert scores == pytest.approx(brute[:10], abs=1e-6)
        for cid, score in zip(ids, scores):
            assert DataStructs.FingerprintSimilarity(query_fp, pool_fps[cid]) == pytest.approx(score, abs=1e-6)


def test_morgan_and_random_on_all_fixture_queries(test_records, pool_records):
    morgan = build_contexts(test_records, pool_records, "mol2cap", "morgan", k=10)
    assert_well_formed(morgan, test_records, pool_records, 10)
    assert morgan.task == "mol2cap" and morgan.retriever == "morgan"
    assert morgan.meta["n_queries"] == 200 and morgan.meta["n_pool"] == 300 and morgan.meta["n_invalid_queries"] == 0

    random_a = build_contexts(test_records, pool_records, "mol2cap", "random", k=10, seed=1)
    random_ids = {q.cid: random_a[q.cid][0] for q in test_records}
    assert random_a == build_contexts(test_records, pool_records, "mol2cap", "random", k=10, seed=1)
    random_b = build_contexts(test_records, pool_records, "mol2cap", "random", k=10, seed=2)
    assert any(random_b[cid][0] != ids for cid, ids in random_ids.items())
    # a structure-aware retriever finds closer molecules than chance
    top1 = lambda table: np.mean([table[q.cid][1][0] for q in test_records])  # noqa: E731
    assert top1(morgan) > 0.3
    overlap = np.mean([len(set(morgan[q.cid][0]) & set(random_a[q.cid][0])) for q in test_records])
    assert overlap < 1.0


def test_pool_equal_to_queries_never_returns_the_query(pool_records):
    table = build_contexts(pool_records, pool_records, "mol2cap", "morgan", k=5)
    assert_well_formed(table, pool_records, pool_records, 5)
    assert table.meta["n_queries_in_pool"] == len(pool_records)
    # the same CID coming from another split is excluded too
    renamed = [replace(r, source="other/split") for r in pool_records[:10]]
    other = build_contexts(renamed, pool_records, "cap2mol", "bm25", k=5)
    assert_well_formed(other, renamed, pool_records, 5)


def test_bm25_variants_for_cap2mol(test_records, pool_records):
    import rank_bm25

    queries = test_records[:30]
    standard = build_contexts(queries, pool_records, "cap2mol", "bm25", k=10)
    icma = build_contexts(queries, pool_records, "cap2mol", "bm25-icma", k=10)
    assert_well_formed(standard, queries, pool_records, 10)
    assert_well_formed(icma, queries, pool_records, 10)

    def icma_tokens(text):  # ICMA's remove_punctuation + split(" ")
        for old, new in (("-", " "), (",", " "), (".", ""), ("(", " "), (")", " ")):
            text = text.replace(old, new)
        return re.sub(r" +", " ", text).split(" ")

    bm25 = rank_bm25.BM25Okapi([icma_tokens(r.text) for r in pool_records])
    for query in queries[:5]:
        expected = sorted(bm25.get_scores(icma_tokens(query.text)), reverse=True)[:10]
        assert icma[query.cid][1] == pytest.approx(expected, rel=1e-5)


@pytest.mark.es
def test_bm25_elasticsearch(es_url, test_records, pool_records):
    queries = test_records[:10]
    table = build_contexts(queries, pool_records, "cap2mol", f"bm25-es:{es_url}", k=10)
    assert_well_formed(table, queries, pool_records, 10)
    standard = build_contexts(queries, pool_records, "cap2mol", "bm25", k=10)
    # same tokenizer family: the best hit agrees for most captions
    assert sum(table[q.cid][0][0] == standard[q.cid][0][0] for q in queries) >= 7


def test_gnn_retriever_with_a_locally_built_checkpoint(tmp_path, test_records, pool_records):
    import torch

    from retrieval.encoders import GNNEncoder

    torch.manual_seed(0)
    checkpoint = tmp_path / "gin_random.pth"
    torch.save(GNNEncoder(gnn_type="gin").state_dict(), checkpoint)
    queries = test_records[:25]
    table = build_contexts(queries, pool_records[:100], "mol2cap", f"gnn:{checkpoint}", k=10)
    assert_well_formed(table, queries, pool_records[:100], 10)
    assert all(-1.0 - 1e-5 <= s <= 1.0 + 1e-5 for ids, scores in table.values() for s in scores)


def test_bad_query_smiles_is_reported_not_dropped(test_records, pool_records):
    bad = MoleculeRecord(cid="999999999", smiles="C1CC(", text="a broken molecule.", source="test")
    queries = [test_records[0], bad, test_records[1]]
    table = build_contexts(queries, pool_records, "mol2cap", "morgan", k=10)
    assert list(table) == [test_records[0].cid, "999999999", test_records[1].cid]
    assert table["999999999"] == ([], [])
    assert table.meta["n_invalid_queries"] == 1 and table.invalid_query_ids == ["999999999"]
    assert table.meta["n_empty"] == 1
    assert len(table[test_records[1].cid][0]) == 10
    # the caption task does not read the SMILES: the same query gets examples there
    assert len(build_contexts(queries, pool_records, "cap2mol", "bm25")["999999999"][0]) == 10


def test_write_read_roundtrip(tmp_path, test_records, pool_records):
    out = tmp_path / "ctx" / "test_mol2cap.jsonl"
    table = build_contexts(test_records[:15], pool_records, "mol2cap", "topological", k=7, out_path=out, pool_source="pool.txt")
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 15
    assert set(lines[0]) == {"query_id", "task", "retriever", "neighbors", "scores"}
    meta = json.loads(meta_path(out).read_text())
    assert meta["k"] == 7 and meta["pool"] == "pool.txt" and meta["task"] == "mol2cap" and "created" in meta

    again = read_contexts(out)
    assert again.task == "mol2cap" and again.retriever == "topological" and again.meta["k"] == 7
    assert list(again) == list(table)
    for cid in table:
        assert again[cid][0] == table[cid][0]
        assert again[cid][1] == pytest.approx(table[cid][1], abs=1e-6)

    lookup = {r.cid: (r.smiles, r.text) for r in pool_records}
    examples = again.examples(test_records[0].cid, lookup, 2)
    assert [e.id for e in examples] == [again[test_records[0].cid][0][3], again[test_records[0].cid][0][0]]  # k=7: ranks 3, 0


def test_read_contexts_errors(tmp_path):
    with pytest.raises(ContextsFileError, match="not found"):
        read_contexts(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query_id": "1", "task": "mol2cap", "retriever": "morgan", "neighbors": ["2"], "scores": [0.5]}\n{oops\n')
    with pytest.raises(ContextsFileError, match=r"bad\.jsonl:2"):
        read_contexts(bad)
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(
        '{"query_id": "1", "task": "mol2cap", "retriever": "morgan", "neighbors": [], "scores": []}\n'
        '{"query_id": "2", "task": "cap2mol", "retriever": "bm25", "neighbors": [], "scores": []}\n'
    )
    with pytest.raises(ContextsFileError, match="differs"):
        read_contexts(mixed)


def test_parse_retriever_and_bad_arguments(test_records, pool_records):
    assert parse_retriever("mol2cap").name == "morgan"
    assert parse_retriever("cap2mol").name == "bm25"
    spec = parse_retriever("mol2cap", "gnn:/w/gin.pth")
    assert (spec.kind, spec.arg) == ("gnn", "/w/gin.pth")
    assert parse_retriever("cap2mol", "bm25-es:http://h:9200").arg == "http://h:9200"
    with pytest.raises(ValueError, match="morgan, topological"):
        parse_retriever("mol2cap", "bm25")
    with pytest.raises(ValueError, match="needs a checkpoint"):
        parse_retriever("mol2cap", "gnn")
    with pytest.raises(ValueError, match="unknown task"):
        parse_retriever("captioning", "bm25")
    with pytest.raises(ValueError, match="k must be"):
        build_contexts(test_records[:2], pool_records, "mol2cap", "morgan", k=0)
    with pytest.raises(ValueError, match="pool is empty"):
        build_contexts(test_records[:2], [], "mol2cap", "morgan")
    with pytest.raises(ValueError, match="duplicate query"):
        build_contexts([test_records[0], test_records[0]], pool_records, "mol2cap", "morgan")
