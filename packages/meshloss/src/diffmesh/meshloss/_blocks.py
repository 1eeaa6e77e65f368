"""Box-pruned K = 1 nearest-neighbour search in 3D (squared L2, no autograd).

Both clouds are reordered into the leaves of a balanced k-d tree: blocks of consecutive
points with compact bounding boxes. Every pair of blocks is bounded from below by the gap
between the boxes, every query block's nearest-neighbour distances from above by the few
reference blocks with the nearest box centres (and, for the reverse direction, every
reference block's by the column minima of those products and its nearest query block);
only the pairs of blocks that can hold a nearest neighbour are compared.

Comparisons are batched matrix products of the expanded form ``|x|^2 + |y|^2 - 2 x.y``.
The products behind the upper bounds (each query block with its nearest reference blocks)
count as comparisons too; the main pass groups the remaining pairs by query block, each
query block meeting the union of its candidate blocks (its row of a padded candidate table)
in one product. Per query point the compared block with the smallest minimum wins (and,
for the reverse direction, per reference point the query block with the smallest minimum);
the final choice inside the winning block uses exact coordinate differences, so the
expanded form only ranks blocks.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

_INF = float("inf")
_TABLE_ENTRIES = 1 << 22  # most (query block, reference block) bounds formed at once
_PRODUCT_ELEMENTS = 1 << 18  # distances per batched product (1 MB in float32: cache-sized)
# With many candidates per query block, products of at least this many query blocks (while
# they stay under _MAX_PRODUCT_ELEMENTS, 8 MB): fewer, larger products.
_CHUNK_BLOCKS = 8
_MAX_PRODUCT_ELEMENTS = 1 << 21
_BOUND_BLOCKS = 4  # b blocks (nearest box centres) behind each a block's upper bound


def _squared_norms(x: Tensor, valid: Tensor) -> Tensor:
    """(..., P, 1) |x|^2, +inf for padding."""
    return (x * x).sum(-1, keepdim=True).masked_fill_(~valid[..., None], _INF)


def _rows(x: Tensor, sq: Tensor, query: bool) -> Tensor:
    one = torch.ones_like(sq)
    return torch.cat([x, sq, one], dim=-1) if query else torch.cat([-2.0 * x, one, sq], dim=-1)


def augment(x: Tensor, valid: Tensor, query: bool) -> Tensor:
    """[x, |x|^2, 1] (query) or [-2x, 1, |x|^2] (reference), |x|^2 = inf for padding: the
    product of a query row and a reference row is the squared distance (inf if either pads)."""
    return _rows(x, _squared_norms(x, valid), query)


def augment_both(x: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """``(augment(x, valid, query=True), augment(x, valid, query=False))`` sharing |x|^2."""
    sq = _squared_norms(x, valid)
    return _rows(x, sq, query=True), _rows(x, sq, query=False)


class Blocks:
    """A 3D cloud reordered into the ``num = 2**levels`` leaves of a balanced k-d tree (each
    segment split at its median along its longest axis, one batched topk per level): blocks
    of ``size`` consecutive points with compact bounding boxes.

    Invalid points (padding) must already hold the coordinates of a valid point of their
    cloud: they never enlarge a box then, so the boxes bound the valid points without masks.

    Attributes:
        num, size: blocks per cloud and points per block.
        order: (N, num * size) long, index in the input cloud of each sorted point (the
            cloud is padded with copies of its first point to ``num * size``).
        points: (N, num * size, 3) sorted coordinates; valid: (N, num * size) bool.
        lo, hi: (N, 3, num) box corners, as coordinate planes; nonempty: (N, num) bool,
            blocks with a valid point.
        planes: (N * num, 3, size) coordinates per block as contiguous planes, +inf for
            padding (an exact distance to padding is +inf).
    """

    def __init__(self, points: Tensor, valid: Tensor, levels: int) -> None:
        n, p, _ = points.shape
        self.num = num = 1 << levels
        self.size = size = -(-p // num)
        total = size * num
        pts = torch.cat([points, points[:, :1].expand(-1, total - p, -1)], dim=1)
        planes = pts.transpose(1, 2).contiguous()  # (N, 3, total)
        order = torch.arange(total, device=points.device).expand(n, total)
        for level in range(levels):
            # Split every segment at its median along its longest axis.
            segments, length = 1 << level, total >> level
            seg = planes.view(n, 3, segments, length)
            extent = seg.amax(3) - seg.amin(3)  # (N, 3, segments); aminmax is ~8x slower here
            axis = extent.argmax(1)[:, None, :, None].expand(-1, 1, -1, length)
            key = seg.gather(1, axis).view(n, segments, length)
            # A median split needs no sort: the lower half by topk, the rest in index order.
            low = key.topk(length // 2, dim=2, largest=False, sorted=False).indices
            high = torch.ones_like(key, dtype=torch.bool).scatter_(2, low, False).view(-1).nonzero()
            perm = torch.cat([low, high.view(n, segments, -1) % length], dim=2)
            planes = seg.gather(3, perm[:, None].expand(-1, 3, -1, -1)).view(n, 3, total)
            order = order.view(n, segments, length).gather(2, perm).view(n, total)
        self.order = order
        self.valid = val = torch.nn.functional.pad(valid, (0, total - p), value=False).gather(
            1, order)
        self.points = planes.transpose(1, 2).contiguous()
        boxes = planes.view(n, 3, num, size)  # reduced on planes: ~5x faster than on rows
        self.lo, self.hi = boxes.amin(3), boxes.amax(3)
        self.nonempty = val.view(n, num, size).any(2)
        self.planes = planes.view(n, 3, num, size).transpose(1, 2).masked_fill(
            ~val.view(n, 1, num, size).transpose(1, 2), _INF).reshape(n * num, 3, size)

    def split(self) -> tuple[Blocks, Blocks]:
        """The first and second halves of the batch, as two Blocks (built together once)."""
        n = self.order.shape[0] // 2
        halves = []
        for part in (slice(0, n), slice(n, 2 * n)):
            half = object.__new__(Blocks)
            half.num, half.size = self.num, self.size
            for name in ("order", "points", "valid", "lo", "hi", "nonempty"):
                setattr(half, name, getattr(self, name)[part])
            planes = self.planes.view(2 * n, self.num, 3, self.size)[part]
            half.planes = planes.reshape(n * self.num, 3, self.size)
            halves.append(half)
        return halves[0], halves[1]

    def original(self, block: Tensor, slot: Tensor, length: int) -> Tensor:
        """(N, R) batch-global block ids and slots in them -> (N, R) input-cloud indices."""
        n = self.order.shape[0]
        local = block - torch.arange(n, device=block.device)[:, None] * self.num
        return self.order.gather(1, local * self.size + slot).clamp_(max=length - 1)

    def unsort(self, values: Tensor, length: int) -> Tensor:
        """(N, num * size) values per sorted point -> (N, length) in the input order."""
        out = torch.empty_like(values).scatter_(1, self.order, values)  # order: a permutation
        return out[:, :length]


def _near_products(a: Blocks, b: Blocks, a_aug: Tensor, b_aug: Tensor, nearest: Tensor
                   ) -> tuple[Tensor, Tensor]:
    """Expanded-form distances from every a block to the b blocks ``nearest`` (N, a.num, c)
    long local ids: (N * a.num, a.size, c * b.size), inf where either point pads; and those
    b blocks as batch-global ids (N * a.num, c).

    ``a_aug`` (N * a.num, a.size, 5) query rows, ``b_aug`` (N * b.num, b.size, 5) reference
    rows (see :func:`augment`).
    """
    n, _, near = nearest.shape
    offset = torch.arange(n, device=nearest.device)[:, None, None] * b.num
    blocks = (nearest + offset).reshape(n * a.num, near)
    refs = b_aug.index_select(0, blocks.reshape(-1)).view(n * a.num, near * b.size, 5)
    return torch.bmm(a_aug, refs.transpose(1, 2)), blocks


def _upper_bounds(best: Tensor, valid: Tensor, slack: Tensor) -> Tensor:
    """(N, num) bound of the squared nearest-neighbour distances of the valid points of each
    block, from ``best`` (N * num, size) distances of every point to some valid points
    (-inf for blocks without valid points); ``slack`` (N, 1) covers the rounding of the
    expanded form."""
    n = slack.shape[0]
    size = best.shape[1]
    worst = best.view(n, -1, size).masked_fill(~valid.view(n, -1, size), -_INF).amax(2)
    return worst * (1.0 + 1e-5) + slack


def _column_minima(dist: Tensor, ref_blocks: Tensor, query_blocks: Tensor, size: int
                   ) -> tuple[Tensor, Tensor, Tensor]:
    """The reverse direction's entries of a batched product ``dist`` (m, a.size, k * size)
    of m query blocks (batch-global ids ``query_blocks`` (m,)) with their reference blocks
    ``ref_blocks`` (m, k): per reference point, its smallest distance to the query block.

    Returns:
        (m * k * size,) values, batch-global reference points (block * size + slot) and
        the query block of each.
    """
    points = ref_blocks[:, :, None] * size + torch.arange(size, device=dist.device)
    blocks = query_blocks.repeat_interleave(ref_blocks.shape[1] * size)
    return dist.amin(1).view(-1), points.view(-1), blocks


class _Plan(NamedTuple):
    """Which pairs of blocks the search compares, and what the bounding products found.

    Attributes:
        wanted: (N, a.num, b.num) bool, the pairs that can hold a nearest neighbour of an a
            point (or, in a reverse search, of a b point).
        covered: (N, a.num, b.num) bool, the pairs already compared: every a block with its
            ``_BOUND_BLOCKS`` nearest b blocks.
        row_value, row_block: (N * a.num, a.size) per a point, the smallest distance over
            the covered pairs and its b block (batch-global id; the smallest among ties).
        col_values, col_points, col_blocks: (M,) the covered pairs' column minima (reverse
            search only, else empty): a distance, the batch-global b point it belongs to
            (block * b.size + slot) and the a block it came from.
    """

    wanted: Tensor
    covered: Tensor
    row_value: Tensor
    row_block: Tensor
    col_values: Tensor
    col_points: Tensor
    col_blocks: Tensor


def _plan(a: Blocks, b: Blocks, a_aug: Tensor, b_aug_q: Tensor, a_aug_r: Tensor,
          b_aug: Tensor, reverse: bool) -> _Plan:
    """Bound every pair of blocks and compare each a block with its nearest b blocks (see
    :class:`_Plan`): the products that give the upper bounds also give those pairs' minima,
    so the main pass skips them."""
    # The boxes hold every point (padding copies a valid point): they give the radius.
    corners = torch.stack([a.lo.abs(), a.hi.abs()]).amax((0, 2, 3))
    radius = torch.maximum(corners, torch.stack([b.lo.abs(), b.hi.abs()]).amax((0, 2, 3)))
    # The expanded form errs by a few ulps of |x|^2 + |y|^2: widen the upper bounds by that.
    slack = 64.0 * torch.finfo(a.points.dtype).eps * 3.0 * radius[:, None] * radius[:, None]
    # Box-to-box lower bounds, on coordinate planes (N, 3, na, nb): contiguous sums.
    gap = torch.maximum(b.lo[:, :, None] - a.hi[..., None], a.lo[..., None] - b.hi[:, :, None])
    gap = gap.clamp_(min=0).square_()
    lower = gap[:, 0].add_(gap[:, 1]).add_(gap[:, 2])  # (N, na, nb)
    # The blocks behind each upper bound: nearest box centres (by the expanded form: it only
    # chooses which blocks bound the distances; any choice gives valid bounds).
    a_centre = (a.lo + a.hi).transpose(1, 2)  # twice the centres (N, na, 3): same ranking
    b_centre = (b.lo + b.hi).transpose(1, 2)
    centre_dist = torch.baddbmm(
        (a_centre * a_centre).sum(-1, keepdim=True) + (b_centre * b_centre).sum(-1)[:, None],
        a_centre, b_centre.transpose(1, 2), alpha=-2.0)
    centre_dist.masked_fill_(~(a.nonempty[:, :, None] & b.nonempty[:, None, :]), _INF)
    near = min(_BOUND_BLOCKS, b.num)
    # In increasing id order, so that the first minimum is the smallest block among ties.
    nearest = centre_dist.topk(near, dim=2, largest=False, sorted=False).indices.sort(2).values
    dist, near_blocks = _near_products(a, b, a_aug, b_aug, nearest)
    row_value, pick = dist.view(-1, a.size, near, b.size).amin(3).min(2)
    row_block = near_blocks.gather(1, pick)
    wanted = lower <= _upper_bounds(row_value, a.valid, slack)[:, :, None]
    col_values = col_points = col_blocks = row_block.new_empty((0,))
    if reverse:
        col_values, col_points, col_blocks = _column_minima(
            dist, near_blocks, torch.arange(near_blocks.shape[0], device=dist.device), b.size)
        # A b point's distance to the a block with the nearest centre, lowered by the column
        # minima of the products above where they hold the point: both bound its distance.
        nearest_r = centre_dist.argmin(1)[..., None]  # (N, nb, 1)
        best_r = _near_products(b, a, b_aug_q, a_aug_r, nearest_r)[0].amin(2)
        best_r = best_r.view(-1).scatter_reduce_(0, col_points, col_values, "amin")
        wanted |= lower <= _upper_bounds(best_r.view(-1, b.size), b.valid, slack)[:, None, :]
    wanted &= a.nonempty[:, :, None] & b.nonempty[:, None, :]
    covered = torch.zeros_like(wanted).scatter_(2, nearest, True)
    return _Plan(wanted, covered, row_value, row_block, col_values, col_points, col_blocks)


def _best_blocks(values: Tensor, points: Tensor, blocks: Tensor, default: Tensor) -> Tensor:
    """Per point, the block whose entry gave it the smallest value (the smallest block id
    among ties; ``default`` (T,) long for points without entries)."""
    total = default.shape[0]
    best = values.new_full((total,), _INF).scatter_reduce_(0, points, values, "amin")
    big = torch.iinfo(torch.int64).max
    block = torch.where(values == best.index_select(0, points), blocks, big)
    out = torch.full((total,), big, dtype=torch.int64, device=values.device)
    out = out.scatter_reduce_(0, points, block, "amin")
    return torch.where(out == big, default, out)


def _exact_in_blocks(query: Tensor, planes: Tensor, block: Tensor) -> Tensor:
    """(Q, 3) query points, (B, 3, S) block planes, (Q,) block per query -> (Q,) long slot of
    the nearest point of that block by exact coordinate differences (first among ties)."""
    diff = planes.index_select(0, block).sub_(query[:, :, None])  # (Q, 3, S)
    diff.square_()
    return (diff[:, 0] + diff[:, 1] + diff[:, 2]).min(1).indices  # min: faster than argmin


def pruned_search(x: Tensor, y: Tensor, valid1: Tensor, valid2: Tensor, leaf: int,
                  reverse: bool) -> tuple[Tensor, Tensor | None] | None:
    """Box-pruned K = 1 search (squared L2, 3D) on centred clouds; None if pruning does not pay.

    Args:
        x: (N, P1, 3) float query points, padding holding the coordinates of a valid point.
        y: (N, P2, 3) float reference points, padded the same way.
        valid1, valid2: (N, P1) / (N, P2) bool, False for padding.
        leaf: target points per block.
        reverse: also find the nearest x point of every y point.

    Returns:
        (N, P1, 1) long indices into y and, if ``reverse``, (N, P2) long indices into x
        (arbitrary for padding); None when the bounds keep more than half of all pairs.
    """
    n, p1_size, _ = x.shape
    p2_size = y.shape[1]
    levels1 = max(0, round(math.log2(max(p1_size / leaf, 1.0))))
    levels2 = max(0, round(math.log2(max(p2_size / leaf, 1.0))))
    while n << (levels1 + levels2) > _TABLE_ENTRIES and levels1 + levels2 > 0:
        levels1, levels2 = max(0, levels1 - 1), max(0, levels2 - 1)
    if p1_size == p2_size:  # one build for both clouds: half the small ops
        joint = Blocks(torch.cat([x, y]), torch.cat([valid1, valid2]), levels1)
        a, b = joint.split()
        query_rows, ref_rows = augment_both(joint.points, joint.valid)
        a_aug, b_aug_q = query_rows[:n], query_rows[n:]
        a_aug_r, b_aug = ref_rows[:n], ref_rows[n:]
    else:
        a, b = Blocks(x, valid1, levels1), Blocks(y, valid2, levels2)
        a_aug, a_aug_r = augment_both(a.points, a.valid)
        b_aug_q, b_aug = augment_both(b.points, b.valid)
    num1, num2 = a.num, b.num
    a_aug, a_aug_r = a_aug.view(n * num1, a.size, 5), a_aug_r.view(n * num1, a.size, 5)
    b_aug, b_aug_q = b_aug.view(n * num2, b.size, 5), b_aug_q.view(n * num2, b.size, 5)
    plan = _plan(a, b, a_aug, b_aug_q, a_aug_r, b_aug, reverse)
    wanted = plan.wanted.view(n * num1, num2)
    compared = int(wanted.sum())
    if compared == 0 or compared * a.size * b.size * 2 > p1_size * p2_size * n:
        return None

    # The candidate table of the main pass (the pairs not compared yet): row i lists the
    # batch-global b blocks of query block i, padded with a dummy block of +inf distances.
    wanted &= ~plan.covered.view(n * num1, num2)
    counts = wanted.sum(1)
    pairs = wanted.nonzero()  # (M, 2) row-major: query block, b block
    rows = pairs[:, 0]
    slot = torch.arange(rows.shape[0], device=rows.device) - (counts.cumsum(0) - counts)[rows]
    dummy = n * num2
    width = int(counts.max())
    table = torch.full((n * num1, width), dummy, dtype=torch.int64, device=x.device)
    table[rows, slot] = pairs[:, 1] + rows // num1 * num2
    pad_block = b_aug.new_zeros((1, b.size, 5))
    pad_block[..., 3] = 1.0
    pad_block[..., 4] = _INF
    b_aug = torch.cat([b_aug, pad_block])

    # Query blocks by decreasing candidate count, in chunks padded to their largest count.
    active = int((counts > 0).sum())
    order = counts.argsort(descending=True)[:active]
    sorted_counts = counts[order].tolist()
    queries, cands = a_aug.index_select(0, order), table.index_select(0, order)
    picked = torch.zeros((active, a.size), dtype=torch.int64, device=x.device)
    picked_value = a_aug.new_empty((active, a.size))
    columns = [(plan.col_values, plan.col_points, plan.col_blocks)]
    start = 0
    while start < active:
        k = sorted_counts[start]
        per_block = a.size * k * b.size
        chunk = max(1, _PRODUCT_ELEMENTS // per_block,
                    min(_CHUNK_BLOCKS, _MAX_PRODUCT_ELEMENTS // per_block))
        stop = min(active, start + chunk)
        cand = cands[start:stop, :k]  # (m, k)
        refs = b_aug.index_select(0, cand.reshape(-1)).view(-1, k * b.size, 5)
        d = torch.bmm(queries[start:stop], refs.transpose(1, 2))  # (m, a.size, k * b.size)
        value, pick = d.view(-1, a.size, k, b.size).amin(3).min(2)
        picked_value[start:stop] = value
        picked[start:stop] = cand.gather(1, pick)
        if reverse:  # column minima: per b point, the best of this query block
            columns.append(_column_minima(d, cand, order[start:stop], b.size))
        start = stop
    # Per a point, the better of the bounding products and the main pass (smaller block
    # among ties, as the blocks of each come in increasing id order).
    value12 = torch.full_like(plan.row_value, _INF).index_copy_(0, order, picked_value)
    block12 = plan.row_block.clone().index_copy_(0, order, picked)
    main = (value12 < plan.row_value) | ((value12 == plan.row_value) & (block12 < plan.row_block))
    best12 = torch.where(main, block12, plan.row_block).view(n, -1)
    slot12 = _exact_in_blocks(a.points.view(-1, 3), b.planes, best12.view(-1)).view(n, -1)
    idx12 = a.unsort(b.original(best12, slot12, p2_size), p1_size).unsqueeze(-1)
    if not reverse:
        return idx12, None
    first1 = torch.arange(n, device=x.device) * num1  # (N,) batch-global id of each first block
    default = torch.cat([first1.repeat_interleave(num2 * b.size), first1.new_zeros(b.size)])
    values, points, blocks = (torch.cat(parts) for parts in zip(*columns, strict=True))
    best21 = _best_blocks(values, points, blocks, default)[:dummy * b.size].view(n, -1)
    slot21 = _exact_in_blocks(b.points.view(-1, 3), a.planes, best21.view(-1)).view(n, -1)
    return idx12, b.unsort(a.original(best21, slot21, p1_size), p2_size)
