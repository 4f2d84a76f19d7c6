"""This process's peak resident memory, as the training loop and the benchmarks report it."""
from __future__ import annotations

import resource
import sys

__all__ = ["peak_rss_mb"]


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB.

    Linux: ``VmHWM`` of /proc/self/status, the high-water mark of this process's own memory.
    ``ru_maxrss`` is not that: Linux carries it across fork + exec, so a child started by a big
    parent reports the parent's peak (bench_cpu_fastpath's generation children once both showed
    the driver's 5,548 MiB). Elsewhere ``ru_maxrss`` (KiB on Linux, bytes on macOS).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
