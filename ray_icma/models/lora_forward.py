"""peft's LoRA linear forward without its casts and its extra passes, for CPU training under autocast.

peft computes ``result = base(x) + lora_B(lora_A(dropout(x))) * scaling`` and first casts ``x`` to
the adapter weights' dtype. Under bf16 autocast with fp32 adapters (ray-icma's CPU training) that
cast turns a bf16 input (the attention output before ``o_proj``, the MLP product before
``down_proj``) back into fp32, the dropout then runs over fp32, and autocast casts it to bf16
again for ``lora_A``; the scaling and the sum are two more passes over the layer's whole output.
Profiled on the 2-core AMX Xeon (SmolLM2-135M, LoRA on every linear layer, 210 adapters), the
activation copies were 13% and the elementwise multiplies 13% of a training step.

Here the input is cast once to the autocast dtype (a no-op for the inputs that already are), the
dropout and ``lora_A`` run on that copy, and ``torch.addmm`` adds ``scaling * h @ B^T`` to the base
output in one GEMM (fp32 accumulation, one rounding). The mathematics is peft's; the roundings
differ from peft's at bf16 precision (within autocast's own error), and are peft's exactly without
autocast up to float summation order. Everything else (no adapter or several active, merged or
disabled adapters, DoRA and other variants, ``adapter_names`` and other keyword arguments, inputs
off the CPU) goes to peft's own forward.
"""
from __future__ import annotations

import types
from typing import Any

import torch

__all__ = ["fused_lora_forward", "use_fused_lora_forward"]


def fused_lora_forward(self: Any, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    """A peft ``lora.Linear`` forward (installed per module by :func:`use_fused_lora_forward`)."""
    active = self.active_adapters
    if (args or kwargs or self.disable_adapters or self.merged or len(active) != 1 or x.device.type != "cpu"
            or active[0] not in self.lora_A or active[0] in self.lora_variant):
        return type(self).forward(self, x, *args, **kwargs)
    name = active[0]
    if torch.is_autocast_enabled("cpu"):
        x = x.to(torch.get_autocast_dtype("cpu"))
    result = self.base_layer(x)
    h = self.lora_A[name](self.lora_dropout[name](x))
    shape = result.shape
    fused = torch.addmm(result.reshape(-1, shape[-1]), h.reshape(-1, h.shape[-1]), self.lora_B[name].weight.t(),
                        alpha=self.scaling[name])
    return fused.view(shape)


def use_fused_lora_forward(model: Any) -> int:
    """Install :func:`fused_lora_forward` on every peft LoRA ``Linear`` over an ``nn.Linear``; returns how many."""
    from peft.tuners.lora.layer import Linear as LoraLinear

    installed = 0
    for module in model.modules():
        if type(module) is LoraLinear and isinstance(module.base_layer, torch.nn.Linear):
            module.forward = types.MethodType(fused_lora_forward, module)
            installed += 1
    return installed
