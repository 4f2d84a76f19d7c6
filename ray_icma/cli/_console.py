"""The one way `ray-icma` commands print rich output: consoles that never parse markup.

User data (SMILES such as ``Cc1c[nH]c2ccccc12``, CIDs, paths, run names) goes straight into
tables and lines, so rich's ``[...]`` markup must be off everywhere; styling is passed as
``style=`` or with :class:`rich.text.Text` instead.
"""
from __future__ import annotations

from rich.console import Console


def console(*, stderr: bool = False) -> Console:
    """A console for CLI output: no markup, no auto-highlighting, long lines kept whole (paths stay copy-pasteable)."""
    return Console(stderr=stderr, markup=False, highlight=False, soft_wrap=True)
