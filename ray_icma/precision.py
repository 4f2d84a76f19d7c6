"""One precision setting for training, batch generation and serving: ``auto | bf16 | fp32``.

``auto`` picks bf16 where the hardware computes it natively and fp32 elsewhere:

- CUDA: bf16 when ``torch.cuda.is_bf16_supported()``.
- CPU: bf16 when ``/proc/cpuinfo`` lists ``amx_bf16`` or ``avx512_bf16`` (Intel Sapphire Rapids and
  later, AMD Zen 4 and later) *and* torch's oneDNN reports bf16 support; else fp32 (bf16 would be
  emulated and slower than fp32).

Training uses bf16 inside ``torch.autocast``: the trainable weights, their gradients and the optimizer
state stay fp32 ("master weights"); a LoRA model's frozen weights are stored in bf16
(:func:`store_frozen_weights`). Generation casts the model to bf16 (no optimizer, nothing to keep).

"Checked, not assumed": :func:`probe_kernels` runs one small bf16 matmul with oneDNN's verbose
mode on and returns the implementation oneDNN picked (e.g. ``brg_matmul:avx512_core_amx_bf16``
or ``brg_matmul:avx512_core_bf16``), which training and generation log once at start-up.

    from ray_icma.precision import resolve_precision, autocast, model_dtype
    p = resolve_precision("auto", "cpu")          # "bf16" or "fp32"
    with autocast(p, "cpu"):
        loss = model(**batch).loss
"""
from __future__ import annotations

import contextlib
import functools
import logging
import os
import tempfile
from typing import Any, Literal

__all__ = [
    "PRECISIONS",
    "Precision",
    "cpu_bf16_flags",
    "resolve_precision",
    "model_dtype",
    "autocast",
    "store_frozen_weights",
    "probe_kernels",
    "describe",
]

log = logging.getLogger(__name__)

