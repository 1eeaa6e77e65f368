"""AdamUniform: Adam whose second-moment normalisation is one scalar per parameter tensor.

The optimizer of Nicolet et al., "Large Steps in Inverse Rendering of Geometry" (2021), used
with :func:`diffmesh.meshloss.from_differential`. It lives beside the parameterization: the
two are used together, and meshloss is what fitting code already imports.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

__all__ = ["AdamUniform"]

# Optimizer.add_param_group and zero_grad carry torch's ``_disable_dynamo`` decorator, whose
# first call imports torch._dynamo (2 s with cached bytecode, up to 20 s without, on the
# project's 2-core machine). The undecorated functions do the same work without it.
_ADD_PARAM_GROUP = getattr(
    torch.optim.Optimizer.add_param_group, "__wrapped__", torch.optim.Optimizer.add_param_group
)


class AdamUniform(torch.optim.Optimizer):
    """Adam with a uniform (per-tensor) second-moment scale (the Large Steps reference's).

    For each parameter tensor ``p`` with gradient ``g``, at step ``t``:

    ``m = beta1 m + (1 - beta1) g``, ``s = beta2 s + (1 - beta2) g^2`` (elementwise),
    ``p -= lr (m / (1 - beta1^t)) / (eps + max(sqrt(s / (1 - beta2^t))))``

    where the max runs over every element of ``p``: all vertices move with the same scale,
    so the step keeps the direction (and smoothness) of the preconditioned gradient, which
    Adam's per-element division would destroy.

    Args:
        params: tensors or parameter groups, as for any ``torch.optim`` optimizer.
        lr: step size (``> 0``); per group.
        betas: ``(beta1, beta2)`` in ``[0, 1)``.
        eps: added to the scale (``>= 0``).

    Raises:
        ValueError: ``lr``, ``betas`` or ``eps`` out of range.

    Example:
        >>> import torch
        >>> u = torch.zeros(10, 3, requires_grad=True)
        >>> optimizer = AdamUniform([u], lr=0.05)
        >>> (u - 1).square().sum().backward()
        >>> optimizer.step()
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 0.1,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        _check_settings(lr, betas, eps)
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps})

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group (``torch.optim.Optimizer.add_param_group``, checking its settings)."""
        settings = {**self.defaults, **param_group}
        _check_settings(settings["lr"], settings["betas"], settings["eps"])
        _ADD_PARAM_GROUP(self, param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop the gradients (or zero them with ``set_to_none=False``)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.detach_().zero_()

    @torch.no_grad()
    def step(self, closure: Any = None) -> Tensor | None:  # type: ignore[override]
        """One step on every parameter that has a gradient.

        Args:
            closure: optional callable re-evaluating the loss (run with gradients enabled).

        Returns:
            The closure's loss, or None.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise TypeError("AdamUniform does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t = state["step"]
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                exp_avg.lerp_(p.grad, 1.0 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(p.grad, p.grad, value=1.0 - beta2)
                if p.numel() == 0:
                    continue
                scale = (exp_avg_sq.max() / (1.0 - beta2**t)).sqrt() + group["eps"]
                p.sub_(exp_avg / scale, alpha=group["lr"] / (1.0 - beta1**t))
        return loss


def _check_settings(lr: float, betas: tuple[float, float], eps: float) -> None:
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
        raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
    if not (math.isfinite(eps) and eps >= 0):
        raise ValueError(f"eps must be a number >= 0, got {eps!r}")
