"""Generator on small random Llamas built locally (real transformers + peft, no mocks)."""
from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from ray_icma.generate import BASE_MODEL, Generator  # noqa: E402

PROMPTS = [
    "Generate a caption for the molecule: CCO\n",
    "Generate a molecule that: The molecule is a long-chain fatty acid with a hydroxy group at position 3.\n",
    "Generate a caption for the molecule: c1ccccc1O\n",
]


def build_untied_llama(out_dir: Path, seed: int = 0) -> Path:
    """A 2-layer random Llama with untied, wide-init weights: its greedy output varies with the
    prompt (the preset tiny model echoes its last token), so order/padding bugs show up."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from ray_icma.models import smollm2_tokenizer

    tok = smollm2_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=4, tie_word_embeddings=False, initializer_range=0.5,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return out_dir


def build_adapter(model_dir: Path, out_dir: Path, seed: int) -> Path:
    """A LoRA adapter whose B matrices are seeded random (peft initialises them to zero = no-op)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(model_dir)
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * 2.0)
    peft_model.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> str:
    return str(build_untied_llama(tmp_path_factory.mktemp("untied_llama")))


@pytest.fixture(scope="module")
def adapter_dirs(model_dir, tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("adapters")
    return {name: str(build_adapter(Path(model_dir), root / name, seed)) for name, seed in (("a", 1), ("b", 2))}


@pytest.fixture(scope="module")
def generator(model_dir) -> Generator:
    return Generator(model_dir, device="cpu")


def test_greedy_output_is_deterministic_and_non_trivial(generator, model_dir):
    first = generator.generate(PROMPTS, max_new_tokens=8)
    again = Generator(model_dir, device="cpu").generate(PROMPTS, max_new_tokens=8)
    assert first == again
    assert len(first) == len(PROMPTS)
    assert all(isinstance(text, str) and text for text in first)
    assert len(set(first)) == len(PROMPTS), "different prompts should give different continuations"


def test_batched_equals_one_by_one(generator):
    batched = generator.generate(PROMPTS, max_new_tokens=8, batch_size=len(PROMPTS))
    single = [generator.generate([p], max_new_tokens=8, batch_size=1)[0] for p in PROMPTS]
    assert batched == single


def test_continuation_excludes_prompt_and_counts_tokens(generator):
    out = generator.generate_detailed(PROMPTS[:1], max_new_tokens=5)[0]
    assert PROMPTS[0].strip() not in out.text
    assert out.n_prompt_tokens == len(generator.tokenizer(PROMPTS[0])["input_ids"])
    assert 0 < out.n_new_tokens <= 5


def test_stop_string_ends_generation_early(generator):
    full = generator.generate_detailed(PROMPTS[:1], max_new_tokens=12)[0]
    # stop right after the first generated character: the output must be a prefix of the full one
    stop = full.text[:1]
    stopped = generator.generate_detailed(PROMPTS[:1], max_new_tokens=12, stop=[stop])[0]
    assert full.text.startswith(stopped.text)
    assert stopped.n_new_tokens <= full.n_new_tokens


def test_sampling_is_reproducible_per_seed(model_dir):
    a = Generator(model_dir, device="cpu", seed=3).generate(PROMPTS, max_new_tokens=8, do_sample=True, temperature=1.0)
    b = Generator(model_dir, device="cpu", seed=3).generate(PROMPTS, max_new_tokens=8, do_sample=True, temperature=1.0)
    assert a == b


def test_beam_search_returns_one_text_per_prompt(generator):
    out = generator.generate(PROMPTS, max_new_tokens=6, num_beams=3)
    assert len(out) == len(PROMPTS) and all(isinstance(t, str) for t in out)


@pytest.mark.slow  # trains/loads several adapters (test tiers: TESTS)
def test_adapter_switching_by_name(model_dir, adapter_dirs, generator):
    multi = Generator(model_dir, adapters=adapter_dirs, device="cpu")
    out_a = multi.generate(PROMPTS, max_new_tokens=8, adapter="a")
    out_b = multi.generate(PROMPTS, max_new_tokens=8, adapter="b")
    out_base = multi.generate(PROMPTS, max_new_tokens=8, adapter=BASE_MODEL)
    assert out_a != out_b
    assert out_base == generator.generate(PROMPTS, max_new_tokens=8)
    assert out_a == Generator(model_dir, adapter=adapter_dirs["a"], device="cpu").generate(PROMPTS, max_new_tokens=8)
    assert multi.generate(PROMPTS, max_new_tokens=8) == out_a  # the first adapter is the default
    assert multi.generate(PROMPTS, max_new_tokens=8, adapter="a") == out_a  # switching back is clean


def test_generate_task_parses_answers(generator):
    from ray_icma.prompts import parse_output

    raw = generator.generate(PROMPTS, max_new_tokens=8, stop=("\n\n",))
    assert generator.generate_task("cap2mol", PROMPTS, max_new_tokens=8) == [parse_output("cap2mol", t) for t in raw]


def test_bad_arguments_give_clear_errors(model_dir, adapter_dirs, generator, tmp_path):
    with pytest.raises(ValueError, match="unknown adapter 'zzz'"):
        Generator(model_dir, adapters=adapter_dirs, device="cpu").generate(PROMPTS, adapter="zzz")
    with pytest.raises(FileNotFoundError, match="adapter_config.json"):
        Generator(model_dir, adapter=str(tmp_path), device="cpu")
    with pytest.raises(ValueError, match="reserved"):
        Generator(model_dir, adapters={BASE_MODEL: adapter_dirs["a"]}, device="cpu")
    with pytest.raises(ValueError, match="max_new_tokens"):
        generator.generate(PROMPTS, max_new_tokens=0)
    assert generator.generate([], max_new_tokens=4) == []


def test_tiny_random_llama_preset_loads():
    from ray_icma.models import TINY_SPEC

    out = Generator(TINY_SPEC, device="cpu").generate(PROMPTS[:2], max_new_tokens=4)
    assert len(out) == 2
