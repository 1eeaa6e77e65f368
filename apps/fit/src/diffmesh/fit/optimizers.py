"""The optimizer choice of both pipelines: the tutorial's SGD or Large Steps.

``sgd`` (the default, PyTorch3D's tutorials): per-vertex offsets ``d`` of the sphere
``v0``, ``v = v0 + d``, SGD with momentum, smoothness from the edge, normal-consistency and
Laplacian penalties.

``largesteps`` (Nicolet et al. 2021): the optimised tensor is ``u = M v`` with
``M = I + lambda L`` (:func:`diffmesh.meshloss.largesteps_matrix`), the vertices are
``v = M^-1 u`` each iteration, and :class:`diffmesh.meshloss.AdamUniform` takes the steps;
smoothness comes mostly from ``M``; the edge penalty defaults to 0 and the normal and
Laplacian ones to measured weights (``DEFAULTS``). In ``fit images`` the vertex colours keep
the tutorial's SGD (lr 1.0, momentum 0.9).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from diffmesh.fit.loop import MomentumSGD
from diffmesh.fit.optimizer_defaults import (
    DEFAULTS,
    LR_SCHEDULES,
    OPTIMIZERS,
    lr_factor,
    resolve_defaults,
)
from diffmesh.meshcore import Meshes
from diffmesh.meshloss import AdamUniform, from_differential, largesteps_matrix, to_differential

__all__ = ["DEFAULTS", "LR_SCHEDULES", "OPTIMIZERS", "Parameterization", "lr_factor", "resolve_defaults"]

class Parameterization:
    """The tensor an optimizer moves and the vertex offsets it gives.

    Args:
        source: the starting meshes (packed vertices ``v0``).
        optimizer: ``"sgd"`` or ``"largesteps"``.
        lr: the geometry's learning rate.
        momentum: SGD momentum (``sgd`` only).
        lambda_: ``M = I + lambda L`` (``largesteps`` only).
        extra: further leaf tensors, stepped by SGD(lr, momentum) with ``sgd`` and by
            SGD(1.0, 0.9), the tutorial's, with ``largesteps`` (vertex colours).

    Attributes:
        params: the leaf tensors to optimise: the geometry's first, then ``extra``.
        matrix: the Large Steps matrix (None with ``sgd``).
    """

    def __init__(
        self,
        source: Meshes,
        optimizer: str,
        *,
        lr: float,
        momentum: float,
        lambda_: float,
        extra: Sequence[torch.Tensor] = (),
    ) -> None:
        if optimizer not in OPTIMIZERS:
            raise ValueError(
                f"optimizer: expected one of {', '.join(OPTIMIZERS)}, got {optimizer!r}"
            )
        self.kind = optimizer
        self.lr = lr
        self.base = source.verts_packed().detach()
        self.matrix = None
        self.extra = list(extra)
        if optimizer == "sgd":
            geometry = torch.zeros_like(self.base, requires_grad=True)
            self.optimizer: Any = MomentumSGD([geometry, *self.extra], lr=lr, momentum=momentum)
        else:
            self.matrix = largesteps_matrix(source, lambda_)
            with torch.no_grad():
                geometry = to_differential(self.matrix, self.base).requires_grad_()
            self.optimizer = _Both(
                AdamUniform([geometry], lr=lr), MomentumSGD(self.extra, lr=1.0, momentum=0.9)
            )
        self.params = [geometry, *self.extra]

    def set_lr_factor(self, factor: float) -> None:
        """Set the geometry's learning rate to ``factor`` times the ``lr`` it was built
        with (a schedule, :func:`~diffmesh.fit.optimizer_defaults.lr_factor`). With
        ``sgd`` one optimizer steps ``extra`` too, at the same rate; with ``largesteps``
        ``extra`` keeps its SGD's."""
        if self.matrix is None:
            self.optimizer.lr = self.lr * factor  # one SGD steps geometry and extra alike
            return
        for group in self.optimizer.parts[0].param_groups:
            group["lr"] = self.lr * factor

    def offsets(self, geometry: torch.Tensor | None = None) -> torch.Tensor:
        """``(V, 3)`` vertex offsets from ``v0`` given by ``geometry`` (default: the
        current parameter), differentiable w.r.t. it."""
        geometry = self.params[0] if geometry is None else geometry
        if self.matrix is None:
            return geometry
        return from_differential(self.matrix, geometry) - self.base

    def settings(self) -> dict[str, Any]:
        """What metrics.json records about the optimizer."""
        if self.matrix is None:
            return {"optimizer": "sgd"}
        return {
            "optimizer": "largesteps",
            "solver": self.matrix.method,
            "solver_rtol": self.matrix.rtol,
            "matrix": "I + lambda L (combinatorial Laplacian)",
            "step": "AdamUniform",
            **({"extra_params": "SGD lr 1.0 momentum 0.9"} if self.extra else {}),
        }


class _Both:
    """Two optimizers stepped together (``zero_grad`` and ``step``)."""

    def __init__(self, first: Any, second: Any) -> None:
        self.parts = (first, second)

    def zero_grad(self) -> None:
        for part in self.parts:
            part.zero_grad()

    def step(self) -> None:
        for part in self.parts:
            part.step()
