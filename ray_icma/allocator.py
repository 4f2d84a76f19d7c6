"""The memory allocator of ray-icma's CPU model workers: tcmalloc where the machine has it.

A CPU training step or generation batch allocates and frees thousands of activation tensors of
a few MB. glibc's malloc hands those back to the kernel and faults them in again (every new
sequence length costs most: measured on the 2-core AMX Xeon, SmolLM2-135M + LoRA training went
from 367 to 508 tokens/s and batch-16 generation from 1,208 to 1,415 tokens/s with tcmalloc and
nothing else changed; ``benchmarks/bench_cpu_fastpath.py`` measures it against today's path).
The allocator has to be chosen when a process starts, so it is an ``LD_PRELOAD`` in the
``runtime_env`` of the Ray actors that run models on CPU: the training workers
(``train.trainer.build_trainer``), the batch generation actors
(``generate.batch_generate.generate_predictions``) and the Serve Generator's CPU replicas.
Numerics do not change (same kernels, same order of operations).

``$RAY_ICMA_ALLOCATOR`` picks it: ``auto`` (default: tcmalloc, else jemalloc, else the system's),
``tcmalloc``, ``jemalloc``, ``system``, or the path of a shared library. Debian/Ubuntu:
``apt-get install libtcmalloc-minimal4`` (``scripts/setup.sh`` and the cluster image install it).
The library is named by its soname, so every node's own loader resolves it; a node without it
runs the process on the system allocator (the loader warns once and goes on).
"""
from __future__ import annotations

import ctypes.util
import os

from ray_icma import env

__all__ = ["ALLOCATORS", "allocator_env", "find_allocator", "loaded_allocator"]

#: name -> library names ``ctypes.util.find_library`` looks up, in order, and the Debian package.
ALLOCATORS: dict[str, tuple[tuple[str, ...], str]] = {
    "tcmalloc": (("tcmalloc_minimal", "tcmalloc"), "libtcmalloc-minimal4"),
    "jemalloc": (("jemalloc",), "libjemalloc2"),
}
_CHOICES = ("auto", *ALLOCATORS, "system")


def _lookup(name: str) -> str | None:
    for lib in ALLOCATORS[name][0]:
        found = ctypes.util.find_library(lib)
        if found:
            return found
    return None


def find_allocator(setting: str | None = None) -> str | None:
    """The library to preload (a soname or a path), or ``None`` for the system allocator.

    Args:
        setting: ``auto`` | ``tcmalloc`` | ``jemalloc`` | ``system`` | a path to a ``.so``;
            default ``$RAY_ICMA_ALLOCATOR`` or ``auto``.

    Raises:
        ValueError: an unknown setting, a named allocator this machine lacks (with the package
            that provides it), or a path that is not a file.
    """
    setting = (setting or env.get("RAY_ICMA_ALLOCATOR") or "auto").strip()
    if setting == "system":
        return None
    if setting == "auto":
        for name in ALLOCATORS:
            found = _lookup(name)
            if found:
                return found
        return None
    if setting in ALLOCATORS:
        found = _lookup(setting)
        if not found:
            raise ValueError(f"RAY_ICMA_ALLOCATOR={setting}: not installed here "
                             f"(Debian/Ubuntu: apt-get install {ALLOCATORS[setting][1]}); or set it to auto or system")
        return found
    if "/" in setting:
        if not os.path.isfile(setting):
            raise ValueError(f"RAY_ICMA_ALLOCATOR={setting}: no such file")
        return setting
    raise ValueError(f"RAY_ICMA_ALLOCATOR={setting!r}: expected one of {', '.join(_CHOICES)} or a path to a shared library")


def allocator_env(setting: str | None = None) -> dict[str, str]:
    """``runtime_env["env_vars"]`` for a CPU model worker: the preload, or ``{}`` for the system allocator.

    tcmalloc's "large alloc" notes (every allocation over 1 GiB, e.g. loading a bigger model) are
    turned off; they are notices, not errors.
    """
    lib = find_allocator(setting)
    if lib is None:
        return {}
    out = {"LD_PRELOAD": lib}
    if "tcmalloc" in lib:
        out["TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD"] = str(1 << 40)
    return out


def loaded_allocator(maps: str = "/proc/self/maps") -> str:
    """Which allocator this process runs on: ``tcmalloc``, ``jemalloc`` or ``system`` (checked, not assumed:
    the workers report it with their metrics)."""
    try:
        with open(maps) as fh:
            mapped = fh.read()
    except OSError:
        return "system"
    for name in ALLOCATORS:
        if f"lib{name}" in mapped:
            return name
    return "system"
