"""LoRA presets: ICMA's defaults (r 32, alpha 64, dropout 0.1 on every linear layer but lm_head)."""
from __future__ import annotations

from typing import Any

__all__ = ["lora_config", "linear_module_names", "apply_lora"]


def linear_module_names(model: Any, exclude: tuple[str, ...] = ("lm_head",)) -> list[str]:
    """Leaf names of every ``nn.Linear`` in ``model`` (e.g. q_proj, up_proj), minus ``exclude``.

    This is how ICMA's ``icma_train.py`` picks LoRA targets, so the same layers get adapters.
    """
    import torch

    names = {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)}
    return sorted(names - set(exclude))


def lora_config(
    r: int = 32,
    alpha: int = 64,
    dropout: float = 0.1,
    target: str | list[str] = "all-linear",
    model: Any = None,
) -> Any:
    """A peft ``LoraConfig`` for causal-LM fine-tuning.

    Args:
        r: LoRA rank (ICMA: 32).
        alpha: LoRA scaling numerator (ICMA: 64).
        dropout: dropout on the LoRA input (ICMA: 0.1).
        target: ``"all-linear"`` (every linear layer except the output head) or explicit
            module names. With ``model`` given, ``"all-linear"`` is expanded to the names
            found in it (ICMA's way); without it, peft's own ``"all-linear"`` does the same.
        model: optional model to read the linear layer names from.

    Returns:
        ``peft.LoraConfig`` with ``task_type="CAUSAL_LM"`` and ``bias="none"``.
    """
    from peft import LoraConfig

    targets: Any = target
    if target == "all-linear" and model is not None:
        targets = linear_module_names(model)
    return LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets, bias="none", task_type="CAUSAL_LM")


def apply_lora(model: Any, config: Any = None) -> Any:
    """Wrap ``model`` in a peft model with ``config`` (default: ICMA's preset for this model).

    The adapters' input dropout is :class:`ray_icma.models.dropout.CpuFastDropout` (same drop
    probability, a cheaper mask on CPU; unchanged elsewhere).
    """
    from peft import get_peft_model

    from ray_icma.models.dropout import use_fast_dropout

    peft_model = get_peft_model(model, config if config is not None else lora_config(model=model))
    use_fast_dropout(peft_model)
    return peft_model
