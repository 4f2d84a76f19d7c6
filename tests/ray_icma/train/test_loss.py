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
    assert rows == [5 + 8 + 4]


def test_a_batch_without_answer_tokens_is_an_error(tiny):
    from ray_icma.train.loss import causal_lm_loss

    batch = _batch()
    batch["labels"][:] = -100
    with pytest.raises(ValueError, match="without any answer token"):
        causal_lm_loss(tiny, batch)
