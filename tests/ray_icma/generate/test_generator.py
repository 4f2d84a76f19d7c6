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
    return Generator(model_dir, device="cpu", precision="fp32")  # exact comparisons with transformers


def _hf_greedy(generator, prompt: str, max_new_tokens: int, **kwargs) -> list[int]:
    """transformers' own generate, one prompt at a time: the reference for the decoding loop."""
    enc = generator.tokenizer([prompt], return_tensors="pt")
    with torch.no_grad():
        out = generator.model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, temperature=None, top_p=None, top_k=None,
                                       pad_token_id=generator.tokenizer.pad_token_id, **kwargs)
    new = out[0, enc["input_ids"].shape[1]:].tolist()
    eos = generator.tokenizer.eos_token_id
    return new[: new.index(eos)] if eos in new else new


def test_greedy_output_matches_transformers_generate_token_for_token(generator, model_dir):
    outs = generator.generate_detailed(PROMPTS, max_new_tokens=8, batch_size=len(PROMPTS))
    for prompt, out in zip(PROMPTS, outs):
        reference = _hf_greedy(generator, prompt, 8)
        assert out.n_new_tokens == len(reference) == 8  # this random model never emits EOS this early
        assert out.text == generator.tokenizer.decode(reference, skip_special_tokens=True)
    assert [o.text for o in outs] == Generator(model_dir, device="cpu", precision="fp32").generate(PROMPTS, max_new_tokens=8)
    assert len({o.text for o in outs}) == len(PROMPTS), "different prompts should give different continuations"


def test_repetition_penalty_matches_transformers(generator):
    """ICMA decodes cap2mol with repetition_penalty 0.8: same tokens as transformers' processor."""
    out = generator.generate_detailed(PROMPTS[:1], max_new_tokens=10, repetition_penalty=0.8)[0]
    reference = _hf_greedy(generator, PROMPTS[0], 10, repetition_penalty=0.8)
    assert out.text == generator.tokenizer.decode(reference, skip_special_tokens=True)
    assert out.text != generator.generate(PROMPTS[:1], max_new_tokens=10)[0]  # the penalty changed something


def test_top_k_and_top_p_filter_sampling(generator):
    """At a high temperature, sampling differs from greedy unless top_k=1 / a tiny top_p leave one token."""
    greedy = generator.generate(PROMPTS, max_new_tokens=8)
    hot = dict(do_sample=True, temperature=5.0, max_new_tokens=8)
    assert generator.generate(PROMPTS, **hot) != greedy
    assert generator.generate(PROMPTS, top_k=1, **hot) == greedy
    assert generator.generate(PROMPTS, top_p=1e-9, **hot) == greedy


def test_batched_equals_one_by_one(generator):
    batched = generator.generate(PROMPTS, max_new_tokens=8, batch_size=len(PROMPTS))
    single = [generator.generate([p], max_new_tokens=8, batch_size=1)[0] for p in PROMPTS]
    assert batched == single


def test_continuation_excludes_prompt_and_counts_tokens(generator):
    out = generator.generate_detailed(PROMPTS[:1], max_new_tokens=5)[0]
    assert PROMPTS[0].strip() not in out.text
    assert out.n_prompt_tokens == len(generator.tokenizer(PROMPTS[0])["input_ids"])
    assert 0 < out.n_new_tokens <= 5


def _stop_after(generator, prompt: str, n_tokens: int) -> tuple[str, str]:
    """``(full_text, stop)``: a stop string made of the text of generated token ``n_tokens - 1``,
    which does not occur earlier in the continuation."""
    ids = _hf_greedy(generator, prompt, 12)
    tok = generator.tokenizer
    stop = tok.decode(ids[n_tokens - 1 : n_tokens])
    assert stop.strip() and stop not in tok.decode(ids[: n_tokens - 1]), "pick another token for the stop string"
    return tok.decode(ids), stop


