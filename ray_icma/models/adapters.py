"""Load a base model with a trained LoRA adapter on top (for generation and serving)."""
from __future__ import annotations

import json
from os import PathLike
from pathlib import Path
from typing import Any

__all__ = ["adapter_base_model", "load_with_adapter"]


def adapter_base_model(adapter_dir: str | PathLike[str]) -> str:
    """The base model spec recorded in an adapter dir (``adapter_config.json``).

    Raises:
        FileNotFoundError: not an adapter dir.
        ValueError: the adapter does not name its base model.
    """
    path = Path(adapter_dir) / "adapter_config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{adapter_dir} is not a LoRA adapter dir (no adapter_config.json); export one with `ray-icma train`")
    base = json.loads(path.read_text()).get("base_model_name_or_path")
    if not base:
        raise ValueError(f"{path} does not name its base model; pass base_model explicitly")
    return base


def load_with_adapter(
    adapter_dir: str | PathLike[str],
    base_model: str | None = None,
    *,
    gguf_file: str | None = None,
    merge: bool = True,
    torch_dtype: Any = "auto",
    device_map: Any = None,
) -> tuple[Any, Any]:
    """``(model, tokenizer)``: the base model (default: the one the adapter names) + the adapter.

    Args:
        adapter_dir: a peft ``save_pretrained`` dir (``TrainResult.adapter_dir``).
        base_model: model spec for ``load_causal_lm``; default from ``adapter_config.json``.
        gguf_file: GGUF file name when the base is a GGUF.
        merge: fold the adapter into the weights (``merge_and_unload``): faster generation.
        torch_dtype, device_map: passed to ``load_causal_lm``.
    """
    from peft import PeftModel

    from ray_icma.models.loader import load_causal_lm

    base, tokenizer = load_causal_lm(base_model or adapter_base_model(adapter_dir), gguf_file=gguf_file, torch_dtype=torch_dtype, device_map=device_map)
    model = PeftModel.from_pretrained(base, str(adapter_dir))
    if merge:
        model = model.merge_and_unload()
    return model.eval(), tokenizer
