"""A real tokenizer for prompt-budget tests: SmolLM2's, converted once and cached on disk."""
import pytest


@pytest.fixture(scope="session")
def smollm2_tok():
    from ray_icma.models import smollm2_tokenizer

    return smollm2_tokenizer()
