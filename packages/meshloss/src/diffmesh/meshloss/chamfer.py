"""Chamfer distance between batches of point clouds, with PyTorch3D's reductions."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffmesh.meshcore import Pointclouds
from torch import Tensor

from ._search import gather_points, nearest_indices
from .knn import _check_clouds, _check_lengths

__all__ = ["chamfer_distance"]

_BATCH_REDUCTIONS = ("mean", "sum", None)
_POINT_REDUCTIONS = ("mean", "sum", "max", None)

Loss = Tensor | tuple[Tensor, Tensor]


def _check_normals(normals: Tensor | None, points: Tensor, name: str) -> None:
    if normals is None:
        return
    if not isinstance(normals, Tensor):
        raise TypeError(f"{name} must be a tensor or None, got {type(normals).__name__}")
    if normals.shape != points.shape:
        raise ValueError(f"{name} must have the shape of its points {tuple(points.shape)}, "
                         f"got {tuple(normals.shape)}")


def _cloud_input(points: Tensor | Pointclouds, lengths: Tensor | None, normals: Tensor | None,
                 name: str) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """``(points (N, P, D), lengths (N,) or None, normals or None)`` from a tensor (as given)
    or a Pointclouds (its padded points and normals and its per-cloud point counts)."""
    if not isinstance(points, Pointclouds):
        return points, lengths, normals
    for given, arg in ((lengths, "lengths"), (normals, "normals")):
        if given is not None:
            raise ValueError(f"chamfer_distance: {name}_{arg} must be None when {name} is a "
                             f"Pointclouds (they are taken from the clouds)")
    return points.points_padded(), points.num_points_per_cloud(), points.normals_padded()


def _check_weights(weights: Tensor | None, n: int) -> None:
    if weights is None:
        return
    if not isinstance(weights, Tensor):
        raise TypeError(f"weights must be a tensor of shape ({n},) or None, got "
                        f"{type(weights).__name__}")
    if weights.shape != (n,):
        raise ValueError(f"weights must have shape ({n},), got {tuple(weights.shape)}")
    if not bool((weights >= 0).all()):
        raise ValueError("weights must be non-negative, got a negative value")


def _one_direction(
    x: Tensor,
    y: Tensor,
    idx: Tensor,
    x_lengths: Tensor,
    y_lengths: Tensor,
    x_normals: Tensor | None,
    y_normals: Tensor | None,
    weights: Tensor | None,
    point_reduction: str | None,
    norm: int,
    abs_cosine: bool,
) -> tuple[Tensor, Tensor | None]:
    """Distance (and normal) terms from each x point to its nearest y point, reduced over points.

    Args:
        x: (N, P1, D), y: (N, P2, D) float; idx: (N, P1) long nearest y of each x point.
        x_lengths, y_lengths: (N,) long; x_normals (N, P1, D) / y_normals (N, P2, D) or None.

    Returns:
        (N,) or (N, P1) distances, and the same for normals (None without normals).
    """
    n, p1_size, _ = x.shape
    padded = torch.arange(p1_size, device=x.device) >= x_lengths[:, None]  # (N, P1)
    no_target = (y_lengths == 0)[:, None]  # (N, 1): an empty y cloud gives zero distances
    if y.shape[1] == 0:
        cham = x.sum(-1) * 0.0
    else:
        nearest = gather_points(y, idx.unsqueeze(-1)).squeeze(2)  # (N, P1, D)
        diff = x - nearest
        cham = (diff * diff).sum(-1) if norm == 2 else diff.abs().sum(-1)
    cham = cham.masked_fill(padded | no_target, 0.0)
    if weights is not None:
        cham = cham * weights.view(n, 1)

    cham_normals = None
    if x_normals is not None and y_normals is not None:
        if y.shape[1] == 0:
            cosine = x_normals.sum(-1) * 0.0
        else:
            nearest_normals = gather_points(y_normals, idx.unsqueeze(-1)).squeeze(2)
            # As knn_gather: no neighbour gives a zero normal, hence a term of 1.
            nearest_normals = nearest_normals.masked_fill(no_target[..., None], 0.0)
            cosine = F.cosine_similarity(x_normals, nearest_normals, dim=2, eps=1e-6)
        cham_normals = 1.0 - (cosine.abs() if abs_cosine else cosine)
        cham_normals = cham_normals.masked_fill(padded, 0.0)
        if weights is not None:
            cham_normals = cham_normals * weights.view(n, 1)

    if point_reduction == "max":
        cham = cham.amax(1) if p1_size > 0 else cham.sum(1)
    elif point_reduction is not None:
        cham = cham.sum(1)
        if cham_normals is not None:
            cham_normals = cham_normals.sum(1)
        if point_reduction == "mean":
            count = x_lengths.clamp(min=1)
            cham = cham / count
            if cham_normals is not None:
                cham_normals = cham_normals / count
    return cham, cham_normals


def _batch_reduce(value: Loss | None, weights: Tensor | None, batch_reduction: str | None,
                  n: int) -> Loss | None:
    if value is None or batch_reduction is None:
        return value
    assert isinstance(value, Tensor)  # point_reduction is not None here
    total = value.sum()
    if batch_reduction == "mean":
        if weights is None:
            total = total / max(n, 1)
        else:
            weight_sum = weights.sum()
            total = total / torch.where(weight_sum == 0, torch.ones_like(weight_sum), weight_sum)
    return total


def chamfer_distance(
    x: Tensor | Pointclouds,
    y: Tensor | Pointclouds,
    x_lengths: Tensor | None = None,
    y_lengths: Tensor | None = None,
    x_normals: Tensor | None = None,
    y_normals: Tensor | None = None,
    weights: Tensor | None = None,
    batch_reduction: str | None = "mean",
    point_reduction: str | None = "mean",
    norm: int = 2,
    single_directional: bool = False,
    abs_cosine: bool = True,
) -> tuple[Loss, Loss | None]:
    """Chamfer distance between two batches of point clouds (PyTorch3D's definition).

    For every valid point of ``x[n]`` the term is its squared Euclidean distance (``norm=2``)
    or L1 distance (``norm=1``) to the nearest valid point of ``y[n]``; with normals the
    normal term is ``1 - |cos|`` (``1 - cos`` if ``abs_cosine=False``) between its normal and
    the normal of that nearest point. Unless ``single_directional``, the same is done from
    ``y`` to ``x``. Terms are multiplied by ``weights[n]``, reduced over points
    (``point_reduction``: "mean" divides by ``x_lengths[n]``, "sum", "max", or None), the two
    directions are added ("max": their maximum), then reduced over the batch
    (``batch_reduction``: "mean" divides by N, or by ``weights.sum()`` when weights are
    given; "sum"; or None).

    The nearest neighbours are chosen without autograd (chunked, bounded memory) and the
    distances are recomputed exactly from the coordinates, so gradients reach ``x`` and ``y``
    (and the normals).

    Args:
        x: ``(N, P1, D)`` float points, or a :class:`~diffmesh.meshcore.Pointclouds`
            (then its padded points, point counts and normals, if any, are used, and
            ``x_lengths`` / ``x_normals`` must be None).
        y: ``(N, P2, D)`` float points, or a Pointclouds (likewise).
        x_lengths: ``(N,)`` long valid points per ``x`` cloud (None: P1).
        y_lengths: ``(N,)`` long valid points per ``y`` cloud (None: P2).
        x_normals: ``(N, P1, D)`` float normals of ``x`` or None.
        y_normals: ``(N, P2, D)`` float normals of ``y`` or None.
        weights: ``(N,)`` float non-negative weights of the batch elements, or None.
        batch_reduction: "mean", "sum" or None.
        point_reduction: "mean", "sum", "max" or None.
        norm: 2 (squared L2 distances) or 1 (L1 distances, also used for the search).
        single_directional: only the x -> y direction.
        abs_cosine: normal term ``1 - |cos|`` (True) or ``1 - cos`` (False).

    Returns:
        ``(loss, loss_normals)``. With both reductions, scalars; with ``batch_reduction=None``,
        ``(N,)`` tensors; with ``point_reduction=None``, the per-point terms: a tuple
        ``((N, P1), (N, P2))`` (or one ``(N, P1)`` tensor if ``single_directional``).
        ``loss_normals`` is None unless both ``x_normals`` and ``y_normals`` are given.

    Raises:
        TypeError: non-tensor or non-float inputs.
        ValueError: mismatched shapes, lengths out of range, negative weights, an unknown
            reduction, ``point_reduction=None`` with a batch reduction, ``norm`` not 1 or 2,
            or normals with ``point_reduction="max"``.

    Example:
        >>> x, y = torch.rand(2, 500, 3), torch.rand(2, 400, 3)
        >>> loss, _ = chamfer_distance(x, y)
    """
    if batch_reduction not in _BATCH_REDUCTIONS:
        raise ValueError(f'batch_reduction must be "mean", "sum" or None, got {batch_reduction!r}')
    if point_reduction not in _POINT_REDUCTIONS:
        raise ValueError(f'point_reduction must be "mean", "sum", "max" or None, '
                         f"got {point_reduction!r}")
    if point_reduction is None and batch_reduction is not None:
        raise ValueError(f"batch_reduction must be None when point_reduction is None, "
                         f"got {batch_reduction!r}")
    if norm not in (1, 2) or isinstance(norm, bool):
        raise ValueError(f"norm must be 1 or 2, got {norm!r}")
    x, x_lengths, x_normals = _cloud_input(x, x_lengths, x_normals, "x")
    y, y_lengths, y_normals = _cloud_input(y, y_lengths, y_normals, "y")
    if point_reduction == "max" and (x_normals is not None or y_normals is not None):
        raise ValueError('x_normals and y_normals must be None when point_reduction is "max"')
    _check_clouds(x, y, ("x", "y"))
    _check_normals(x_normals, x, "x_normals")
    _check_normals(y_normals, y, "y_normals")
    n, p1_size, _ = x.shape
    p2_size = y.shape[1]
    _check_weights(weights, n)
    x_lengths = _check_lengths(x_lengths, "x_lengths", n, p1_size, x.device)
    y_lengths = _check_lengths(y_lengths, "y_lengths", n, p2_size, x.device)

    if n > 0 and p1_size > 0 and p2_size > 0:
        idx_xy, idx_yx = nearest_indices(x, y, x_lengths, y_lengths, 1, norm,
                                          reverse=not single_directional)
        idx_xy = idx_xy[..., 0]
    else:
        idx_xy = torch.zeros((n, p1_size), dtype=torch.int64, device=x.device)
        idx_yx = torch.zeros((n, p2_size), dtype=torch.int64, device=x.device)

    cham_x, normals_x = _one_direction(x, y, idx_xy, x_lengths, y_lengths, x_normals, y_normals, weights,
                                       point_reduction, norm, abs_cosine)
    loss: Loss
    loss_normals: Loss | None
    if single_directional:
        loss, loss_normals = cham_x, normals_x
    else:
        assert idx_yx is not None
        cham_y, normals_y = _one_direction(y, x, idx_yx, y_lengths, x_lengths, y_normals, x_normals,
                                           weights, point_reduction, norm, abs_cosine)
        if point_reduction == "max":
            loss, loss_normals = torch.maximum(cham_x, cham_y), None
        elif point_reduction is not None:
            loss = cham_x + cham_y
            loss_normals = None if normals_x is None or normals_y is None else normals_x + normals_y
        else:
            loss = (cham_x, cham_y)
            loss_normals = None if normals_x is None or normals_y is None else (normals_x, normals_y)
    return (_batch_reduce(loss, weights, batch_reduction, n),  # type: ignore[return-value]
            _batch_reduce(loss_normals, weights, batch_reduction, n))
