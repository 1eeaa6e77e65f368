"""The progress bar: tqdm with the current losses as its postfix."""

from __future__ import annotations

import sys
from collections.abc import Mapping

from tqdm import tqdm

__all__ = ["Progress"]


class Progress:
    """A tqdm bar over optimisation iterations that shows the latest losses.

    Updating the postfix costs a host sync (reading the loss values), so it is refreshed
    only every ``refresh_every`` iterations; advancing the bar is cheap.

    Args:
        total: number of iterations.
        description: the bar's label, e.g. ``"fit shape"``.
        enabled: False draws nothing (``--quiet``).
        refresh_every: iterations between postfix updates.
    """

    def __init__(
        self, total: int, description: str, *, enabled: bool = True, refresh_every: int = 10
    ) -> None:
        self._bar = tqdm(
            total=total,
            desc=description,
            disable=not enabled,
            file=sys.stderr,
            dynamic_ncols=True,
            leave=True,
        )
        self._refresh_every = max(int(refresh_every), 1)

    def update(self, iteration: int, losses: Mapping[str, float] | None = None) -> None:
        """Advance one iteration; ``losses`` (name -> value) is shown when given."""
        if losses is not None and not self._bar.disable:
            self._bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items()}, refresh=False)
        self._bar.update(1)

    def wants_losses(self, iteration: int) -> bool:
        """Whether ``update`` at this iteration would show losses (saves a sync otherwise)."""
        return not self._bar.disable and iteration % self._refresh_every == 0

    def close(self) -> None:
        """Finish the bar (idempotent)."""
        self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
