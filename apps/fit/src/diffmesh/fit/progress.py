"""Progress output: a tqdm bar on a terminal, plain loss lines in logs, notes for silent phases.

On a terminal, a tqdm bar whose postfix shows what fits its width: every loss term when
there is room, else the total and the main term (the first after the total), else the
total alone. When stderr is not a terminal (a CI log, a pipe), tqdm draws nothing (it
decides: ``disable=None``), and a plain line with every loss is printed every
``log_every`` iterations instead. ``TQDM_DISABLE=1`` hides the bar as well (the plain
lines then replace it). ``--quiet`` prints nothing.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import time
from collections.abc import Mapping
from typing import TextIO

from tqdm import tqdm

__all__ = ["Progress", "announce", "format_postfix"]

#: Columns kept free for the rate and times to grow between two postfix updates.
_RATE_SLACK = 3


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


def announce(message: str, *, enabled: bool = True, file: TextIO | None = None) -> None:
    """Say on stderr (one line) what a phase without a bar is doing, e.g. ``evaluating``."""
    if enabled:
        stream = file if file is not None else sys.stderr
        stream.write(message + "\n")
        stream.flush()


def format_postfix(losses: Mapping[str, float], room: int) -> str:
    """The loss postfix that fits ``room`` characters: every term, else ``total`` and the
    main term (the first after ``total``), else ``total`` alone (even if longer)."""
    items = [(k, v) for k, v in losses.items()]
    choices = [items, items[:2], items[:1]]
    for chosen in choices:
        text = " ".join(f"{k} {v:.3g}" for k, v in chosen)
        if len(text) <= room:
            return text
    return " ".join(f"{k} {v:.3g}" for k, v in items[:1])


class Progress:
    """Progress over optimisation iterations that shows the latest losses.

    Reading the loss values costs a host sync, so they are read only every
    ``refresh_every`` iterations for the bar, and every ``log_every`` for the plain lines.

    Args:
        total: number of iterations.
        description: the label, e.g. ``"fit shape (fish)"``.
        enabled: False prints nothing (``--quiet``).
        refresh_every: iterations between postfix updates of the bar.
        log_every: iterations between plain loss lines when no bar is drawn; None for about
            20 lines a run (at least every 10 iterations).
        file: the stream (stderr by default).
    """

    def __init__(
        self,
        total: int,
        description: str,
        *,
        enabled: bool = True,
        refresh_every: int = 10,
        log_every: int | None = None,
        file: TextIO | None = None,
    ) -> None:
        self._file = file if file is not None else sys.stderr
        self._description = description
        self._total = int(total)
        self._enabled = enabled
        disable: bool | None = None  # tqdm decides: no bar unless the stream is a terminal
        if not enabled or _env_true("TQDM_DISABLE"):
            disable = True
        self._bar = tqdm(
            total=total,
            desc=description,
            disable=disable,
            file=self._file,
            dynamic_ncols=True,
            leave=True,
        )
        self._refresh_every = max(int(refresh_every), 1)
        self._lines = enabled and bool(self._bar.disable)
        self._log_every = (
            max(int(log_every), 1) if log_every is not None else max(10, math.ceil(total / 20))
        )
        self._start = time.perf_counter()

    @property
    def bar_shown(self) -> bool:
        """Whether a tqdm bar is drawn."""
        return not self._bar.disable

    def _postfix(self, losses: Mapping[str, float]) -> str:
        """The postfix that fits the terminal beside a bar of at least 10 cells; on a narrow
        terminal the label drops its parenthesis (``fit shape (fish)`` -> ``fit shape``)."""
        cols = self._bar.ncols or shutil.get_terminal_size((80, 24)).columns
        text = ""
        for desc in dict.fromkeys((self._description, self._description.split(" (")[0])):
            self._bar.set_description_str(desc, refresh=False)
            # The line as tqdm draws it now with a 10-cell bar (ncols None) and no postfix.
            base = self._bar.format_meter(
                **{**self._bar.format_dict, "ncols": None, "postfix": None}
            )
            room = cols - len(base) - 2 - _RATE_SLACK  # ", " before the postfix
            text = format_postfix(losses, room)
            if len(text) <= room:
                break
        return text

    def update(self, iteration: int, losses: Mapping[str, float] | None = None) -> None:
        """Advance one iteration (``iteration`` counts from 0); ``losses`` (name -> value,
        the total first) are shown when given."""
        if losses is not None and self.bar_shown:
            self._bar.set_postfix_str(self._postfix(losses), refresh=False)
        self._bar.update(1)
        if losses is not None and self._lines:
            done = iteration + 1
            elapsed = time.perf_counter() - self._start
            rate = f", {done / elapsed:.1f} it/s" if elapsed > 0 else ""
            terms = " ".join(f"{k} {v:.4g}" for k, v in losses.items())
            self._file.write(
                f"{self._description}: iteration {done}/{self._total}{rate}: {terms}\n"
            )
            self._file.flush()

    def wants_losses(self, iteration: int) -> bool:
        """Whether ``update`` at this iteration would show losses (saves a sync otherwise)."""
        if self.bar_shown:
            return iteration % self._refresh_every == 0
        if self._lines:
            done = iteration + 1
            return done % self._log_every == 0 or done == self._total
        return False

    def close(self) -> None:
        """Finish the bar (idempotent)."""
        self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
