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


def test_reversal_is_a_switch(records):
    table = _neighbor_table(records)
    on = build_icl_rows(records[:1], records, table, "mol2cap", n_shot=3, strategy="top")
    off = build_icl_rows(records[:1], records, table, "mol2cap", n_shot=3, strategy="top", reverse=False)
    assert [e[0] for e in off[0]["examples"]] == [records[1].smiles, records[2].smiles, records[3].smiles]  # best first
    assert on[0]["examples"] == off[0]["examples"][::-1]  # best last, next to the query
    assert on[0]["prompt"] != off[0]["prompt"]


@pytest.mark.parametrize(
    ("task", "n_shot", "ranks"),
    [
        # ICMA cap2mol training: list [query, 1..10], start_pos=1, step floor(9/n): ranks 1,5 / 1,3,5,7 of its list
        ("cap2mol", 2, [1, 5]),
        ("cap2mol", 4, [1, 3, 5, 7]),
        ("cap2mol", 3, [1, 4, 7]),
        # ICMA mol2cap: start_pos=0 over 10 others, step floor(10/n): neighbours 1 and 6 here
        ("mol2cap", 2, [1, 6]),
    ],
)
def test_icma_window_reproduces_icmas_bucket_sampling(records, task, n_shot, ranks):
    table = _neighbor_table(records)
    rows = build_icl_rows(records[:1], records, table, task, n_shot, strategy="code", window="icma", reverse=False)
    got = [e[1] if task == "cap2mol" else e[0] for e in rows[0]["examples"]]
    assert got == [records[r].smiles for r in ranks]


def test_default_window_is_one_wider_for_cap2mol_training_rows(records):
    table = _neighbor_table(records)
    default = build_icl_rows(records[:1], records, table, "cap2mol", 2, strategy="code", reverse=False)
    assert [e[1] for e in default[0]["examples"]] == [records[1].smiles, records[6].smiles]


def test_icma_window_for_queries_outside_the_pool_is_ten(records):
    pool, query = records[1:], records[0]  # query not in the pool (test split): ICMA's list has no self entry
    table = {query.cid: ([r.cid for r in pool[:10]], [1.0] * 10)}
    rows = build_icl_rows([query], pool, table, "cap2mol", 2, strategy="code", window="icma", reverse=False)
    assert [e[1] for e in rows[0]["examples"]] == [pool[0].smiles, pool[5].smiles]


def test_bad_window_is_refused(records):
    with pytest.raises(ValueError, match="window"):
        build_icl_rows(records[:1], records, None, "mol2cap", 0, window="paper")


def test_contexts_show_path_gives_the_training_examples(records):
    """`ray-icma contexts show --n` (ContextTable.examples) and training rows pick the same examples
    for the same run seed: one path from ranked ids to examples."""
    from ray_icma.jobs.contexts import ContextTable

    rows_table = _neighbor_table(records)
    table = ContextTable(rows_table, task="mol2cap", retriever="morgan")
    lookup = {r.cid: (r.smiles, r.text) for r in records}
    rows = build_icl_rows(records[:10], records, table, "mol2cap", 3, strategy="probabilistic", seed=7)
    for query, row in zip(records[:10], rows):
        shown = table.examples(query.cid, lookup, 3, strategy="probabilistic", seed=7)
        assert [[e.input, e.output] for e in shown] == row["examples"]
        assert query.cid not in [e.id for e in shown]
