"""The answer-only loss equals Hugging Face's loss and projects only the kept positions."""
from __future__ import annotations

import pytest

from tests.conftest import require_module

torch = require_module("torch")


@pytest.fixture(scope="module")
def tiny():
    from ray_icma.models import apply_lora, load_causal_lm, lora_config

    torch.manual_seed(0)
    model, _ = load_causal_lm("tiny-random-llama")
    model = apply_lora(model, lora_config(r=4, alpha=8, dropout=0.0, target="all-linear", model=model))
    return model


def _batch():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 500, (3, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[2, 9:] = 0  # right padding of the third row
    labels = ids.clone()
    labels[0, :7] = -100  # prompts of different lengths
    labels[1, :4] = -100
    labels[2, :5] = -100
    labels[2, 9:] = -100
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def test_equals_the_hugging_face_loss_and_its_gradients(tiny):
    from ray_icma.train.loss import causal_lm_loss

    batch = _batch()
    reference = tiny(**batch).loss
    ref_grads = torch.autograd.grad(reference, [p for p in tiny.parameters() if p.requires_grad])
    ours = causal_lm_loss(tiny, batch)
    our_grads = torch.autograd.grad(ours, [p for p in tiny.parameters() if p.requires_grad])
    assert float(ours.detach()) == pytest.approx(float(reference.detach()), rel=1e-6)
    for a, b in zip(our_grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_projects_only_the_positions_with_a_label(tiny):
    from ray_icma.train.loss import causal_lm_loss

    batch = _batch()
    rows: list[int] = []
    head = tiny.get_output_embeddings()
    handle = head.register_forward_hook(lambda mod, inp, out: rows.append(inp[0].reshape(-1, inp[0].size(-1)).size(0)))
    try:
        causal_lm_loss(tiny, batch)
    finally:
        handle.remove()
    # next-token targets that are not -100: row 0: 12-7, row 1: 12-4, row 2: 9-5 (positions 4..7 predict 5..8)
    from ray_icma.train.loss import _MASK_FORM

    if _MASK_FORM[type(tiny)]:
        assert rows == [5 + 8 + 4]
    else:  # a transformers without the mask form: the 8 columns (3..10) where any row has a label, for 3 rows
        assert rows == [3 * 8]


def test_a_batch_without_answer_tokens_is_an_error(tiny):
    from ray_icma.train.loss import causal_lm_loss

    batch = _batch()
    batch["labels"][:] = -100
    with pytest.raises(ValueError, match="without any answer token"):
        causal_lm_loss(tiny, batch)


def test_column_form_for_older_transformers_equals_the_hugging_face_loss(tiny, monkeypatch):
    """transformers 5.17 (the GPU image) takes ``logits_to_keep`` only as 1-D columns: the loss falls back to
    the columns where any row has a label and still equals Hugging Face's loss and gradients."""
    from ray_icma.train import loss as loss_mod

    monkeypatch.setitem(loss_mod._MASK_FORM, type(tiny), False)
    batch = _batch()
    reference = tiny(**batch).loss
    ref_grads = torch.autograd.grad(reference, [p for p in tiny.parameters() if p.requires_grad])
    ours = loss_mod.causal_lm_loss(tiny, batch)
    our_grads = torch.autograd.grad(ours, [p for p in tiny.parameters() if p.requires_grad])
    assert float(ours.detach()) == pytest.approx(float(reference.detach()), rel=1e-6)
    for a, b in zip(our_grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_a_forward_that_rejects_the_mask_form_is_retried_with_columns(tiny, monkeypatch):
    from ray_icma.train import loss as loss_mod

    calls: list[tuple] = []

    class Old(torch.nn.Module):  # a model whose forward indexes hidden_states[:, logits_to_keep, :] (5.17)
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, logits_to_keep, **kw):
            calls.append(tuple(logits_to_keep.shape))
            if logits_to_keep.dim() != 1:
                raise IndexError("too many indices for tensor of dimension 3")
            return self.inner(logits_to_keep=logits_to_keep, **kw)

    monkeypatch.delitem(loss_mod._MASK_FORM, Old, raising=False)
    old = Old(tiny)
    batch = _batch()
    assert float(loss_mod.causal_lm_loss(old, batch)) == pytest.approx(float(tiny(**batch).loss), rel=1e-6)
    assert calls == [(3, 12), (8,)] and loss_mod._MASK_FORM[Old] is False
    loss_mod.causal_lm_loss(old, batch)
    assert calls[-1] == (8,)  # remembered: no second try of the mask form
    monkeypatch.delitem(loss_mod._MASK_FORM, Old)
