"""The ``fit`` console script's entry point: process set-up, then the command line.

Kept to the standard library so that it runs first and fast: it turns a Ctrl-C at any
moment of the start (imports included) into one line and exit code 130, sets the process
up for fitting loops (glibc keeps freed memory mapped: :mod:`diffmesh.fit.allocator`), and
starts the CPU thread policy's first measurement before torch loads, so that the policy's
first decision covers the imports (:mod:`diffmesh.fit.threads`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import NoReturn

__all__ = ["main"]

EXIT_INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point of the ``fit`` console script."""
    try:
        from diffmesh.fit.allocator import keep_freed_memory
        from diffmesh.fit.threads import ThreadPolicy, install_policy

        keep_freed_memory()
        install_policy(ThreadPolicy())  # `--threads N` replaces it; it reads counters only
        from diffmesh.fit.cli import main as cli_main

        cli_main(argv)
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(0)  # cli_main exits itself; kept for type checkers