Precision = Literal["auto", "bf16", "fp32"]
PRECISIONS: tuple[str, ...] = ("auto", "bf16", "fp32")
#: /proc/cpuinfo flags that mean native bf16 matmuls (AMX tiles or AVX512 dot products).
_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_bf16_flags(cpuinfo: str = "/proc/cpuinfo") -> list[str]:
    """The native-bf16 flags this CPU advertises (``amx_bf16``, ``avx512_bf16``); [] when none or unknown."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return [f for f in _BF16_FLAGS if f in flags]
    except OSError:
        pass
    return []


def _check(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")


def resolve_precision(precision: str = "auto", device: str = "cpu", *, cpuinfo: str = "/proc/cpuinfo") -> str:
    """``"bf16"`` or ``"fp32"`` for ``precision`` on ``device`` (``cpu``, ``cuda``, ``cuda:1``...).

    Raises:
        ValueError: an unknown precision name.
    """
    _check(precision)
    if precision != "auto":
        return precision
    import torch

    if str(device).startswith("cuda"):
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    if not cpu_bf16_flags(cpuinfo):
        return "fp32"
    try:
        native = bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without oneDNN
        native = False
    return "bf16" if native else "fp32"


def model_dtype(precision: str) -> Any:
    """The torch dtype a model is cast to for *inference* at a resolved precision."""
    import torch

    if precision == "auto":
        raise ValueError("resolve the precision first (resolve_precision)")
    _check(precision)
    return torch.bfloat16 if precision == "bf16" else torch.float32


def autocast(precision: str, device_type: str = "cpu") -> Any:
    """``torch.autocast(device_type, bfloat16)`` for bf16, a no-op context for fp32.

    Use around the forward pass of *training* so the weights and the optimizer stay fp32.
    """
    import torch

    if precision == "auto":
        raise ValueError("resolve the precision first (resolve_precision)")
    _check(precision)
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device_type.split(":")[0], dtype=torch.bfloat16)


def store_frozen_weights(model: Any, precision: str) -> int:
    """Store a LoRA model's frozen weights in bf16, so its bf16 autocast runs on bf16 activations throughout.

    Under ``torch.autocast`` a frozen fp32 weight (no ``requires_grad``, so outside autocast's cast
    cache) is cast to bf16 again at every forward; fp32 embeddings and norms keep the residual stream
    in fp32, so every linear layer's input is cast to bf16 again (and its gradient back, in the
    backward pass); and peft casts each adapter's input up to the adapter's fp32 dtype first
    (``_cast_input_dtype``), for autocast to cast it down again. Here every frozen floating-point
    parameter (the base linears, embeddings, norms, a tied ``lm_head``) is stored in bf16 once, and
    peft's input cast is turned off (``cast_input_dtype_enabled``), so bf16 activations reach the
    adapters as they are (autocast still computes the adapters' matmuls in bf16 from their fp32
    weights, as before). The trainable weights (the adapters: the master weights), their gradients and
    the optimizer state stay fp32. What changes numerically: the residual stream between layers is
    bf16, as in any model loaded in bf16 for LoRA training (the losses of 12 SmolLM2-135M steps moved by
    less than 0.01). A no-op for fp32, and for full fine-tuning (nothing is frozen).

    Returns:
        how many parameters were converted.
    """
    import torch

    if precision == "auto":
        raise ValueError("resolve the precision first (resolve_precision)")
    _check(precision)
    if precision == "fp32":
        return 0
    converted = 0
    for param in model.parameters():
        if not param.requires_grad and param.is_floating_point() and param.dtype != torch.bfloat16:
            param.data = param.data.to(torch.bfloat16)
            converted += 1
    for module in model.modules():
        if hasattr(module, "cast_input_dtype_enabled"):  # peft's LoRA layers
            module.cast_input_dtype_enabled = False
    return converted


@contextlib.contextmanager
def _capture_fd1():
    """Capture what C code writes to file descriptor 1 (oneDNN verbose prints there)."""
    import sys

    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 1)
        box: dict[str, str] = {}
        try:
            yield box
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
            tmp.seek(0)
            box["text"] = tmp.read().decode("utf-8", errors="replace")


@functools.lru_cache(maxsize=None)
def probe_kernels(precision: str, device: str = "cpu") -> dict:
    """Run one small matmul at ``precision`` and report which kernel executed it.

    On CPU, oneDNN's verbose mode names the implementation (``brg_matmul:avx512_core_amx_bf16``,
    ``brg_matmul:avx512_core_bf16``, ``gemm:jit`` ...). On CUDA it reports the device name and
    whether bf16 is supported. Cached per process.

    Returns:
        ``{"precision", "device", "cpu_capability", "bf16_flags", "kernel"}``; ``kernel`` is
        ``"unknown"`` when the backend did not say.
    """
    import torch

    info: dict[str, Any] = {
        "precision": precision,
        "device": device,
        "cpu_capability": getattr(torch.backends.cpu, "get_cpu_capability", lambda: "unknown")(),
        "bf16_flags": cpu_bf16_flags(),
        "torch_threads": torch.get_num_threads(),
        "kernel": "unknown",
    }
    dtype = model_dtype(precision)
    if str(device).startswith("cuda"):
        info["kernel"] = f"cuda:{torch.cuda.get_device_name(device)} bf16_supported={torch.cuda.is_bf16_supported()}"
        return info
    lin = torch.nn.Linear(64, 64).to(dtype)
    x = torch.randn(8, 64, dtype=dtype)
    try:
        with _capture_fd1() as out, torch.no_grad(), torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
            lin(x)
    except Exception as exc:  # noqa: BLE001 - a probe must never break a run
        info["kernel"] = f"unknown ({type(exc).__name__})"
        return info
    for line in out.get("text", "").splitlines():
        parts = line.split(",")
        if "exec" in parts and ("matmul" in parts or "inner_product" in parts):
            # onednn_verbose,v1,primitive,exec,cpu,<primitive>,<implementation>,...
            idx = parts.index("exec")
            info["kernel"] = f"{parts[idx + 2]}:{parts[idx + 3]}"
            break
    else:
        if precision == "fp32":
            info["kernel"] = "aten fp32 gemm (oneDNN not used)"
    return info


def describe(precision: str, device: str = "cpu") -> str:
    """One log line: the precision, the kernel that runs it and the CPU's bf16 flags."""
    p = probe_kernels(precision, device)
    flags = ",".join(p["bf16_flags"]) or "none"
    return (f"precision {precision} on {device}: kernel {p['kernel']} (cpu {p['cpu_capability']}, "
            f"bf16 flags {flags}, torch threads {p['torch_threads']})")
