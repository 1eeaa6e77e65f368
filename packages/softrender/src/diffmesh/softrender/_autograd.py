"""A guard for the package's hand-written backward passes (none is itself differentiable)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["first_order_only"]


def first_order_only(backward: Callable[..., Any]) -> Callable[..., Any]:
    """Mark an ``autograd.Function.backward`` as first-order only, refusing ``create_graph``.

    ``torch.autograd.function.once_differentiable`` only raises when the engine reaches its
    error node, which it skips when another path leads to the inputs: second-order
    gradients would then silently miss every term through the saved tensors. Backward
    passes run with grad mode on exactly when ``create_graph=True``, so this raises there
    and otherwise runs ``backward`` as it is (grad mode already off).

    Raises:
        RuntimeError: the backward pass was asked to build a graph (double backward).
    """

    @functools.wraps(backward)
    def wrapper(ctx: Any, *grads: Any) -> Any:
        if torch.is_grad_enabled():
            raise RuntimeError(
                "diffmesh.softrender: second-order gradients (create_graph=True) are not supported "
                "by the rasterizer, shading and blending functions (their backward passes are hand-written)"
            )
        return backward(ctx, *grads)

    return wrapper
