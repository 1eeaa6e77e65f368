"""The optimizer-dependent defaults of both pipelines, without importing torch.

The command line reads these while parsing options (``fit --help`` must not load torch);
:mod:`diffmesh.fit.optimizers` builds the optimizers themselves.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DEFAULTS", "OPTIMIZERS", "resolve_defaults"]

OPTIMIZERS = ("sgd", "largesteps")

#: command -> optimizer -> the defaults of the settings that depend on the optimizer.
#: largesteps, fit shape: lr 0.05 measured against 0.02 on the fish (see the fit README);
#: fit images: lr, lambda and silhouette weight chosen from the fit README's measurements.
DEFAULTS: dict[str, dict[str, dict[str, float]]] = {
    "shape": {
        "sgd": {"lr": 1.0, "lambda_": 10.0, "w_edge": 1.0, "w_normal": 0.01, "w_laplacian": 0.1},
        "largesteps": {
            "lr": 0.05,
            "lambda_": 10.0,
            "w_edge": 0.0,
            "w_normal": 0.0,
            "w_laplacian": 0.0,
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
            "lambda_": 5.0,
            "w_silhouette": 10.0,
            "w_edge": 0.0,
            "w_normal": 0.0,
            "w_laplacian": 0.0,
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
