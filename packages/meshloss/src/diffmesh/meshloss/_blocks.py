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
from collections.abc import Iterator
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
# Working-set bound: the batched products behind the bounds, the box gaps and the exact
# final choice are taken this many elements at a time (8 MB in float32), and the reverse
# direction's entries are folded into one per point whenever they grow past
# _COLUMN_ENTRIES (20 MB) or twice the cloud size; without it the bounding products alone
# took 7.8 GB at 1M x 1M points.
_WORK_ELEMENTS = 1 << 21
_COLUMN_ENTRIES = 1 << 20


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


def _near_blocks(nearest: Tensor, num: int) -> Tensor:
    """(N, A, c) local block ids of the b cloud (``num`` blocks per cloud) -> (N * A, c)
    batch-global ids."""
    n, _, near = nearest.shape
    offset = torch.arange(n, device=nearest.device)[:, None, None] * num
    return (nearest + offset).reshape(-1, near)


def _near_products(a_aug: Tensor, b_aug: Tensor, blocks: Tensor
                   ) -> Iterator[tuple[int, int, Tensor]]:
    """Expanded-form distances from every a block to its b blocks ``blocks`` (A, c)
    batch-global ids, a few a blocks at a time (at most ``_WORK_ELEMENTS`` distances):
    yields ``(start, stop, dist)`` with dist (stop - start, a.size, c * b.size), inf where
    either point pads.

    ``a_aug`` (A, a.size, 5) query rows, ``b_aug`` (B, b.size, 5) reference rows (see
    :func:`augment`).
    """
    rows, near = blocks.shape
    per_block = a_aug.shape[1] * near * b_aug.shape[1]
    step = max(1, _WORK_ELEMENTS // per_block)
    for start in range(0, rows, step):
        stop = min(rows, start + step)
        refs = b_aug.index_select(0, blocks[start:stop].reshape(-1)).view(stop - start, -1, 5)
        yield start, stop, torch.bmm(a_aug[start:stop], refs.transpose(1, 2))


class _ColumnMinima:
    """The reverse direction's entries (distance, batch-global b point, a block), reduced
    to what :meth:`best_blocks` returns (per point the smallest distance; the smallest a
    block among ties) within a fixed memory: entries are copied into one buffer of
    ``_COLUMN_ENTRIES`` and folded into a per-point running minimum whenever it is full.

    One buffer rather than a list of entry tensors: small long-lived tensors between the
    products' large temporaries fragment the heap (measured: +340 MB resident at 400k).
    """

    def __init__(self, points: int, like: Tensor) -> None:
        self.points = points
        self.capacity = min(_COLUMN_ENTRIES, 4 * points)
        self.values = like.new_empty((self.capacity,))  # only [:fill] is ever read
        self.point_ids = torch.empty(self.capacity, dtype=torch.int64, device=like.device)
        self.blocks = torch.empty_like(self.point_ids)
        self.fill = 0
        self.best: Tensor | None = None
        self.block: Tensor | None = None

    def add(self, values: Tensor, points: Tensor, blocks: Tensor) -> None:
        count = values.numel()
        if self.fill + count > self.capacity:
            self._fold()
        if count > self.capacity:
            self._merge(values, points, blocks)
            return
        stop = self.fill + count
        self.values[self.fill:stop] = values
        self.point_ids[self.fill:stop] = points
        self.blocks[self.fill:stop] = blocks
        self.fill = stop

    def _fold(self) -> None:
        if self.fill:
            fill, self.fill = self.fill, 0
            self._merge(self.values[:fill], self.point_ids[:fill], self.blocks[:fill])

    def _merge(self, values: Tensor, points: Tensor, blocks: Tensor) -> None:
        if self.best is None:
            self.best, self.block = _reduce_blocks(values, points, blocks, self.points)
            return
        # A point whose minimum drops takes its block from these entries alone.
        old = self.best.index_select(0, points)
        self.best.scatter_reduce_(0, points, values, "amin")
        new = self.best.index_select(0, points)
        self.block.index_fill_(0, points[new < old], _NO_BLOCK)
        self.block.scatter_reduce_(0, points, torch.where(values == new, blocks, _NO_BLOCK),
                                   "amin")

    def best_blocks(self, default: Tensor) -> Tensor:
        """Per point, the a block of its smallest entry; ``default`` (points,) where none."""
        self._fold()
        if self.block is None:
            return default
        return torch.where(self.block == _NO_BLOCK, default, self.block)


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

    In a reverse search the covered pairs' column minima go to the caller's
    :class:`_ColumnMinima`.
    """

    wanted: Tensor
    covered: Tensor
    row_value: Tensor
    row_block: Tensor


def _box_gaps(a: Blocks, b: Blocks) -> Tensor:
    """(N, a.num, b.num) squared distance between the boxes of every pair of blocks (a lower
    bound of the pair's distances), a few rows and one axis at a time: the temporaries stay
    within ``_WORK_ELEMENTS``."""
    n = a.lo.shape[0]
    lower = a.lo.new_empty((n, a.num, b.num))  # every row written below
    step = max(1, _WORK_ELEMENTS // max(1, n * b.num))
    for start in range(0, a.num, step):
        rows = slice(start, start + step)
        out = lower[:, rows]
        for axis in range(3):
            gap = torch.maximum(b.lo[:, axis, None, :] - a.hi[:, axis, rows, None],
                                a.lo[:, axis, rows, None] - b.hi[:, axis, None, :])
            gap = gap.clamp_(min=0).square_()
            if axis == 0:
                out.copy_(gap)
            else:
                out.add_(gap)
    return lower


def _plan(a: Blocks, b: Blocks, a_aug: Tensor, b_aug_q: Tensor, a_aug_r: Tensor,
          b_aug: Tensor, columns: _ColumnMinima | None) -> _Plan:
    """Bound every pair of blocks and compare each a block with its nearest b blocks (see
    :class:`_Plan`): the products that give the upper bounds also give those pairs' minima,
    so the main pass skips them. ``columns`` (reverse search only) receives their column
    minima."""
    # The boxes hold every point (padding copies a valid point): they give the radius.
    corners = torch.stack([a.lo.abs(), a.hi.abs()]).amax((0, 2, 3))
    radius = torch.maximum(corners, torch.stack([b.lo.abs(), b.hi.abs()]).amax((0, 2, 3)))
    # The expanded form errs by a few ulps of |x|^2 + |y|^2: widen the upper bounds by that.
    slack = 64.0 * torch.finfo(a.points.dtype).eps * 3.0 * radius[:, None] * radius[:, None]
    lower = _box_gaps(a, b)  # (N, na, nb)
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
    near_blocks = _near_blocks(nearest, b.num)
    if columns is not None:
        # A b point's distance to the a block with the nearest centre, lowered by the column
        # minima of the products below where they hold the point: both bound its distance.
        nearest_r = _near_blocks(centre_dist.argmin(1)[..., None], a.num)  # (N * nb, 1)
        best_r = b_aug_q.new_empty(b_aug_q.shape[:2])  # every row written below
        for start, stop, dist in _near_products(b_aug_q, a_aug_r, nearest_r):
            best_r[start:stop] = dist.amin(2)
        best_r = best_r.view(-1)
    row_value = a_aug.new_empty(a_aug.shape[:2])  # every row written below
    row_block = near_blocks.new_empty(a_aug.shape[:2])
    for start, stop, dist in _near_products(a_aug, b_aug, near_blocks):
        value, pick = dist.view(-1, a.size, near, b.size).amin(3).min(2)
        row_value[start:stop] = value
        row_block[start:stop] = near_blocks[start:stop].gather(1, pick)
        if columns is not None:
            entries = _column_minima(dist, near_blocks[start:stop],
                                     torch.arange(start, stop, device=dist.device), b.size)
            best_r.scatter_reduce_(0, entries[1], entries[0], "amin")
            columns.add(*entries)
    wanted = lower <= _upper_bounds(row_value, a.valid, slack)[:, :, None]
    if columns is not None:
        wanted |= lower <= _upper_bounds(best_r.view(-1, b.size), b.valid, slack)[:, None, :]
    wanted &= a.nonempty[:, :, None] & b.nonempty[:, None, :]
    covered = torch.zeros_like(wanted).scatter_(2, nearest, True)
    return _Plan(wanted, covered, row_value, row_block)


_NO_BLOCK = torch.iinfo(torch.int64).max


def _reduce_blocks(values: Tensor, points: Tensor, blocks: Tensor, total: int
                   ) -> tuple[Tensor, Tensor]:
    """Per point of ``total``, the smallest of its entries' values and the block whose entry
    gave it (the smallest block id among ties; ``_NO_BLOCK`` for points without entries)."""
    best = values.new_full((total,), _INF).scatter_reduce_(0, points, values, "amin")
    block = torch.where(values == best.index_select(0, points), blocks, _NO_BLOCK)
    out = torch.full((total,), _NO_BLOCK, dtype=torch.int64, device=values.device)
    return best, out.scatter_reduce_(0, points, block, "amin")


def _exact_in_blocks(query: Tensor, planes: Tensor, block: Tensor) -> Tensor:
    """(Q, 3) query points, (B, 3, S) block planes, (Q,) block per query -> (Q,) long slot of
    the nearest point of that block by exact coordinate differences (first among ties),
    ``_WORK_ELEMENTS`` differences at a time.

    The chunks reuse one set of buffers: fresh temporaries per chunk, interleaved with the
    small results, fragment the heap (measured: +180 MB of resident memory at 400k points).
    """
    total, size = query.shape[0], planes.shape[2]
    step = min(total, max(1, _WORK_ELEMENTS // (3 * size)))
    if step == total:  # one chunk (every fit-sized cloud)
        diff = planes.index_select(0, block).sub_(query[:, :, None])  # (Q, 3, S)
        diff.square_()
        return (diff[:, 0] + diff[:, 1] + diff[:, 2]).min(1).indices  # min: faster than argmin
    diff_buf = planes.new_empty((step, 3, size))  # each chunk writes the rows it reads
    sum_buf = planes.new_empty((step, size))
    min_buf = planes.new_empty((step,))
    out = torch.empty(total, dtype=torch.int64, device=query.device)  # every slot written
    for start in range(0, total, step):
        rows = min(step, total - start)
        diff = torch.index_select(planes, 0, block[start:start + rows], out=diff_buf[:rows])
        diff.sub_(query[start:start + rows, :, None]).square_()
        acc = torch.add(diff[:, 0], diff[:, 1], out=sum_buf[:rows]).add_(diff[:, 2])
        torch.min(acc, 1, out=(min_buf[:rows], out[start:start + rows]))
    return out


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
    columns = _ColumnMinima((n * num2 + 1) * b.size, a_aug) if reverse else None
    plan = _plan(a, b, a_aug, b_aug_q, a_aug_r, b_aug, columns)
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
    start = 0
    while start < active:
        k = sorted_counts[start]
        per_block = a.size * k * b.size
        chunk = max(1, _PRODUCT_ELEMENTS // per_block,
                    min(_CHUNK_BLOCKS, _MAX_PRODUCT_ELEMENTS // per_block))
        stop = min(active, start + chunk)
        # A query block with very many candidates meets them a slice at a time (in
        # increasing id order: an earlier slice keeps a tie).
        slice_width = max(1, _WORK_ELEMENTS // (a.size * b.size))
        for first in range(0, k, slice_width):
            cand = cands[start:stop, first:min(k, first + slice_width)]  # (m, span)
            span = cand.shape[1]
            refs = b_aug.index_select(0, cand.reshape(-1)).view(-1, span * b.size, 5)
            d = torch.bmm(queries[start:stop], refs.transpose(1, 2))  # (m, a.size, span * b.size)
            value, pick = d.view(-1, a.size, span, b.size).amin(3).min(2)
            block = cand.gather(1, pick)
            if first > 0:
                better = value < picked_value[start:stop]
                value = torch.where(better, value, picked_value[start:stop])
                block = torch.where(better, block, picked[start:stop])
            picked_value[start:stop] = value
            picked[start:stop] = block
            if columns is not None:  # column minima: per b point, the best of this query block
                columns.add(*_column_minima(d, cand, order[start:stop], b.size))
        start = stop
    # Per a point, the better of the bounding products and the main pass (smaller block
    # among ties, as the blocks of each come in increasing id order).
    value12 = torch.full_like(plan.row_value, _INF).index_copy_(0, order, picked_value)
    block12 = plan.row_block.clone().index_copy_(0, order, picked)
    main = (value12 < plan.row_value) | ((value12 == plan.row_value) & (block12 < plan.row_block))
    best12 = torch.where(main, block12, plan.row_block).view(n, -1)
    slot12 = _exact_in_blocks(a.points.view(-1, 3), b.planes, best12.view(-1)).view(n, -1)
    idx12 = a.unsort(b.original(best12, slot12, p2_size), p1_size).unsqueeze(-1)
    if columns is None:
        return idx12, None
    first1 = torch.arange(n, device=x.device) * num1  # (N,) batch-global id of each first block
    default = torch.cat([first1.repeat_interleave(num2 * b.size), first1.new_zeros(b.size)])
    best21 = columns.best_blocks(default)[:dummy * b.size].view(n, -1)
    slot21 = _exact_in_blocks(b.points.view(-1, 3), a.planes, best21.view(-1)).view(n, -1)
    return idx12, b.unsort(a.original(best21, slot21, p1_size), p2_size)
