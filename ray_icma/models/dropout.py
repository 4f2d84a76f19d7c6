"""LoRA's input dropout without ``bernoulli_``: the same keep probability from 16-bit uniform integers.

peft puts an ``nn.Dropout`` in front of every LoRA adapter (ICMA: p 0.1 on every linear layer, 210
modules in SmolLM2-135M). On CPU, ``torch.nn.functional.dropout`` draws its mask with ``bernoulli_``,
one Mersenne-Twister draw per element: profiled on this repository's 2-core box, those draws were
23% of a bf16 LoRA training step. Here the mask's bits come from numpy's SFC64 generator
(``random_raw``: 64 bits per draw, read as four 16-bit uniforms, no float conversion), seeded for
every call from torch's default generator, so ``torch.manual_seed`` makes the masks repeatable. The
first version drew a 31-bit Mersenne-Twister number for two 15-bit uniforms, masked and compared
them, and returned ``x * keep * scale``: two multiplications forward and two backward, one with a
bool operand. This one builds the mask in ``x``'s dtype with the scale folded in: one multiplication
each way (what that buys a training step: ``benchmarks/README.md``, the runs of 2026-12-05 10:20
UTC). The drop probability is ``round(p * 65536) / 65536`` (p 0.1 -> 0.1000061; off by less than
7.7e-6 for any p), kept values are scaled by ``1 / (1 - p)`` in the input's dtype, as
``nn.Dropout`` does. Off the CPU, in eval mode, at p 0 or p 1 it is exactly
``nn.Dropout``.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["CpuFastDropout", "use_fast_dropout"]


class CpuFastDropout(torch.nn.Dropout):
    """``nn.Dropout`` whose CPU training-mode mask comes from 16-bit uniform integers (see the module doc)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p in (0.0, 1.0) or x.device.type != "cpu":
            return super().forward(x)
        n = x.numel()
        seed = int(torch.randint(0, 2**63 - 1, (1,), dtype=torch.int64))  # torch's generator: manual_seed repeats it
        draws = np.random.SFC64(seed).random_raw((n + 3) // 4)  # 64 bits per draw: four 16-bit uniforms
        bits = torch.from_numpy(draws.view(np.int16)[:n]).view(x.shape)  # each uniform on [-32768, 32767]
        keep = (bits >= round(self.p * 65536) - 32768).to(x.dtype).mul_(1.0 / (1.0 - self.p))
        return x * keep  # the same mask (with its scale) multiplies the gradient


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
