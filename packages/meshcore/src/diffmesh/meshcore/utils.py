"""List / packed / padded conversions (``pytorch3d.structures.utils``'s names and signatures).

``list_to_packed``, ``list_to_padded``, ``packed_to_list`` and ``padded_to_list`` are also
exported by :mod:`diffmesh.meshcore`. This module's :func:`padded_to_packed` is the
``pytorch3d.structures.utils`` one (``split_size`` / ``pad_value``); the top-level
``diffmesh.meshcore.padded_to_packed`` is the ``pytorch3d.ops`` one (``first_idxs``).

All functions are differentiable w.r.t. the tensors they copy. Loops run over the list
items (the batch), never over the rows of a tensor.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .topology import segment_ids
from .validation import describe

__all__ = [
    "list_to_packed",
    "list_to_padded",
    "packed_to_list",
    "padded_to_list",
    "padded_to_packed",
]


def _check_list(x: object, name: str) -> list[Tensor]:
    if not isinstance(x, (list, tuple)):
        raise TypeError(f"{name}: x must be a list of tensors, got {describe(x)}")
    if not x:
        raise ValueError(f"{name}: x is an empty list; give at least one tensor")
    for i, t in enumerate(x):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}: x[{i}] must be a torch.Tensor, got {describe(t)}")
        if t.device != x[0].device:
            raise ValueError(f"{name}: x[{i}] is on {t.device} but x[0] is on {x[0].device}")
    return list(x)


def list_to_packed(x: Sequence[Tensor]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Concatenate a list of ``N`` tensors ``(M_i, ...)`` along their first dimension.

    Args:
        x: ``N`` tensors ``(M_i, K, ...)`` with equal trailing dimensions, on one device.

    Returns:
        ``(x_packed, num_items, item_packed_first_idx, item_packed_to_list_idx)``:
        ``(sum(M_i), K, ...)``; ``(N,)`` long ``M_i``; ``(N,)`` long index of each item's
        first row in ``x_packed``; ``(sum(M_i),)`` long list index of each row.

    Raises:
        TypeError: ``x`` is not a list of tensors.
        ValueError: an empty list, tensors on several devices or with different trailing
            dimensions.
    """
    items = _check_list(x, "list_to_packed")
    device = items[0].device
    num_items = torch.tensor([len(t) for t in items], dtype=torch.int64, device=device)
    first_idx = torch.cumsum(num_items, 0) - num_items
    total = int(num_items.sum())
    try:
        packed = torch.cat(items, dim=0)
    except RuntimeError as err:
        raise ValueError(f"list_to_packed: x's tensors cannot be concatenated: {err}") from err
    return packed, num_items, first_idx, segment_ids(num_items, total)


def list_to_padded(
    x: Sequence[Tensor],
    pad_size: Sequence[int] | None = None,
    pad_value: float = 0.0,
    equisized: bool = False,
) -> Tensor:
    """Stack a list of ``N`` tensors ``(S_i0, S_i1, ...)`` into one padded tensor.

    Empty 1-D tensors (PyTorch3D's ``torch.tensor([])`` idiom) count as empty tensors of
    the others' number of dimensions.

    Args:
        x: ``N`` tensors with one number of dimensions ``D``, on one device.
        pad_size: ``D`` ints, the padded size of each dimension; None: the largest size
            of each dimension among the non-empty tensors.
        pad_value: value of the padding.
        equisized: the tensors are known to have equal shapes (then just stacked).

    Returns:
        ``(N, *pad_size)`` with ``out[i, :S_i0, :S_i1, ...] = x[i]``, a new tensor.

    Raises:
        TypeError: ``x`` is not a list of tensors.
        ValueError: an empty list, different numbers of dimensions, a ``pad_size`` of the
            wrong length or smaller than a tensor.
    """
    items = _check_list(x, "list_to_padded")
    if equisized:
        return torch.stack(items, 0)
    ndim = max(t.dim() for t in items)
    items = [t.new_zeros([0] * ndim) if t.dim() == 1 and t.numel() == 0 else t for t in items]
    if any(t.dim() != ndim for t in items):
        dims = sorted({t.dim() for t in items})
        raise ValueError(
            f"list_to_padded: x's tensors must have one number of dimensions, got {dims}"
        )
    if pad_size is None:
        sizes = [t.shape for t in items if len(t) > 0] or [items[0].shape]
        pad = [max(s[d] for s in sizes) for d in range(ndim)]
    else:
        pad = [int(p) for p in pad_size]
        if len(pad) != ndim:
            raise ValueError(f"list_to_padded: pad_size must have {ndim} entries, got {len(pad)}")
        for i, t in enumerate(items):
            if len(t) > 0 and any(s > p for s, p in zip(t.shape, pad, strict=True)):
                raise ValueError(
                    f"list_to_padded: x[{i}] has shape {tuple(t.shape)}, larger than "
                    f"pad_size {tuple(pad)}"
                )
    out = items[0].new_full((len(items), *pad), pad_value)
    for i, t in enumerate(items):  # one copy per list item
        if len(t) > 0:
            out[(i, *(slice(0, s) for s in t.shape))] = t
    return out


