"""Nearest-neighbour index search (no autograd): chunked brute force and box-pruned blocks.

Both strategies end with the same *exact choice*: each query point ends up with one or a
few blocks of consecutive candidate points known to hold its K nearest, and the distances to
those candidates are computed directly from coordinate differences (no cancellation) to pick
the K nearest. The block choice itself uses the expanded form ``|x|^2 + |y|^2 - 2 x.y`` on
coordinates centred on the two clouds, as one matrix product per chunk.

- :func:`_brute_force` compares every query with every point, ``_CHUNK_ELEMENTS`` distances
  at a time, keeping only per-block minima. Any K, norm 1 or 2, any dimension.
- :func:`_pruned` (K = 1, squared L2, 3D) reorders both clouds into the leaves of a balanced
  k-d tree (blocks of consecutive points), bounds every pair of blocks by their boxes and
  compares only the pairs of blocks that can hold a nearest neighbour. On surface samples
  this skips most of the work; when the bounds prune too little it hands over to the brute
  force, so memory stays bounded either way.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

_GROUP = 32  # points per block in the brute-force block selection
_CHUNK_ELEMENTS = 1 << 17  # distances per chunk (512 KB in float32: stays in cache)
_PRUNE_MIN_PAIRS = 1 << 20  # below P1 * P2 of this, brute force is as fast
_PAIR_BUDGET = 1 << 24  # most (pair, point) minima the pruned search keeps at once
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
    cand = (blocks.unsqueeze(-1) * group + offsets).view(n, r, b * group)
    # Coordinate planes (N, D, P): the distance is a sum of D contiguous planes.
    planes = points.transpose(1, 2)
    query_planes = query.transpose(1, 2).unsqueeze(-1)  # (N, D, R, 1)
    out = []
    step = max(1, 16 * _CHUNK_ELEMENTS // max(1, n * b * group * dim))
    for s in range(0, r, step):
        c = cand[:, s:s + step]
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


def _augment(x: Tensor, valid: Tensor, query: bool) -> Tensor:
    """[x, |x|^2, 1] (query) or [-2x, 1, |x|^2] (reference), |x|^2 = inf for padding: the
    product of a query row and a reference row is the squared distance (inf if either pads)."""
    sq = (x * x).sum(-1, keepdim=True).masked_fill(~valid[..., None], _INF)
    one = torch.ones_like(sq)
    return torch.cat([x, sq, one], dim=-1) if query else torch.cat([-2.0 * x, one, sq], dim=-1)


def _brute_force(x: Tensor, y: Tensor, valid1: Tensor, valid2: Tensor, k: int, norm: int,
                 sort: bool, reverse: bool) -> tuple[Tensor, Tensor | None]:
    """Brute-force search on centred, zero-padded clouds whose sizes are multiples of _GROUP.

    Returns (N, P1p, k) indices into y and, if ``reverse``, (N, P2p) indices into x.
    """
    n, p1p, _ = x.shape
    p2p = y.shape[1]
    if norm == 2:
        xa = _augment(x, valid1, query=True)
        ya_t = _augment(y, valid2, query=False).transpose(1, 2).contiguous()
    nb2 = p2p // _GROUP
    kb = min(k, nb2)
    chunk = max(_GROUP, (_CHUNK_ELEMENTS // max(1, n * p2p)) // _GROUP * _GROUP)
    row_blocks = []
    col_best = col_block = None
    if reverse:
        col_best = torch.full((n, p2p), _INF, dtype=x.dtype, device=x.device)
        col_block = torch.zeros((n, p2p), dtype=torch.int64, device=x.device)
    for s in range(0, p1p, chunk):
        rows = min(chunk, p1p - s)
        if norm == 2:
            d = torch.bmm(xa[:, s:s + rows], ya_t)  # (N, rows, P2p)
        else:
            d = torch.cdist(x[:, s:s + rows], y, p=1)
            d = d.masked_fill(~valid2[:, None, :], _INF).masked_fill(
                ~valid1[:, s:s + rows, None], _INF)
        block_min = d.view(n, rows, nb2, _GROUP).amin(-1)  # (N, rows, nb2)
        if kb == 1:
            row_blocks.append(block_min.argmin(-1, keepdim=True))
        else:
            row_blocks.append(block_min.topk(kb, dim=-1, largest=False, sorted=False).indices)
        if reverse:
            col_min = d.view(n, rows // _GROUP, _GROUP, p2p).amin(2)  # (N, rows/G, P2p)
            value, block = col_min.min(1)
            better = value < col_best
            col_best = torch.where(better, value, col_best)
            col_block = torch.where(better, block + s // _GROUP, col_block)
    idx12 = _exact_choice(x, y, torch.cat(row_blocks, dim=1), valid2, k, norm, sort, _GROUP)
    idx21 = None
    if reverse:
        idx21 = _exact_choice(y, x, col_block.unsqueeze(-1), valid1, 1, norm, sort, _GROUP)[..., 0]
    return idx12, idx21


class _Blocks:
    """A cloud reordered into the leaves of a balanced k-d tree (median splits, axes in turn,
    one batched sort per level): ``2**levels`` blocks of ``size`` consecutive points with
    compact bounding boxes.

    Invalid points (padding) must already hold the coordinates of a valid point of their
    cloud: they then never enlarge the cloud's box, and any box holding them still bounds its
    valid points, so no masking is needed while building.
    """

    def __init__(self, points: Tensor, valid: Tensor, levels: int) -> None:
        n, p, d = points.shape
        self.num = 1 << levels
        self.size = size = -(-p // self.num)
        total = size * self.num
        pts = torch.cat([points, points[:, :1].expand(-1, total - p, -1)], dim=1)
        val = _pad_to(valid, total, value=False)
        # Split axes cycle through the cloud's axes, longest extent first.
        axes = (pts.amax(1) - pts.amin(1)).argsort(dim=1, descending=True)  # (N, D)
        flat = pts.reshape(n, total * d)
        order = torch.arange(total, device=points.device).expand(n, total)
        for level in range(levels):
            segments = 1 << level
            key = flat.gather(1, order * d + axes[:, level % d, None])
            perm = key.view(n, segments, -1).argsort(dim=2)
            order = order.reshape(n, segments, -1).gather(2, perm).view(n, total)
        pts = pts.gather(1, order[..., None].expand(-1, -1, d))
        val = val.gather(1, order)
        self.order = order  # (N, total): padded-cloud index of each reordered point
        self.points = pts
        self.valid = val
        blocks = pts.view(n, self.num, size, d)
        self.nonempty = val.view(n, self.num, size).any(2)  # (N, nb)
        self.lo = blocks.amin(2)  # (N, nb, D)
        self.hi = blocks.amax(2)
        self.centre = 0.5 * (self.lo + self.hi)

    def unsort(self, values: Tensor, length: int) -> Tensor:
        """(N, total) values per reordered point -> (N, length) in the original order."""
        out = torch.empty_like(values).scatter_(1, self.order, values)  # order: a permutation
        return out[:, :length]


def _levels(n: int, p: int, other: int) -> int:
    """Tree depth for a cloud of p points: leaves of about _LEAF points, with the block-pair
    table of the batch (N * leaves * other cloud's leaves) kept under 2**22 entries."""
    def wanted(size: int) -> int:
        return max(0, round(math.log2(max(size, 1) / _LEAF)))
    cap = 22 - math.ceil(math.log2(max(n, 1))) - min(wanted(other), 11)
    return max(0, min(wanted(p), cap, 11))


def _upper_bounds(a: _Blocks, b: _Blocks, xa: Tensor, ya_t: Tensor, slack: Tensor) -> Tensor:
    """(N, nb_a) upper bound of the nearest-neighbour distance (in b) of every point of each
    block of a: the largest distance from a valid point of the block to the valid points of
    the b block whose box centre is nearest (-inf for blocks without valid points).

    ``xa`` (N * nb_a, size_a, D + 2) and ``ya_t`` (N * nb_b, D + 2, size_b) are the augmented
    blocks (see :func:`_augment`); ``slack`` (N, 1) covers their rounding error.
    """
    n = a.points.shape[0]
    gap = a.centre[:, :, None] - b.centre[:, None]
    centre_dist = (gap * gap).sum(-1).masked_fill(~b.nonempty[:, None, :], _INF)
    nearest = centre_dist.argmin(2)  # (N, nb_a)
    nearest = nearest + torch.arange(n, device=nearest.device)[:, None] * b.num
    dist = torch.bmm(xa, ya_t[nearest.view(-1)])  # (N * nb_a, size_a, size_b), inf if padding
    best = dist.amin(2).view(n, a.num, a.size)
    best = best.masked_fill(~a.valid.view(n, a.num, a.size), -_INF).amax(2)
    return best * (1.0 + 1e-5) + slack


def _pruned(x: Tensor, y: Tensor, valid1: Tensor, valid2: Tensor, reverse: bool
            ) -> tuple[Tensor, Tensor | None] | None:
    """Box-pruned K = 1 search (squared L2, 3D) on centred clouds; None if pruning does not pay.

    Returns (N, P1, 1) indices into y and, if ``reverse``, (N, P2) indices into x.
    """
    n, p1_size, _ = x.shape
    p2_size = y.shape[1]
    a = _Blocks(x, valid1, _levels(n, p1_size, p2_size))
    b = _Blocks(y, valid2, _levels(n, p2_size, p1_size))
    xa = _augment(a.points, a.valid, query=True).view(n * a.num, a.size, -1)
    ya_t = _augment(b.points, b.valid, query=False).view(n * b.num, b.size, -1).transpose(1, 2)
    # The expanded form errs by a few ulps of |x|^2 + |y|^2: widen the upper bounds by that.
    radius = torch.maximum(a.points.abs().amax((1, 2)), b.points.abs().amax((1, 2)))[:, None]
    slack = 64.0 * torch.finfo(x.dtype).eps * 3.0 * radius * radius
    gap = torch.maximum(b.lo[:, None] - a.hi[:, :, None], a.lo[:, :, None] - b.hi[:, None])
    lower = (gap.clamp(min=0) ** 2).sum(-1)  # (N, nb_a, nb_b) box-to-box lower bound
    wanted = lower <= _upper_bounds(a, b, xa, ya_t, slack)[:, :, None]
    if reverse:
        xa_b = _augment(b.points, b.valid, query=True).view(n * b.num, b.size, -1)
        ya_t_a = _augment(a.points, a.valid, query=False).view(n * a.num, a.size, -1)
        wanted |= lower <= _upper_bounds(b, a, xa_b, ya_t_a.transpose(1, 2), slack)[:, None, :]
    wanted &= a.nonempty[:, :, None] & b.nonempty[:, None, :]
    pairs = wanted.nonzero()  # (M, 3): batch, block of x, block of y
    num_pairs = pairs.shape[0]
    work = num_pairs * a.size * b.size
    if work * 2 > p1_size * p2_size or num_pairs * max(a.size, b.size) > _PAIR_BUDGET:
        return None
    row_key = pairs[:, 0] * a.num + pairs[:, 1]  # block of x, batch-global
    col_key = pairs[:, 0] * b.num + pairs[:, 2]
    step = max(1, 16 * _CHUNK_ELEMENTS // (a.size * b.size))  # 8 MB of float32 distances
    row_min, col_min = [], []
    for s in range(0, num_pairs, step):
        d = torch.bmm(xa[row_key[s:s + step]], ya_t[col_key[s:s + step]])  # (M', sa, sb)
        row_min.append(d.amin(2))
        if reverse:
            col_min.append(d.amin(1))
    big = torch.iinfo(torch.int64).max

    def best_block(minima: Tensor, key: Tensor, other: Tensor, size: int, total: int) -> Tensor:
        """Per point: the block of the other cloud whose pair gave the smallest minimum."""
        point = (key[:, None] * size + torch.arange(size, device=key.device)).reshape(-1)
        values = minima.reshape(-1)
        best = values.new_full((total,), _INF).scatter_reduce(0, point, values, "amin")
        block = torch.where(values == best[point], other.repeat_interleave(size), big)
        out = torch.full((total,), big, dtype=torch.int64, device=key.device)
        out = out.scatter_reduce(0, point, block, "amin")
        return torch.where(out == big, 0, out)

    blocks12 = best_block(torch.cat(row_min), row_key, pairs[:, 2], a.size, n * a.num * a.size)
    idx = _exact_choice(a.points, b.points, blocks12.view(n, -1, 1), b.valid, 1, 2, True, b.size)
    idx12 = a.unsort(b.order.gather(1, idx[..., 0]).clamp(max=p2_size - 1), p1_size)
    idx21 = None
    if reverse:
        blocks21 = best_block(torch.cat(col_min), col_key, pairs[:, 1], b.size, n * b.num * b.size)
        idx = _exact_choice(b.points, a.points, blocks21.view(n, -1, 1), a.valid, 1, 2, True,
                            a.size)
        idx21 = b.unsort(a.order.gather(1, idx[..., 0]).clamp(max=p1_size - 1), p2_size)
    return idx12.unsqueeze(-1), idx21


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
    x = p1.detach().to(work).masked_fill(~valid1[..., None], 0.0)
    y = p2.detach().to(work).masked_fill(~valid2[..., None], 0.0)
    # Centre both clouds on their joint mean: the expanded form then keeps its digits.
    count = (lengths1 + lengths2).clamp(min=1).to(work)[:, None, None]
    centre = (x.sum(1, keepdim=True) + y.sum(1, keepdim=True)) / count
    x = (x - centre).masked_fill(~valid1[..., None], 0.0)
    y = (y - centre).masked_fill(~valid2[..., None], 0.0)

    if norm == 2 and k == 1 and dim == 3 and p1_size * p2_size >= _PRUNE_MIN_PAIRS:
        # Padding takes the coordinates of a valid point of its cloud (see _Blocks).
        found = _pruned(torch.where(valid1[..., None], x, x[:, :1]),
                        torch.where(valid2[..., None], y, y[:, :1]), valid1, valid2, reverse)
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