def test_stop_string_ends_each_row_at_its_own_stop(generator):
    full, stop = _stop_after(generator, PROMPTS[0], 3)
    stopped = generator.generate_detailed(PROMPTS[:1], max_new_tokens=12, stop=[stop])[0]
    assert stopped.n_new_tokens == 3  # the token that completes the stop string is the last one
    assert stopped.text.endswith(stop) and full.startswith(stopped.text) and len(stopped.text) < len(full)
    # In a batch, the stopped row leaves while the others run on to max_new_tokens.
    batch = generator.generate_detailed(PROMPTS, max_new_tokens=12, stop=[stop], batch_size=len(PROMPTS))
    one_by_one = [generator.generate_detailed([p], max_new_tokens=12, stop=[stop])[0] for p in PROMPTS]
    assert batch == one_by_one
    assert batch[0].n_new_tokens == 3 and sorted(o.n_new_tokens for o in batch)[-1] == 12


def test_sampling_is_reproducible_per_seed(model_dir):
    a = Generator(model_dir, device="cpu", seed=3, precision="fp32").generate(PROMPTS, max_new_tokens=8, do_sample=True, temperature=1.0)
    b = Generator(model_dir, device="cpu", seed=3, precision="fp32").generate(PROMPTS, max_new_tokens=8, do_sample=True, temperature=1.0)
    assert a == b


def test_beam_search_is_transformers_beam_search(generator):
    out = generator.generate_detailed(PROMPTS, max_new_tokens=6, num_beams=3)
    for prompt, o in zip(PROMPTS, out):
        reference = _hf_greedy(generator, prompt, 6, num_beams=3)
        assert o.text == generator.tokenizer.decode(reference, skip_special_tokens=True) and o.n_new_tokens == len(reference)


def test_merged_adapter_generates_what_the_unmerged_one_does(model_dir, adapter_dirs):
    merged = Generator(model_dir, adapter=adapter_dirs["a"], device="cpu", precision="fp32", merge=True)
    unmerged = Generator(model_dir, adapter=adapter_dirs["a"], device="cpu", precision="fp32")
    from peft import PeftModel

    assert merged.merged and not isinstance(merged.model, PeftModel) and isinstance(unmerged.model, PeftModel)
    assert merged.generate(PROMPTS, max_new_tokens=8) == unmerged.generate(PROMPTS, max_new_tokens=8)
    with pytest.raises(ValueError, match="merge=True"):
        Generator(model_dir, adapters=adapter_dirs, device="cpu", merge=True)


def test_bf16_precision_runs_bf16_weights(model_dir):
    from ray_icma.precision import cpu_bf16_flags

    gen = Generator(model_dir, device="cpu", precision="bf16")
    assert gen.precision == "bf16" and next(gen.model.parameters()).dtype == torch.bfloat16
    if cpu_bf16_flags():  # a CPU with native bf16: oneDNN must report a bf16 kernel
        assert "bf16" in gen.kernels, gen.kernels
    out = gen.generate_detailed(PROMPTS[:1], max_new_tokens=4)[0]
    assert out.n_new_tokens == 4
    assert Generator(model_dir, device="cpu", dtype="float32").precision == "fp32"


@pytest.mark.slow  # trains/loads several adapters (test tiers: TESTS)
def test_adapter_switching_by_name(model_dir, adapter_dirs, generator):
    multi = Generator(model_dir, adapters=adapter_dirs, device="cpu", precision="fp32")
    out_a = multi.generate(PROMPTS, max_new_tokens=8, adapter="a")
    out_b = multi.generate(PROMPTS, max_new_tokens=8, adapter="b")
    out_base = multi.generate(PROMPTS, max_new_tokens=8, adapter=BASE_MODEL)
    assert out_a != out_b
    assert out_base == generator.generate(PROMPTS, max_new_tokens=8)
    assert out_a == Generator(model_dir, adapter=adapter_dirs["a"], device="cpu", precision="fp32").generate(PROMPTS, max_new_tokens=8)
    assert multi.generate(PROMPTS, max_new_tokens=8) == out_a  # the first adapter is the default
    assert multi.generate(PROMPTS, max_new_tokens=8, adapter="a") == out_a  # switching back is clean