def packed_to_list(x: Tensor, split_size: int | Sequence[int]) -> list[Tensor]:
    """Split a packed ``(sum(M_i), ...)`` tensor into ``(M_i, ...)`` pieces (views).

    Args:
        x: ``(sum(M_i), K, ...)`` tensor.
        split_size: the ``M_i`` (a list), or one int for equal pieces.

    Returns:
        A list of views of ``x``, ``(M_i, K, ...)`` each.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"packed_to_list: x must be a torch.Tensor, got {describe(x)}")
    sizes = split_size if isinstance(split_size, int) else [int(s) for s in split_size]
    if not isinstance(sizes, int) and sum(sizes) != x.shape[0]:
        raise ValueError(
            f"packed_to_list: split_size sums to {sum(sizes)} but x has {x.shape[0]} rows"
        )
    return list(x.split(sizes, dim=0))


def padded_to_list(
    x: Tensor, split_size: Sequence[int] | Sequence[Sequence[int]] | None = None
) -> list[Tensor]:
    """Unbind a padded ``(N, S_1, ..., S_D)`` tensor into ``N`` tensors (views).

    Args:
        x: ``(N, S_1, ..., S_D)`` tensor.
        split_size: None (each piece ``(S_1, ..., S_D)``), or ``N`` entries: an int
            ``M_i`` (piece ``x[i, :M_i]``) or a sequence of sizes (``x[i, :a, :b, ...]``).

    Returns:
        A list of ``N`` views of ``x``.
    """
    if not isinstance(x, Tensor) or x.dim() < 1:
        raise TypeError(f"padded_to_list: x must be a tensor (N, ...), got {describe(x)}")
    pieces = list(x.unbind(0))
    if split_size is None:
        return pieces
    if len(split_size) != x.shape[0]:
        raise ValueError(
            f"padded_to_list: split_size has {len(split_size)} entries but x has batch "
            f"size {x.shape[0]}"
        )
    for i, size in enumerate(split_size):
        if isinstance(size, int):
            pieces[i] = pieces[i][:size]
        else:
            pieces[i] = pieces[i][tuple(slice(0, int(s)) for s in size)]
    return pieces


def padded_to_packed(
    x: Tensor,
    split_size: Sequence[int] | None = None,
    pad_value: float | None = None,
) -> Tensor:
    """Packed rows of a padded ``(N, M, K)`` tensor (``pytorch3d.structures.utils``).

    Args:
        x: ``(N, M, K)`` tensor.
        split_size: ``N`` ints, the valid rows ``M_i <= M`` of each batch element.
        pad_value: rows whose every entry equals this value are dropped.

    At most one of ``split_size`` and ``pad_value`` may be given; with neither, the
    result is ``x.reshape(N * M, K)``.

    Returns:
        ``(sum(M_i), K)`` (or fewer rows with ``pad_value``), differentiable w.r.t. ``x``.
    """
    if not isinstance(x, Tensor) or x.dim() != 3:
        raise ValueError(f"padded_to_packed: x must be a tensor (N, M, K), got {describe(x)}")
    if split_size is not None and pad_value is not None:
        raise ValueError("padded_to_packed: give at most one of split_size and pad_value")
    n, m, k = x.shape
    flat = x.reshape(n * m, k)
    if pad_value is not None:
        return flat[flat.ne(pad_value).any(-1)]
    if split_size is None:
        return flat
    if len(split_size) != n or not all(isinstance(s, int) for s in split_size):
        raise ValueError(
            f"padded_to_packed: split_size must be {n} ints (one per batch element), "
            f"got {split_size!r}"
        )
    sizes = torch.tensor(list(split_size), dtype=torch.int64, device=x.device)
    if n > 0 and (int(sizes.min()) < 0 or int(sizes.max()) > m):
        raise ValueError(f"padded_to_packed: split_size values must lie in [0, {m}]")
    total = int(sizes.sum())
    seg = segment_ids(sizes, total)
    local = torch.arange(total, device=x.device) - (torch.cumsum(sizes, 0) - sizes)[seg]
    return flat.index_select(0, seg * m + local)
