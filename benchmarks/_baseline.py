"""The baseline side of an old-vs-new benchmark: a commit's files, extracted with ``git archive``."""
from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def extract_tree(ref: str, dest: Path, *paths: str) -> Path:
    """Write commit ``ref`` of this repository (only ``paths`` when given) into ``dest``; return ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, *paths], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest
