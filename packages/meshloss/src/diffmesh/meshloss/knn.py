"""K nearest neighbours between batches of point clouds.

The neighbour choice is made without autograd by :mod:`._search` (chunked brute force, or
box-pruned k-d leaves for K = 1 in 3D; bounded memory at any size; the
final choice among a few candidates uses exact coordinate differences). The returned
distances are then recomputed with autograd from the inputs,
``dists = sum((p1[i] - p2[idx])**2)``, so gradients are exact and flow through plain indexing.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from ._search import exact_dists, gather_points, nearest_indices

__all__ = ["KNN", "knn_gather", "knn_points"]


class KNN(NamedTuple):
    """Result of :func:`knn_points`.

    Attributes:
        dists: ``(N, P1, K)`` float distances to the neighbours: squared Euclidean for
            ``norm=2``, L1 for ``norm=1``; 0 where ``k >= lengths2[n]`` or ``i >= lengths1[n]``.
        idx: ``(N, P1, K)`` long indices into ``p2[n]``; 0 where ``dists`` is padding.
        knn: ``(N, P1, K, D)`` float neighbour coordinates if ``return_nn`` else None.
    """

    dists: Tensor
    idx: Tensor
    knn: Tensor | None


def _check_lengths(lengths: Tensor | None, name: str, n: int, p: int, device: torch.device) -> Tensor:
    """Validate an optional lengths tensor; return it as (N,) long, defaulting to ``p``."""
    if lengths is None:
        return torch.full((n,), p, dtype=torch.int64, device=device)
    if not isinstance(lengths, Tensor):
        raise TypeError(f"{name} must be a tensor of shape ({n},) or None, got {type(lengths).__name__}")
    if lengths.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {tuple(lengths.shape)}")
    if lengths.dtype.is_floating_point or lengths.dtype.is_complex or lengths.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor, got {lengths.dtype}")
    lengths = lengths.to(device=device, dtype=torch.int64)
    if n > 0 and (int(lengths.min()) < 0 or int(lengths.max()) > p):
        raise ValueError(f"{name} values must lie in [0, {p}], got min {int(lengths.min())} "
                         f"and max {int(lengths.max())}")
    return lengths


def _check_clouds(p1: Tensor, p2: Tensor, names: tuple[str, str] = ("p1", "p2")) -> None:
    """Validate two (N, P, D) float point-cloud batches."""
    for t, name in zip((p1, p2), names, strict=True):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a tensor of shape (N, P, D), got {type(t).__name__}")
        if t.dim() != 3:
            raise ValueError(f"{name} must have shape (N, P, D), got {tuple(t.shape)}")
        if not t.dtype.is_floating_point:
            raise TypeError(f"{name} must be a floating point tensor, got {t.dtype}")
    if p1.shape[0] != p2.shape[0]:
        raise ValueError(f"{names[0]} and {names[1]} must have the same batch size N, got "
                         f"{p1.shape[0]} and {p2.shape[0]}")
    if p1.shape[2] != p2.shape[2]:
        raise ValueError(f"{names[0]} and {names[1]} must have the same point dimension D, got "
                         f"{p1.shape[2]} and {p2.shape[2]}")
    if p1.device != p2.device:
        raise ValueError(f"{names[0]} and {names[1]} must be on the same device, got "
                         f"{p1.device} and {p2.device}")


def knn_points(
    p1: Tensor,
    p2: Tensor,
    lengths1: Tensor | None = None,
    lengths2: Tensor | None = None,
    norm: int = 2,
    K: int = 1,
    *,
    version: int = -1,
    return_nn: bool = False,
    return_sorted: bool = True,
) -> KNN:
    """K nearest neighbours in ``p2`` of every point of ``p1``, per batch element.

    The neighbour choice is made without autograd, in chunks of ``p1`` (bounded memory at any
    size); the returned distances are then recomputed from the coordinates, so gradients
    w.r.t. ``p1`` and ``p2`` are exact: ``dists[n, i, k] = sum_d (p1[n, i, d] - p2[n, j, d])^2``
    with ``j = idx[n, i, k]`` (``norm=2``), or ``sum_d |p1[n, i, d] - p2[n, j, d]|``
    (``norm=1``).

    Args:
        p1: ``(N, P1, D)`` float query points.
        p2: ``(N, P2, D)`` float reference points.
        lengths1: ``(N,)`` long number of valid points of each ``p1`` cloud, in ``[0, P1]``;
            None means P1 for all.
        lengths2: ``(N,)`` long number of valid points of each ``p2`` cloud, in ``[0, P2]``;
            None means P2 for all.
        norm: 2 for squared Euclidean distances, 1 for L1 distances.
        K: number of neighbours, >= 1. Where a ``p2`` cloud has fewer than K points the
            extra entries are padding.
        return_nn: also return the neighbours' coordinates (``knn_gather(p2, idx, lengths2)``).
        return_sorted: sort the K neighbours by increasing distance; when False their order
            is unspecified.
        version: PyTorch3D's kernel choice; accepted (an int) for compatibility, without
            effect: diffmesh has one implementation.

    Returns:
        :class:`KNN` ``(dists (N, P1, K), idx (N, P1, K) long, knn (N, P1, K, D) or None)``;
        dists and idx are 0 where ``i >= lengths1[n]`` or ``k >= lengths2[n]``.

    Raises:
        TypeError: a non-tensor or non-float cloud, or non-integer lengths.
        ValueError: mismatched shapes, lengths out of range, ``norm`` not 1 or 2, ``K < 1``.

    Example:
        >>> p1, p2 = torch.rand(2, 100, 3), torch.rand(2, 80, 3)
        >>> dists, idx, _ = knn_points(p1, p2, K=4)
        >>> dists.shape
        torch.Size([2, 100, 4])
    """
    _check_clouds(p1, p2)
    if norm not in (1, 2) or isinstance(norm, bool):
        raise ValueError(f"norm must be 1 or 2, got {norm!r}")
    if isinstance(K, bool) or not isinstance(K, int) or K < 1:
        raise ValueError(f"K must be an integer >= 1, got {K!r}")
    if isinstance(version, bool) or not isinstance(version, int):
        raise TypeError(f"version must be an int, got {version!r}")
    n, p1_size, _ = p1.shape
    p2_size = p2.shape[1]
    lengths1 = _check_lengths(lengths1, "lengths1", n, p1_size, p1.device)
    lengths2 = _check_lengths(lengths2, "lengths2", n, p2_size, p1.device)

    k_eff = min(K, p2_size)
    if n == 0 or p1_size == 0 or k_eff == 0:
        idx = torch.zeros((n, p1_size, K), dtype=torch.int64, device=p1.device)
    else:
        idx, _ = nearest_indices(p1, p2, lengths1, lengths2, k_eff, norm, sort=return_sorted)
        if k_eff < K:
            idx = torch.nn.functional.pad(idx, (0, K - k_eff))
    missing = (torch.arange(K, device=p1.device) >= lengths2[:, None])[:, None, :]  # (N, 1, K)
    padding = missing | (torch.arange(p1_size, device=p1.device) >= lengths1[:, None])[:, :, None]
    idx = idx.masked_fill(padding, 0)
    nn = gather_points(p2, idx) if p2_size > 0 else p2.new_zeros((n, p1_size, K, p2.shape[2]))
    dists = exact_dists(p1, nn, norm).masked_fill(padding, 0.0)
    # As knn_gather(p2, idx, lengths2): only missing neighbours are zeroed.
    knn = nn.masked_fill(missing[..., None], 0.0) if return_nn else None
    return KNN(dists=dists, idx=idx, knn=knn)


def knn_gather(x: Tensor, idx: Tensor, lengths: Tensor | None = None) -> Tensor:
    """Gather the features of neighbours given by :func:`knn_points` indices.

    Args:
        x: ``(N, M, U)`` float features of the reference points.
        idx: ``(N, L, K)`` long indices into ``x[n]``, e.g. ``knn_points(...).idx``.
        lengths: ``(N,)`` long valid points of each ``x`` cloud; entries with
            ``k >= lengths[n]`` are padding and give zeros. None means M for all.

    Returns:
        ``(N, L, K, U)`` float with ``out[n, l, k] = x[n, idx[n, l, k]]`` (0 for padding).

    Raises:
        TypeError: ``x`` or ``idx`` of the wrong kind.
        ValueError: mismatched batch sizes or ranks, indices out of range.
    """
    if not isinstance(x, Tensor) or x.dim() != 3:
        raise ValueError(f"x must be a tensor of shape (N, M, U), got "
                         f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
    if not isinstance(idx, Tensor) or idx.dim() != 3:
        raise ValueError(f"idx must be a tensor of shape (N, L, K), got "
                         f"{tuple(idx.shape) if isinstance(idx, Tensor) else type(idx).__name__}")
    if idx.dtype != torch.int64:
        raise TypeError(f"idx must be a long tensor, got {idx.dtype}")
    n, m, _ = x.shape
    if idx.shape[0] != n:
        raise ValueError(f"x and idx must have the same batch size N, got {n} and {idx.shape[0]}")
    if idx.numel() > 0 and (int(idx.min()) < 0 or int(idx.max()) >= max(m, 1)):
        raise ValueError(f"idx values must lie in [0, {m - 1}], got min {int(idx.min())} "
                         f"and max {int(idx.max())}")
    lengths = _check_lengths(lengths, "lengths", n, m, x.device)
    if m == 0:
        return x.new_zeros((*idx.shape, x.shape[2]))
    out = gather_points(x, idx)
    k = idx.shape[2]
    pad = torch.arange(k, device=x.device) >= lengths[:, None]  # (N, K)
    if bool(pad.any()):
        out = out.masked_fill(pad[:, None, :, None], 0.0)
    return out
