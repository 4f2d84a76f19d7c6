"""Tokenizing ICL rows for training: loss only on the answer (+EOS), budget kept, right padding."""
import numpy as np
import pytest
import torch

from ray_icma.prompts import build_prompt, build_target
from ray_icma.train import IGNORE_INDEX, make_collate_fn, tokenize_row
from ray_icma.train.deepspeed_config import deepspeed_config


@pytest.fixture(scope="module")
def tok():
    from ray_icma.models import prepare_tokenizer, smollm2_tokenizer

    return prepare_tokenizer(smollm2_tokenizer())


EXAMPLES = [("CCC", "The molecule is propane."), ("CCO", "The molecule is ethanol.")]


def test_labels_cover_exactly_the_target_and_eos(tok):
    ids, labels = tokenize_row(tok, "mol2cap", "CC(=O)O", EXAMPLES, "The molecule is acetic acid.", 1024)
    prompt_ids = tok(build_prompt("mol2cap", "CC(=O)O", EXAMPLES))["input_ids"]
    target_ids = tok(build_target("mol2cap", "The molecule is acetic acid."), add_special_tokens=False)["input_ids"]
    assert ids == prompt_ids + target_ids + [tok.eos_token_id]
    assert labels[: len(prompt_ids)] == [IGNORE_INDEX] * len(prompt_ids)
    assert labels[len(prompt_ids):] == target_ids + [tok.eos_token_id]
    assert tok.decode([t for t in labels if t != IGNORE_INDEX], skip_special_tokens=True) == "Caption: The molecule is acetic acid."


def test_budget_drops_examples_not_answer(tok):
    long_examples = [("C" * 5, "The molecule is " + "long " * 200), ("CCC", "short")]
    answer = "The molecule is acetic acid, a simple monocarboxylic acid."
    ids, labels = tokenize_row(tok, "mol2cap", "CC(=O)O", long_examples, answer, 128)
    assert len(ids) <= 128
    kept = [t for t in labels if t != IGNORE_INDEX]
    assert tok.decode(kept, skip_special_tokens=True) == "Caption: " + answer
    assert "long long" not in tok.decode(ids)
    assert "CC(=O)O" in tok.decode(ids)


def test_collate_slices_global_batch_per_rank_and_pads_right(tok):
    batch = {
        "task": np.array(["cap2mol"] * 4, dtype=object),
        "input": np.array(["ethanol", "a much longer caption of some molecule", "water", "methane"], dtype=object),
        "reference": np.array(["CCO", "CCCCCC", "O", "C"], dtype=object),
        "examples": np.array([[], [], [["propane", "CCC"]], []], dtype=object),
        "prompt": np.array(["p"] * 4, dtype=object),
        "id": np.array(["1", "2", "3", "4"], dtype=object),
    }
    rank1 = make_collate_fn(tok, 256, rank=1, world_size=2)(batch)
    assert rank1["input_ids"].shape[0] == 2  # rows 1 and 3
    single = tokenize_row(tok, "cap2mol", "a much longer caption of some molecule", [], "CCCCCC", 256)[0]
    assert rank1["input_ids"][0, : len(single)].tolist() == single
    mask = rank1["attention_mask"]
    assert mask[0].sum() == len(single) and (mask[:, 0] == 1).all()  # right padding
    assert (rank1["labels"][mask == 0] == IGNORE_INDEX).all()
    rank0 = make_collate_fn(tok, 256, rank=0, world_size=2)(batch)
    text = tok.decode(rank0["input_ids"][1][rank0["attention_mask"][1] == 1])
    assert "Generate a molecule for the caption: propane\nMolecule: CCC" in text


def test_loss_ignores_prompt_tokens(tok):
    """The loss equals cross-entropy over the answer positions alone."""
    from ray_icma.models import tiny_random_llama

    model, _ = tiny_random_llama(tokenizer=tok)
    ids, labels = tokenize_row(tok, "mol2cap", "CCO", EXAMPLES, "The molecule is ethanol.", 512)
    input_ids, labels_t = torch.tensor([ids]), torch.tensor([labels])
    with torch.no_grad():
        out = model(input_ids=input_ids, labels=labels_t)
        logits = out.logits[0, :-1]
        target = labels_t[0, 1:]
        keep = target != IGNORE_INDEX
        manual = torch.nn.functional.cross_entropy(logits[keep], target[keep])
    assert torch.isfinite(out.loss)
    assert torch.allclose(out.loss, manual, atol=1e-5)


def test_deepspeed_config_fills_auto_values():
    cfg = deepspeed_config(3, 4, 8, 1.0, bf16=False)
    assert cfg["zero_optimization"]["stage"] == 3
    assert (cfg["train_micro_batch_size_per_gpu"], cfg["gradient_accumulation_steps"], cfg["gradient_clipping"]) == (4, 8, 1.0)
    assert cfg["bf16"] == {"enabled": False}
    assert "auto" not in str(cfg)
    with pytest.raises(ValueError, match="zero_stage"):
        deepspeed_config(1, 1, 1, 1.0, bf16=False)
