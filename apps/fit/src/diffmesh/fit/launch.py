"""The ``fit`` console script's entry point: process set-up, then the command line.

Kept to the standard library so that it runs first and fast: it turns a Ctrl-C at any
moment of the start (imports included) into one line and exit code 130, sets the process
up for fitting loops (glibc keeps freed memory mapped: :mod:`diffmesh.fit.allocator`), and
starts the CPU thread policy's first measurement before torch loads, so that the policy's
first decision covers the imports (:mod:`diffmesh.fit.threads`).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import NoReturn

__all__ = ["deferred_interrupt", "main"]

EXIT_INTERRUPTED = 130


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Hold a Ctrl-C (SIGINT) until the block ends, then raise KeyboardInterrupt.

    For imports: a KeyboardInterrupt inside one can leave a module half-imported (numpy
    without ``numpy.matrix``, say) or be swallowed by a library's broad ``except``, so the
    start-up would fail with an unrelated error or go on as if nothing had been pressed.
    Outside the main thread (where handlers cannot be set) the block runs unguarded. A
    process started with SIGINT ignored (a background job of a script, ``nohup``-style
    launchers) keeps ignoring it: Ctrl-C at the terminal is not meant for it.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        yield
        return
    pending: list[int] = []
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: pending.append(signum))
    except ValueError:  # not the main interpreter
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pending:
        raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point of the ``fit`` console script."""
    try:
        with deferred_interrupt():
            from diffmesh.fit.allocator import keep_freed_memory
            from diffmesh.fit.threads import ThreadPolicy, install_policy

        keep_freed_memory()
        install_policy(ThreadPolicy())  # `--threads N` replaces it; it reads counters only
        with deferred_interrupt():
            from diffmesh.fit.cli import main as cli_main

        cli_main(argv)
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(0)  # cli_main exits itself; kept for type checkers
