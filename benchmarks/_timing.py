"""Tiny helpers shared by the benchmark scripts: a wall-clock Timer, peak RSS, and where a run's raw output goes."""
from __future__ import annotations

import json
import time
from pathlib import Path


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds`` (wall clock) and ``t.cpu_seconds`` (this
    process's CPU time, all threads: the fairer figure when other jobs share the cores)."""

    def __enter__(self) -> "Timer":
        self.start = time.perf_counter()
        self.cpu_start = time.process_time()
        self.seconds = self.cpu_seconds = 0.0
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start
        self.cpu_seconds = time.process_time() - self.cpu_start


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (``ray_icma.memory.peak_rss_mb``: VmHWM, not ru_maxrss)."""
    from ray_icma.memory import peak_rss_mb as own_peak

    return own_peak()


def spread(values) -> str:
    """``median [min-max] (n=k)`` of repeated measurements."""
    import statistics

    values = sorted(float(v) for v in values)
    return f"{statistics.median(values):.3g} [{values[0]:.3g}-{values[-1]:.3g}] (n={len(values)})"


def machine_load() -> str:
    """``uptime``'s load averages and the core count, printed with every result."""
    import os

    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def write_results(out_json: Path, report: dict, text: str) -> None:
    """One run's raw output: ``report`` as JSON at ``out_json`` and the printed ``text`` next to it (``.txt``)."""
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(report, indent=1, default=str))
    out_json.with_suffix(".txt").write_text(text.rstrip("\n") + "\n")
