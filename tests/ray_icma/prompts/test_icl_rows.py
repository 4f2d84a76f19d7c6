"""In-context rows from real ChEBI-20 records and a best-first neighbor table."""
import pytest

from ray_icma.data import MoleculeRecord, load_records
from ray_icma.prompts import build_icl_rows, build_prompt


@pytest.fixture(scope="module")
def records(chebi20_pool_file):
    return load_records(chebi20_pool_file).records[:40]


def _neighbor_table(records, k=10):
    """Query i's neighbors: itself first (as in ICMA's training lists), then the next k records."""
    cids = [r.cid for r in records]
    return {c: (cids[i : i + k + 1], [1.0 - 0.01 * j for j in range(k + 1)]) for i, c in enumerate(cids)}


def test_zero_shot_rows(records):
    rows = build_icl_rows(records[:3], records, None, "mol2cap", n_shot=2)
    assert [r["id"] for r in rows] == [r.cid for r in records[:3]]
    first = rows[0]
    assert first["input"] == records[0].smiles and first["reference"] == records[0].text
    assert first["examples"] == [] and first["prompt"] == build_prompt("mol2cap", records[0].smiles)
    assert set(first) == {"id", "task", "input", "reference", "examples", "prompt"}


def test_icl_rows_skip_query_and_reverse(records):
    table = _neighbor_table(records)
    rows = build_icl_rows(records[:30], records, table, "cap2mol", n_shot=2, strategy="top")
    by_cid = {r.cid: r for r in records}
    for i, row in enumerate(rows):
        assert row["input"] == records[i].text and row["reference"] == records[i].smiles
        assert len(row["examples"]) == 2
        # top-2 after removing the query itself, most similar last
        assert row["examples"] == [[by_cid[records[i + 2].cid].text, records[i + 2].smiles], [records[i + 1].text, records[i + 1].smiles]]
        assert records[i].smiles not in [e[1] for e in row["examples"]]
        assert row["prompt"] == build_prompt("cap2mol", records[i].text, [tuple(e) for e in row["examples"]])


def test_code_strategy_spreads_over_window(records):
    table = _neighbor_table(records)
    rows = build_icl_rows(records[:1], records, table, "mol2cap", n_shot=2, strategy="code")
    # ICMA's bucket sampling over 10 candidates: ranks 0 and 5 (of the list without the query), reversed
    assert rows[0]["examples"] == [[records[6].smiles, records[6].text], [records[1].smiles, records[1].text]]


def test_probabilistic_strategy_is_seeded(records):
    table = _neighbor_table(records)
    a = build_icl_rows(records[:10], records, table, "mol2cap", 3, strategy="probabilistic", seed=7)
    b = build_icl_rows(records[:10], records, table, "mol2cap", 3, strategy="probabilistic", seed=7)
    c = build_icl_rows(records[:10], records, table, "mol2cap", 3, strategy="probabilistic", seed=8)
    assert a == b
    assert [r["examples"] for r in a] != [r["examples"] for r in c]


def test_missing_context_and_unknown_neighbors_go_on(records, caplog):
    table = {records[0].cid: (["no-such-cid", records[1].cid], [0.9, 0.8])}
    rows = build_icl_rows(records[:2], records, table, "mol2cap", n_shot=2, strategy="top")
    assert rows[0]["examples"] == [[records[1].smiles, records[1].text]]
    assert rows[1]["examples"] == []
    assert "no retrieved contexts" in caplog.text and "not in the pool" in caplog.text


def test_contexts_for_other_task_rejected(records):
    class Table(dict):
        task = "cap2mol"

    with pytest.raises(ValueError, match="retrieved for task 'cap2mol'"):
        build_icl_rows(records[:1], records, Table(), "mol2cap", 2)


def test_bad_arguments(records):
    with pytest.raises(ValueError, match="unknown task"):
        build_icl_rows(records[:1], records, None, "text2mol", 2)
    with pytest.raises(ValueError, match="n_shot"):
        build_icl_rows(records[:1], records, None, "mol2cap", -1)


def test_n_shot_zero_ignores_contexts(records):
    rows = build_icl_rows([MoleculeRecord("x", "CCO", "ethanol")], records, _neighbor_table(records), "mol2cap", 0)
    assert rows[0]["examples"] == []


def test_rows_from_a_contexts_file(records, tmp_path):
    """The real contexts file format (written and read by ray_icma.jobs.contexts)."""
    from ray_icma.jobs.contexts import ContextTable, read_contexts

    neighbors = {r.cid: ([o.cid for o in records if o.cid != r.cid][:10], [1.0 - 0.05 * j for j in range(10)]) for r in records[:5]}
    path = ContextTable(neighbors, task="mol2cap", retriever="morgan").write(tmp_path / "ctx.jsonl")
    table = read_contexts(path)
    rows = build_icl_rows(records[:5], records, table, "mol2cap", n_shot=2, strategy="top")
    for query, row in zip(records[:5], rows):
        best_two = neighbors[query.cid][0][:2]
        by_cid = {r.cid: r for r in records}
        assert row["examples"] == [[by_cid[c].smiles, by_cid[c].text] for c in reversed(best_two)]
    with pytest.raises(ValueError, match="retrieved for task 'mol2cap'"):
        build_icl_rows(records[:1], records, table, "cap2mol", 2)
