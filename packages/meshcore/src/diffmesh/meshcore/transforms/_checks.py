"""Argument checks and numerically safe helpers shared by the rotation functions."""

from __future__ import annotations

import torch

__all__ = ["check_last_dims", "safe_sqrt", "small_angle_mask"]


def check_last_dims(name: str, tensor: object, trailing: tuple[int, ...]) -> torch.Tensor:
    """Raise unless ``tensor`` is a floating-point tensor of shape ``(..., *trailing)``.

    Raises:
        TypeError: not a floating-point torch.Tensor.
        ValueError: the trailing dimensions differ from ``trailing``.
    """
    if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point torch.Tensor, got {type(tensor).__name__}"
            + (f" of dtype {tensor.dtype}" if isinstance(tensor, torch.Tensor) else "")
        )
    n = len(trailing)
    if tensor.ndim < n or tuple(tensor.shape[tensor.ndim - n :]) != trailing:
        dims = ", ".join(str(d) for d in trailing)
        raise ValueError(f"{name} must have shape (..., {dims}), got {tuple(tensor.shape)}")
    return tensor


def safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """``sqrt(max(x, 0))`` whose gradient is 0 (not inf or NaN) where ``x <= 0``."""
    positive = x > 0
    return torch.where(positive, torch.where(positive, x, 1.0).sqrt(), 0.0)


def small_angle_mask(theta_sq: torch.Tensor) -> torch.Tensor:
    """Where ``theta^2`` is small enough for a 3-term Taylor series to be exact.

    Callers evaluate the closed form on ``where(mask, 1, theta_sq)`` and select the
    series where the mask is set, so neither branch yields NaN gradients.

    The first omitted term is ``O(theta^6)``; below ``theta^2 < eps^(1/2)`` it is
    under ``eps^(3/2)``, far below rounding.
    """
    return theta_sq < torch.finfo(theta_sq.dtype).eps ** 0.5
