"""LoRA's input dropout without ``bernoulli_``: the same keep probability from 15-bit uniform integers.

peft puts an ``nn.Dropout`` in front of every LoRA adapter (ICMA: p 0.1 on every linear layer, 210
modules in SmolLM2-135M). On CPU, ``torch.nn.functional.dropout`` draws its mask with ``bernoulli_``,
one Mersenne-Twister draw per element: profiled on this repository's 2-core box, those draws were
23% of a bf16 LoRA training step. Here one 31-bit draw (``random_`` on int32) gives two 15-bit
uniforms (the int32 viewed as two int16, masked to 15 bits), so the mask needs half as many draws
and no float conversion. The drop probability is ``round(p * 32768) / 32768`` (p 0.1 -> 0.099976;
off by less than 1.6e-5 for any p), kept values are scaled by ``1 / (1 - p)`` as in ``nn.Dropout``,
and the draws come from torch's default generator, so ``torch.manual_seed`` makes them repeatable.
Off the CPU, in eval mode or at p 0 it is exactly ``nn.Dropout``.
"""
from __future__ import annotations

from typing import Any

import torch

__all__ = ["CpuFastDropout", "use_fast_dropout"]


class CpuFastDropout(torch.nn.Dropout):
    """``nn.Dropout`` whose CPU training-mode mask comes from 15-bit uniform integers (see the module doc)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0 or x.device.type != "cpu":
            return super().forward(x)
        n = x.numel()
        draws = torch.empty((n + 1) // 2, dtype=torch.int32).random_()  # uniform on [0, 2**31 - 1]
        bits = draws.view(torch.int16)[:n].bitwise_and_(0x7FFF).view(x.shape)  # each uniform on [0, 32767]
        keep = bits >= round(self.p * 32768)
        return x * keep * (1.0 / (1.0 - self.p))


def use_fast_dropout(model: Any) -> int:
    """Replace every plain ``nn.Dropout`` inside peft's ``lora_dropout`` dicts of ``model``; returns how many."""
    swapped = 0
    for module in model.modules():
        table = getattr(module, "lora_dropout", None)
        if not isinstance(table, torch.nn.ModuleDict):
            continue
        for name, layer in list(table.items()):
            if type(layer) is torch.nn.Dropout:
                table[name] = CpuFastDropout(p=layer.p)
                swapped += 1
    return swapped
