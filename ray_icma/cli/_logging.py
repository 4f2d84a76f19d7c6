"""Logging for the `ray-icma` command line: one handler on stderr, set by ``-v``/``-q``.

Without it, library code's ``log.warning(...)`` reaches Python's last-resort handler (a bare
message, no level or origin) and ``log.info(...)`` is lost. Levels:

=========  ======================================  =====================
flags      ray_icma / retrieval / serve loggers    everything else
=========  ======================================  =====================
``-q``     ERROR                                   ERROR
(none)     WARNING (inherited from the root)       WARNING
``-v``     INFO                                    WARNING
``-vv``    DEBUG                                   INFO
=========  ======================================  =====================

``warnings.warn`` goes through logging too (logger ``py.warnings``), so ``-q`` silences it.
"""
from __future__ import annotations

import logging
import sys

PROJECT_LOGGERS = ("ray_icma", "retrieval", "serve")
FORMAT = "%(levelname)s %(name)s: %(message)s"
_HANDLER_NAME = "ray-icma-cli"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at emit time (test runners and tools swap it)."""

    @property  # StreamHandler declares a plain attribute; this one follows sys.stderr
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it; the property ignores that
        pass


def levels(verbose: int, quiet: bool) -> tuple[int, int]:
    """(project level, root level) for ``verbose`` ``-v`` flags and ``quiet``."""
    if quiet:
        return logging.ERROR, logging.ERROR
    if verbose <= 0:
        return logging.NOTSET, logging.WARNING  # NOTSET: the project loggers follow the root (WARNING)
    if verbose == 1:
        return logging.INFO, logging.WARNING
    return logging.DEBUG, logging.INFO


def configure_logging(verbose: int = 0, quiet: bool = False) -> None:
    """Install (once; a second call only changes the levels) a stderr handler on the root logger."""
    project_level, root_level = levels(verbose, quiet)
    root = logging.getLogger()
    handler = next((h for h in root.handlers if h.get_name() == _HANDLER_NAME), None)
    if handler is None:
        handler = _StderrHandler()  # plain text, so SMILES brackets survive
        handler.set_name(_HANDLER_NAME)
        handler.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(handler)
    handler.setLevel(logging.NOTSET)
    root.setLevel(root_level)
    for name in PROJECT_LOGGERS:
        logging.getLogger(name).setLevel(project_level)
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").setLevel(logging.ERROR if quiet else logging.WARNING)
