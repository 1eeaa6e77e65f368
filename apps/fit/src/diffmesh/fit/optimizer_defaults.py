"""The optimizer-dependent defaults of both pipelines, without importing torch.

The command line reads these while parsing options (``fit --help`` must not load torch);
:mod:`diffmesh.fit.optimizers` builds the optimizers themselves.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["DEFAULTS", "LR_SCHEDULES", "OPTIMIZERS", "lr_factor", "resolve_defaults"]

OPTIMIZERS = ("sgd", "largesteps")

#: ``fit shape``'s learning-rate schedules (see :func:`lr_factor`).
LR_SCHEDULES = ("constant", "cosine")

#: command -> optimizer -> the defaults of the settings that depend on the optimizer.
#: largesteps, fit shape: lr 0.05 measured against 0.02 on the fish; normal-consistency and
#: Laplacian weights 0.3x the tutorial's (0.003, 0.03), measured against none, 0.1x and 1x
#: the tutorial's: fewer fold-overs than the tutorial's on the fish for about the same
#: chamfer as none (see the fit README);
#: the cosine schedule measured no better than constant. fit images: lr and silhouette
#: weight chosen from the fit README's measurements; lambda 3 with the tutorial's normal and
#: Laplacian weights, measured against lambda 5 without penalties (three seeds): a lower
#: chamfer to the cow with fewer folded faces (the penalties keep the smaller lambda's
#: steps from folding the surface).
DEFAULTS: dict[str, dict[str, dict[str, float | str]]] = {
    "shape": {
        "sgd": {
            "lr": 1.0,
            "lr_schedule": "constant",
            "lambda_": 10.0,
            "w_edge": 1.0,
            "w_normal": 0.01,
            "w_laplacian": 0.1,
        },
        "largesteps": {
            "lr": 0.05,
            "lr_schedule": "constant",
            "lambda_": 10.0,
            "w_edge": 0.0,
            "w_normal": 0.003,
            "w_laplacian": 0.03,
        },
    },
    "images": {
        "sgd": {
            "lr": 1.0,
            "lambda_": 10.0,
            "w_silhouette": 1.0,
            "w_edge": 1.0,
            "w_normal": 0.01,
            "w_laplacian": 1.0,
        },
        "largesteps": {
            "lr": 0.03,
            "lambda_": 3.0,
            "w_silhouette": 10.0,
            "w_edge": 0.0,
            "w_normal": 0.01,
            "w_laplacian": 1.0,
        },
    },
}


def resolve_defaults(command: str, options: dict[str, Any], given: set[str]) -> dict[str, Any]:
    """``options`` with the optimizer-dependent settings not in ``given`` set to the defaults
    of ``command`` (``"shape"`` or ``"images"``) and ``options["optimizer"]``.

    Raises:
        ValueError: an unknown command or optimizer.
    """
    optimizer = options.get("optimizer", "sgd")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"--optimizer: expected one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
    if command not in DEFAULTS:
        raise ValueError(f"command: expected shape or images, got {command!r}")
    defaults = DEFAULTS[command][optimizer]
    return {**options, **{k: v for k, v in defaults.items() if k not in given}}


def lr_factor(schedule: str, iteration: int, iters: int, *, start: float, final: float) -> float:
    """The learning rate of ``iteration`` (0-based, of ``iters``) as a fraction of ``--lr``.

    ``constant``: 1. ``cosine``: 1 for the first ``start * iters`` iterations, then a
    half cosine from 1 down to ``final`` at the last iteration:
    ``final + (1 - final) (1 + cos(pi s)) / 2`` with ``s`` in [0, 1] the fraction of the
    decay done.

    Args:
        schedule: one of :data:`LR_SCHEDULES`.
        iteration: the iteration whose step is taken.
        iters: the iterations of the fit.
        start: fraction of ``iters`` at which the decay begins, in [0, 1).
        final: the factor at the last iteration, in (0, 1].

    Raises:
        ValueError: an unknown schedule, ``start`` or ``final`` out of range.
    """
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"schedule: expected one of {', '.join(LR_SCHEDULES)}, got {schedule!r}")
    if not 0.0 <= start < 1.0:
        raise ValueError(f"start: expected a number in [0, 1), got {start}")
    if not 0.0 < final <= 1.0:
        raise ValueError(f"final: expected a number in (0, 1], got {final}")
    begin = start * iters
    span = iters - 1 - begin
    if schedule == "constant" or iteration <= begin or span <= 0:
        return 1.0
    done = min((iteration - begin) / span, 1.0)
    return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * done))