def test_generate_task_parses_answers(generator):
    from ray_icma.prompts import parse_output

    raw = generator.generate(PROMPTS, max_new_tokens=8, stop=("\n\n",))
    assert generator.generate_task("cap2mol", PROMPTS, max_new_tokens=8) == [parse_output("cap2mol", t) for t in raw]


def test_bad_arguments_give_clear_errors(model_dir, adapter_dirs, generator, tmp_path):
    with pytest.raises(ValueError, match="unknown adapter 'zzz'"):
        Generator(model_dir, adapters=adapter_dirs, device="cpu", precision="fp32").generate(PROMPTS, adapter="zzz")
    with pytest.raises(FileNotFoundError, match="adapter_config.json"):
        Generator(model_dir, adapter=str(tmp_path), device="cpu", precision="fp32")
    with pytest.raises(ValueError, match="reserved"):
        Generator(model_dir, adapters={BASE_MODEL: adapter_dirs["a"]}, device="cpu", precision="fp32")
    with pytest.raises(ValueError, match="max_new_tokens"):
        generator.generate(PROMPTS, max_new_tokens=0)
    assert generator.generate([], max_new_tokens=4) == []


def test_tiny_random_llama_preset_loads():
    from ray_icma.models import TINY_SPEC

    out = Generator(TINY_SPEC, device="cpu", precision="fp32").generate_detailed(PROMPTS[:2], max_new_tokens=4)
    assert [o.n_new_tokens for o in out] == [4, 4]


def test_concurrent_calls_from_threads_all_succeed(generator, frequent_thread_switches):
    """Serve calls one Generator from several threads. A fast tokenizer keeps its padding setting in its
    shared Rust object, so a length count (no padding) racing a padded batch encode used to unpad that batch
    ("Unable to create tensor ... same length"), a 503 in CI. Every call must succeed and answer as alone."""
    from concurrent.futures import ThreadPoolExecutor

    expected = generator.generate(PROMPTS, max_new_tokens=1, batch_size=len(PROMPTS))

    def call(i: int) -> list[str]:
        return generator.generate(PROMPTS, max_new_tokens=1, batch_size=len(PROMPTS))

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(call, range(300)))
    assert all(r == expected for r in results)


def test_kv_cache_goes_to_the_argument_this_transformers_takes(generator):
    """transformers < 5.24 names the cache ``past_key_values`` and swallows ``cache=`` into **kwargs (each
    step then saw one token: garbage, as the GPU image's 5.17 showed on 2026-12-04)."""
    from ray_icma.generate.generator import _cache_kwarg

    class Old(torch.nn.Module):
        def forward(self, input_ids=None, past_key_values=None, **kwargs):  # the pre-5.24 signature
            return None

    class New(torch.nn.Module):
        def forward(self, input_ids=None, cache=None, **kwargs):
            return None

    assert _cache_kwarg(Old()) == "past_key_values"
    assert _cache_kwarg(New()) == "cache"
    import transformers

    expected = "cache" if "cache" in __import__("inspect").signature(type(generator.model).forward).parameters else "past_key_values"
    assert _cache_kwarg(generator.model) == expected, transformers.__version__


def test_a_forward_that_ignores_the_cache_is_an_error_not_garbage(generator, monkeypatch):
    from ray_icma.generate import generator as generator_mod

    monkeypatch.setattr(generator_mod, "_cache_kwarg", lambda model: "kv_cache_under_another_name")
    with pytest.raises(RuntimeError, match="did not fill the KV cache"):
        generator.generate(PROMPTS[:1], max_new_tokens=4)
