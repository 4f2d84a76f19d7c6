"""Tokenizing ICL rows for training (once): loss only on the answer (+EOS), budget kept, length-bucketed batches, right padding."""
import pytest
import torch

from ray_icma.prompts import build_prompt, build_target
from ray_icma.train import IGNORE_INDEX, global_batches, tokenize_row, tokenize_rows
from ray_icma.train.collate import rank_micro_batch
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


def test_rows_are_tokenized_once_with_icma_train_on_inputs_switch(tok):
    rows = [{"task": "cap2mol", "input": "ethanol", "reference": "CCO", "examples": [["propane", "CCC"]]}]
    (masked,) = tokenize_rows(tok, rows, 256)
    (full,) = tokenize_rows(tok, rows, 256, train_on_inputs=True)
    assert (masked["input_ids"], masked["labels"]) == tokenize_row(tok, "cap2mol", "ethanol", [("propane", "CCC")], "CCO", 256)
    assert full["input_ids"] == masked["input_ids"] and full["labels"] == full["input_ids"]  # loss on every token
    assert masked["labels"].count(IGNORE_INDEX) > 0


def test_global_batches_partition_the_epoch_seeded_and_bucketed():
    import random

    rng = random.Random(7)
    lengths = [rng.randint(50, 500) for _ in range(101)]
    batches = global_batches(lengths, 4, seed=0, epoch=0)
    flat = [i for b in batches for i in b]
    assert len(batches) == 25 and all(len(b) == 4 for b in batches) and len(set(flat)) == 100  # drop_last, no repeats
    assert batches == global_batches(lengths, 4, seed=0, epoch=0)
    assert batches != global_batches(lengths, 4, seed=0, epoch=1) != global_batches(lengths, 4, seed=1, epoch=0)

    def padding(bs):
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in bs)

    plain = global_batches(lengths, 4, seed=0, epoch=0, bucket=False)
    assert len({i for b in plain for i in b}) == 100
    assert padding(batches) < padding(plain) / 4  # uniform lengths: bucketing removes most padding


def test_rank_micro_batch_slices_the_global_batch_and_pads_right(tok):
    rows = tokenize_rows(tok, [
        {"task": "cap2mol", "input": text, "reference": ref, "examples": []}
        for text, ref in [("ethanol", "CCO"), ("a much longer caption of some molecule", "CCCCCC"), ("water", "O"), ("methane", "C")]
    ], 256)
    batch = rank_micro_batch(rows, [0, 1, 2, 3], rank=1, world_size=2, pad_id=tok.pad_token_id)
    assert batch["input_ids"].shape[0] == 2  # rows 1 and 3
    longest = rows[1]["input_ids"]
    assert batch["input_ids"].shape[1] == len(longest) and batch["input_ids"][0].tolist() == longest
    mask = batch["attention_mask"]
    assert mask[1].sum() == len(rows[3]["input_ids"]) and (mask[:, 0] == 1).all()  # right padding
    assert (batch["labels"][mask == 0] == IGNORE_INDEX).all()


def test_packed_rows_hold_every_row_and_batch_like_the_lists(tok):
    """PackedRows (what the workers read from the object store): the same rows, lengths and padded micro-batches
    as the tokenized lists; int32 arrays, read-only views are fine; rows whose labels do not match are refused."""
    from ray_icma.train.collate import PackedRows

    rows = tokenize_rows(tok, [
        {"task": "mol2cap", "input": smi, "reference": ref, "examples": EXAMPLES[:k]}
        for k, (smi, ref) in enumerate([("CCO", "The molecule is ethanol."), ("O", "Water."), ("CCCCCC", "Hexane, a long alkane.")])
    ], 256)
    packed = PackedRows.pack(rows)
    for array in packed.arrays.values():
        array.setflags(write=False)  # as ray.get returns them
    assert len(packed) == 3 and packed.lengths() == [len(r["input_ids"]) for r in rows]
    assert packed.arrays["input_ids"].dtype.name == "int32" and packed.arrays["offsets"][-1] == sum(packed.lengths())
    for i, row in enumerate(rows):
        assert packed[i]["input_ids"].tolist() == row["input_ids"] and packed[i]["labels"].tolist() == row["labels"]
    for rank in (0, 1):
        want, got = rank_micro_batch(rows, [2, 0, 1], rank, 2, tok.pad_token_id), rank_micro_batch(packed, [2, 0, 1], rank, 2, tok.pad_token_id)
        assert all(torch.equal(want[k], got[k]) and got[k].dtype == torch.long for k in want)
    with pytest.raises(ValueError, match="labels and input_ids differ"):
        PackedRows.pack([{"input_ids": [1, 2, 3], "labels": [1, 2]}])


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
