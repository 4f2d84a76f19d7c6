"""A tiny random-weight Llama with a real tokenizer: fast, deterministic model for tests and CI."""
from __future__ import annotations

from typing import Any

__all__ = ["TINY_SPEC", "tiny_random_llama"]

TINY_SPEC = "tiny-random-llama"


def tiny_random_llama(
    tokenizer: Any = None,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    seed: int = 0,
) -> tuple[Any, Any]:
    """Build a ``LlamaForCausalLM`` from a config with seeded random weights.

    Every process that calls this with the same arguments gets the same weights, so Ray
    workers can each build it instead of shipping it.

    Args:
        tokenizer: a Hugging Face tokenizer; default SmolLM2's (cached, see ``smollm2_tokenizer``).
        hidden: hidden size (must be divisible by ``heads``).
        layers: decoder layers.
        heads: attention heads (also key/value heads).
        seed: weight-init seed.

    Returns:
        ``(model, tokenizer)``; the model is fp32, in train mode off (``eval()``).
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from ray_icma.models.loader import prepare_tokenizer
    from ray_icma.models.smollm2 import smollm2_tokenizer

    if hidden % heads:
        raise ValueError(f"hidden={hidden} must be divisible by heads={heads}")
    tokenizer = prepare_tokenizer(tokenizer if tokenizer is not None else smollm2_tokenizer())
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = LlamaForCausalLM(config)
    finally:
        torch.random.set_rng_state(state)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model.eval(), tokenizer
