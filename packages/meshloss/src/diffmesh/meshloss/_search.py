"""Nearest-neighbour index search (no autograd): chunked brute force and box-pruned blocks.

Both strategies end with the same *exact choice*: each query point ends up with one or a
few blocks of consecutive candidate points known to hold its K nearest, and the distances to
those candidates are computed directly from coordinate differences (no cancellation) to pick
the K nearest. The block choice itself uses the expanded form ``|x|^2 + |y|^2 - 2 x.y`` on
coordinates centred on the two clouds, as one matrix product per chunk.

- :func:`_brute_force` compares every query with every point, ``_CHUNK_ELEMENTS`` distances
  at a time, keeping only per-block minima. Any K, norm 1 or 2, any dimension.
- :func:`._blocks.pruned_search` (K = 1, squared L2, 3D) reorders both clouds into the leaves
  of a balanced k-d tree (blocks of consecutive points), bounds every pair of blocks by their
  boxes and compares each query block with all its candidate blocks in one batched product.
  On surface samples this skips most of the work; when the bounds prune too little it hands
  over to the brute force, so memory stays bounded either way.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._blocks import augment, pruned_search

_GROUP = 32  # points per block in the brute-force block selection
_CHUNK_ELEMENTS = 1 << 17  # distances per chunk (512 KB in float32: stays in cache)
# A chunk has at least _GROUP rows; past this many distances its columns are split too
# (32 MB in float32), so that no size asks for more.
_MAX_CHUNK_ELEMENTS = 1 << 23
_PRUNE_MIN_PAIRS = 1 << 20  # below P1 * P2 of this, brute force is as fast
_LEAF = 40  # target points per k-d leaf in the pruned search
_INF = float("inf")


def _pad_to(t: Tensor, size: int, value: float = 0.0) -> Tensor:
    """Pad dim 1 of a (N, P, ...) tensor to ``size`` with ``value``."""
    if t.shape[1] == size:
        return t
    pad = [0, 0] * (t.dim() - 2) + [0, size - t.shape[1]]
    return torch.nn.functional.pad(t, pad, value=value)


def exact_dists(query: Tensor, cand: Tensor, norm: int) -> Tensor:
    """Distances from (N, R, D) query points to their (N, R, C, D) candidates -> (N, R, C)."""
    diff = query.unsqueeze(2) - cand
    if norm == 2:
        return (diff * diff).sum(-1)
    return diff.abs().sum(-1)


def gather_points(points: Tensor, idx: Tensor) -> Tensor:
    """points (N, P, D), idx (N, R, C) long -> (N, R, C, D) with points[n, idx[n, r, c]]."""
    n, r, c = idx.shape
    flat = idx.reshape(n, r * c, 1).expand(-1, -1, points.shape[2])
    return points.gather(1, flat).view(n, r, c, points.shape[2])


def _exact_choice(query: Tensor, points: Tensor, blocks: Tensor, valid_points: Tensor,
                  k: int, norm: int, sort: bool, group: int) -> Tensor:
    """Choose the k nearest points among the points of the given blocks, exactly.

    Args:
        query: (N, R, D) query coordinates.
        points: (N, Pp, D) candidate coordinates, Pp a multiple of ``group``.
        blocks: (N, R, B) long block indices (block b holds points
            ``b * group .. b * group + group - 1``).
        valid_points: (N, Pp) bool, False for padding points.
        k: neighbours to keep, ``k <= B * group``.
        norm: 1 or 2.
        sort: whether the k results are sorted by distance.
        group: points per block.

    Returns:
        (N, R, k) long indices into ``points``.
    """
    n, r, b = blocks.shape
    dim = query.shape[2]
    offsets = torch.arange(group, device=blocks.device)
    # Coordinate planes (N, D, P): the distance is a sum of D contiguous planes.
    planes = points.transpose(1, 2)
    query_planes = query.transpose(1, 2).unsqueeze(-1)  # (N, D, R, 1)
    out = []
    step = max(1, 16 * _CHUNK_ELEMENTS // max(1, n * b * group * dim))
    for s in range(0, r, step):
        # The candidates of this chunk only: for all rows they would take R * B * group longs.
        c = (blocks[:, s:s + step].unsqueeze(-1) * group + offsets).flatten(2)
        rows = c.shape[1]
        cand_planes = planes.gather(2, c.reshape(n, 1, -1).expand(-1, dim, -1))
        diff = query_planes[:, :, s:s + step] - cand_planes.view(n, dim, rows, -1)
        d = (diff * diff).sum(1) if norm == 2 else diff.abs().sum(1)
        d = d.masked_fill(~valid_points.gather(1, c.reshape(n, -1)).view_as(c), _INF)
        if k == 1:
            pick = d.argmin(-1, keepdim=True)
        else:
            pick = d.topk(k, dim=-1, largest=False, sorted=sort).indices
        out.append(c.gather(-1, pick))
    return torch.cat(out, dim=1)


def _brute_force(x: Tensor, y: Tensor, valid1: Tensor, valid2: Tensor, k: int, norm: int,
                 sort: bool, reverse: bool) -> tuple[Tensor, Tensor | None]:
    """Brute-force search on centred, zero-padded clouds whose sizes are multiples of _GROUP.

    Returns (N, P1p, k) indices into y and, if ``reverse``, (N, P2p) indices into x.
    """
    n, p1p, _ = x.shape
    p2p = y.shape[1]
    if norm == 2:
        xa = augment(x, valid1, query=True)
        ya_t = augment(y, valid2, query=False).transpose(1, 2).contiguous()
    nb2 = p2p // _GROUP
    kb = min(k, nb2)
    chunk = max(_GROUP, (_CHUNK_ELEMENTS // max(1, n * p2p)) // _GROUP * _GROUP)
    # Columns too, when even _GROUP rows by all columns exceed the working-set bound.
    width = min(p2p, max(_GROUP, _MAX_CHUNK_ELEMENTS // max(1, n * chunk) // _GROUP * _GROUP))
    row_blocks = []
    col_best = col_block = None
    if reverse:
        col_best = torch.full((n, p2p), _INF, dtype=x.dtype, device=x.device)
        col_block = torch.zeros((n, p2p), dtype=torch.int64, device=x.device)
    for s in range(0, p1p, chunk):
        rows = min(chunk, p1p - s)
        block_min = None if width == p2p else x.new_empty((n, rows, nb2))  # all written below
        for c in range(0, p2p, width):
            cols = min(width, p2p - c)
            if norm == 2:
                d = torch.bmm(xa[:, s:s + rows], ya_t[:, :, c:c + cols])  # (N, rows, cols)
            else:
                d = torch.cdist(x[:, s:s + rows], y[:, c:c + cols], p=1)
                d = d.masked_fill(~valid2[:, None, c:c + cols], _INF).masked_fill(
                    ~valid1[:, s:s + rows, None], _INF)
            part = d.view(n, rows, cols // _GROUP, _GROUP).amin(-1)  # (N, rows, cols / G)
            if block_min is None:
                block_min = part
            else:
                block_min[:, :, c // _GROUP:(c + cols) // _GROUP] = part
            if reverse:
                col_min = d.view(n, rows // _GROUP, _GROUP, cols).amin(2)  # (N, rows/G, cols)
                value, block = col_min.min(1)
                best = col_best[:, c:c + cols]
                better = value < best
                col_best[:, c:c + cols] = torch.where(better, value, best)
                col_block[:, c:c + cols] = torch.where(
                    better, block + s // _GROUP, col_block[:, c:c + cols])
        if kb == 1:
            row_blocks.append(block_min.argmin(-1, keepdim=True))
        else:
            row_blocks.append(block_min.topk(kb, dim=-1, largest=False, sorted=False).indices)
    idx12 = _exact_choice(x, y, torch.cat(row_blocks, dim=1), valid2, k, norm, sort, _GROUP)
    idx21 = None
    if reverse:
        idx21 = _exact_choice(y, x, col_block.unsqueeze(-1), valid1, 1, norm, sort, _GROUP)[..., 0]
    return idx12, idx21


@torch.no_grad()
def nearest_indices(p1: Tensor, p2: Tensor, lengths1: Tensor, lengths2: Tensor, k: int,
                    norm: int, sort: bool = True, reverse: bool = False
                    ) -> tuple[Tensor, Tensor | None]:
    """Indices of the k nearest p2 points of every p1 point (and optionally the reverse).

    Args:
        p1: (N, P1, D) float, P1 >= 1.
        p2: (N, P2, D) float, P2 >= 1.
        lengths1: (N,) long valid points of each p1 cloud.
        lengths2: (N,) long valid points of each p2 cloud.
        k: 1 <= k <= P2.
        norm: 1 (L1) or 2 (squared L2).
        sort: sort the k neighbours by distance.
        reverse: also return the nearest p1 point of every p2 point (k = 1), from the same
            distance computations.

    Returns:
        idx12: (N, P1, k) long; entries for padded rows or beyond ``lengths2`` are arbitrary
        (but in range).
        idx21: (N, P2) long if ``reverse`` else None; entries for padded rows are arbitrary.
    """
    _, p1_size, dim = p1.shape
    p2_size = p2.shape[1]
    work = p1.dtype if p1.dtype in (torch.float32, torch.float64) else torch.float32
    device = p1.device
    valid1 = torch.arange(p1_size, device=device) < lengths1[:, None]  # (N, P1)
    valid2 = torch.arange(p2_size, device=device) < lengths2[:, None]  # (N, P2)
    # Without padding (the common case) the masking below changes nothing: skip it.
    padded = not bool(valid1.all() & valid2.all())
    x, y = p1.detach().to(work), p2.detach().to(work)
    if padded:
        x = x.masked_fill(~valid1[..., None], 0.0)
        y = y.masked_fill(~valid2[..., None], 0.0)
    # Centre both clouds on their joint mean: the expanded form then keeps its digits.
    count = (lengths1 + lengths2).clamp(min=1).to(work)[:, None, None]
    centre = (x.sum(1, keepdim=True) + y.sum(1, keepdim=True)) / count
    x, y = x - centre, y - centre
    if padded:
        x = x.masked_fill(~valid1[..., None], 0.0)
        y = y.masked_fill(~valid2[..., None], 0.0)

    if norm == 2 and k == 1 and dim == 3 and p1_size * p2_size >= _PRUNE_MIN_PAIRS:
        px, py = x, y
        if padded:  # padding takes the coordinates of a valid point of its cloud (see Blocks)
            px = torch.where(valid1[..., None], x, x[:, :1])
            py = torch.where(valid2[..., None], y, y[:, :1])
        found = pruned_search(px, py, valid1, valid2, _LEAF, reverse)
        if found is not None:
            return found
    p1p = -(-p1_size // _GROUP) * _GROUP
    p2p = -(-p2_size // _GROUP) * _GROUP
    idx12, idx21 = _brute_force(_pad_to(x, p1p), _pad_to(y, p2p), _pad_to(valid1, p1p, False),
                                _pad_to(valid2, p2p, False), k, norm, sort, reverse)
    idx12 = idx12[:, :p1_size].clamp(max=p2_size - 1)
    if idx21 is not None:
        idx21 = idx21[:, :p2_size].clamp(max=p1_size - 1)
    return idx12, idx21
