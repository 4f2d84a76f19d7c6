"""Export a trained adapter from a checkpoint, and a merged (base + adapter) model."""
from __future__ import annotations

import shutil
from os import PathLike
from pathlib import Path

__all__ = ["export_adapter", "merge_adapter"]


def export_adapter(checkpoint_dir: str | PathLike[str], out_dir: str | PathLike[str]) -> Path:
    """Copy the peft adapter out of a training checkpoint into ``out_dir`` (replaced if present).

    Raises:
        FileNotFoundError: the checkpoint holds no adapter.
    """
    from ray_icma.train.lora_sft_loop import ADAPTER_DIR

    source = Path(checkpoint_dir) / ADAPTER_DIR
    if not (source / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{checkpoint_dir} has no {ADAPTER_DIR}/adapter_config.json; is it a ray-icma training checkpoint?")
    out = Path(out_dir)
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(source, out)
    return out


def merge_adapter(
    adapter_dir: str | PathLike[str],
    out_dir: str | PathLike[str],
    base_model: str | None = None,
    *,
    gguf_file: str | None = None,
) -> Path:
    """Fold the adapter into its base model (``merge_and_unload``) and ``save_pretrained`` it.

    The result loads with plain ``AutoModelForCausalLM.from_pretrained(out_dir)`` (or
    ``load_causal_lm(out_dir)``), e.g. for vLLM / Ray Serve LLM without peft.
    """
    from ray_icma.models import load_with_adapter

    model, tokenizer = load_with_adapter(adapter_dir, base_model, gguf_file=gguf_file, merge=True, torch_dtype="float32")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out
