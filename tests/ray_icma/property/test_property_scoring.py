"""P(Yes) = softmax over the Yes/No logits at the answer position, checked by hand on a tiny model."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tiny():
    from ray_icma.models import tiny_random_llama

    return tiny_random_llama(seed=3)


def _rows():
    from ray_icma.property import PropertyRecord, build_property_rows

    pool = {f"p{i}": PropertyRecord(f"p{i}", s, (i % 2,)) for i, s in enumerate(["CCO", "c1ccccc1CCN", "CC(=O)O", "CCCCCCCCCl"])}
    queries = [PropertyRecord("q1", "CCN", (1,)), PropertyRecord("q2", "c1ccccc1C(=O)OCCCCCC", (0,)), PropertyRecord("q3", "C", (1,))]
    neighbours = {"q1": ["p0", "p1", "p2"], "q2": ["p3"], "q3": []}  # different lengths: padding matters
    return build_property_rows(queries, pool, neighbours, "bbbp", n_shot=3)


def test_scores_equal_a_hand_computed_softmax(tiny):
    from ray_icma.property.scoring import YesNoScorer

    model, tok = tiny
    scorer = YesNoScorer(model, tok, batch_size=3)
    rows = _rows()
    probs, kept = scorer.score(rows)
    assert kept == [3, 1, 0]
    yes = tok("Prediction:Yes", add_special_tokens=False)["input_ids"][-1]
    no = tok("Prediction:No", add_special_tokens=False)["input_ids"][-1]
    for row, p in zip(rows, probs):
        text_ids = tok(row["prompt"], add_special_tokens=True)["input_ids"] + tok("Prediction:", add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([text_ids])).logits[0, -1].double()
        ly, ln = float(logits[yes]), float(logits[no])
        expected = math.exp(ly) / (math.exp(ly) + math.exp(ln))
        assert p == pytest.approx(expected, abs=1e-5)
    assert len(set(np.round(probs, 6))) == 3  # the rows really differ


def test_batch_size_does_not_change_scores(tiny):
    from ray_icma.property.scoring import YesNoScorer

    model, tok = tiny
    rows = _rows()
    one = YesNoScorer(model, tok, batch_size=1).score(rows)[0]
    three = YesNoScorer(model, tok, batch_size=3).score(rows)[0]
    np.testing.assert_allclose(one, three, atol=1e-5)


def test_answer_tokens_are_single_yes_and_no(tiny):
    from ray_icma.property.scoring import answer_token_ids

    _, tok = tiny
    prefix, yes, no = answer_token_ids(tok)
    assert tok.decode(prefix) == "Prediction:" and tok.decode([yes]) == "Yes" and tok.decode([no]) == "No"
