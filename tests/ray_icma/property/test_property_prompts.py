"""ICMA's property prompt text, example choice (most similar last, unknown labels skipped), and a
query never retrieving itself."""
from __future__ import annotations

import pytest

pytest.importorskip("rdkit")

from ray_icma.property import PropertyRecord, build_property_rows, property_template
from ray_icma.property.datasets import get_set


def _rec(id_, smiles, *labels):
    return PropertyRecord(id_, smiles, tuple(labels), "test")


def test_prompt_text_is_icma_with_most_similar_last():
    pool = {"a": _rec("a", "CCO", 1), "b": _rec("b", "CCN", 0), "c": _rec("c", "CCC", 1)}
    query = _rec("q", "CCCl", 0)
    rows = build_property_rows([query], pool, {"q": ["a", "b", "c"]}, "hiv", n_shot=2)
    assert len(rows) == 1
    row = rows[0]
    assert row["prompt"] == (
        "Predict whether the molecule: CCN inhibits HIV replication\nPrediction:No\n\n"
        "Predict whether the molecule: CCO inhibits HIV replication\nPrediction:Yes\n\n"
        "Based on the above examples, analyse the similarities and differences between the examples and finally "
        "predict whether the molecule: CCCl inhibits HIV replication\n"
    )
    assert row["examples"] == [["CCN", "No"], ["CCO", "Yes"]]
    assert (row["reference"], row["y"], row["knn"], row["task"]) == ("No", 0, 0.5, "property/hiv/HIV_active")


def test_clintox_fda_query_line_says_can_be_approved_as_icma():
    tpl = property_template("property/clintox/FDA_APPROVED")
    assert tpl.example.format(input="C", output="Yes") == "Predict whether the drug molecule: C is approved by the FDA\nPrediction:Yes\n\n"
    assert tpl.query.format(input="C").endswith("finally predict whether the drug molecule: C can be approved by the FDA\n")
    assert tpl.answer_prefix == "Prediction:"


def test_tox21_uses_plain_assay_names_and_skips_neighbours_without_the_label():
    spec = get_set("tox21")
    unknown = [None] * 12
    pool = {
        "near": _rec("near", "CCO", *unknown),  # NR-AR not measured: not an example for NR-AR
        "mid": _rec("mid", "CCN", *([1] + [0] * 11)),
        "far": _rec("far", "CCC", *([0] * 12)),
    }
    query = _rec("q", "CCCl", *([1] + [None] * 11))
    rows = build_property_rows([query], pool, {"q": ["near", "mid", "far"]}, spec, n_shot=2)
    assert [r["label"] for r in rows] == ["NR-AR"]  # unknown query labels make no row
    assert rows[0]["examples"] == [["CCC", "No"], ["CCN", "Yes"]]
    assert "can activate or affect Androgen receptor using the MDA cell line (NR-AR)\nPrediction:Yes" in rows[0]["prompt"]
    assert build_property_rows([query], pool, {"q": []}, spec, n_shot=2, known_only=False)[1]["reference"] == ""


def test_sider_label_name_is_the_side_effect():
    row = build_property_rows([_rec("q", "CCO", *([1] * 27))], {}, {}, "sider", n_shot=2, labels=[0])[0]
    assert row["prompt"] == "Predict whether the molecule: CCO causes the side effect of Hepatobiliary disorders\n"  # zero-shot: no neighbours
    assert row["knn"] is None


def test_query_never_gets_itself_or_a_copy_of_its_molecule():
    from ray_icma.property.neighbours import retrieve_neighbours

    pool = [_rec("p1", "c1ccccc1O", 1), _rec("dup", "Oc1ccccc1", 0), _rec("p3", "c1ccccc1N", 0), _rec("p4", "CCCCCC", 1)]
    query = pool[0]  # a training molecule, as when training prompts are built
    ids, scores = retrieve_neighbours([query], pool, "morgan", k=3)
    assert ids["p1"] == ["p3", "p4"]  # "dup" is the same molecule written differently
    assert scores["p1"] == sorted(scores["p1"], reverse=True)


def test_training_target_is_the_answer_after_prediction_prefix():
    from ray_icma.models import smollm2_tokenizer
    from ray_icma.train import IGNORE_INDEX, tokenize_row

    tok = smollm2_tokenizer()
    ids, labels = tokenize_row(tok, "property/bbbp/p_np", "CCO", [("CCN", "Yes")], "Yes", cutoff_len=512)
    answer = [t for t in labels if t != IGNORE_INDEX]
    assert tok.decode(answer[:-1]) == "Prediction:Yes" and answer[-1] == tok.eos_token_id
    assert tok.decode(ids[: len(ids) - len(answer)]).endswith("blood-brain barrier penetration(permeability)\n")
