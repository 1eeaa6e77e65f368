"""A direct sparse solver for ``M = I + lambda L``: block-tridiagonal Cholesky in a
breadth-first level ordering (the Cuthill-McKee idea).

Breadth-first search from a pseudo-peripheral vertex of each connected component splits
the vertices into levels; an edge joins only vertices of the same or of adjacent levels.
Numbered level by level (components one after the other), ``M`` is block tridiagonal, with
one block per run of consecutive levels (a block starts at the first level that starts in
each run of ``min_block`` positions, so that the tiny levels near the start vertex do not
cost a kernel call each). Its Cholesky
factor keeps that structure (the fill stays inside the blocks):

    L_0 L_0^T = M_00,   S_j = M_{j,j-1} L_{j-1}^-T,   L_j L_j^T = M_jj - S_j S_j^T,

and ``M x = b`` is two sweeps over the blocks, two small dense products per block each
(the diagonal blocks are kept as ``L_j^-1``, well conditioned because ``M`` is: its
eigenvalues lie in ``[1, 1 + 2 lambda max_degree]``):

    y_j = L_j^-1 (b_j - S_j y_{j-1}),   x_j = L_j^-T (y_j - S_{j+1}^T x_{j+1}).

Storage is ``sum_j s_j^2 + s_j s_{j-1}`` numbers for blocks of ``s_j`` vertices, about
``2 V w`` for levels of ``w`` vertices; on a closed surface mesh ``w`` grows as
``sqrt(V)``, so the factor grows as ``V^1.5`` (ico_sphere(5), 10242 vertices: 10 MB in
float32; ico_sphere(6), 40962 vertices: 83 MB), against ``4 V^2`` bytes for a dense
factor. The setup (ordering and factorisation) is done once per topology; vectorised
except for the loop over blocks.
"""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import Tensor

__all__ = ["BlockOrdering", "BlockTridiagonalCholesky", "block_ordering"]

#: Consecutive levels are merged into blocks: at most one block starts in each run of this
#: many positions.
MIN_BLOCK = 32


class BlockOrdering:
    """A vertex permutation that makes ``M`` block tridiagonal.

    Attributes:
        perm: ``(V,)`` long, ``perm[k]`` the vertex numbered ``k``.
        position: ``(V,)`` long, the inverse permutation.
        offsets: the blocks' first positions and the end: ``len == num_blocks + 1``.
    """

    def __init__(self, perm: Tensor, offsets: list[int]) -> None:
        self.perm = perm
        self.position = torch.empty_like(perm)  # every element written by the scatter
        self.position[perm] = torch.arange(perm.shape[0], device=perm.device)
        self.offsets = offsets

    @property
    def sizes(self) -> list[int]:
        return [b - a for a, b in pairwise(self.offsets)]

    def factor_numel(self) -> int:
        """Numbers stored by the factor: ``sum_j s_j^2 + s_j s_{j-1}``."""
        sizes = self.sizes
        return sum(s * s for s in sizes) + sum(a * b for a, b in pairwise(sizes))


def _bfs_levels(crow: Tensor, cols: Tensor, seeds: Tensor) -> Tensor:
    """``(V,)`` long breadth-first distance of every vertex from its component's seed
    (one seed per component), over the CSR graph ``crow, cols``; each level expands only
    its frontier's rows."""
    size = crow.shape[0] - 1
    level = torch.full((size,), -1, dtype=torch.long, device=cols.device)
    level[seeds] = 0
    frontier = seeds
    depth = 0
    while True:
        counts = crow[frontier + 1] - crow[frontier]
        first = torch.repeat_interleave(crow[frontier] - (torch.cumsum(counts, 0) - counts), counts)
        reached = cols[first + torch.arange(first.shape[0], device=cols.device)]
        reached = torch.unique(reached[level[reached] < 0])
        if reached.numel() == 0:
            return level
        depth += 1
        level[reached] = depth
        frontier = reached


def _components(rows: Tensor, cols: Tensor, size: int) -> Tensor:
    """``(V,)`` long, the smallest vertex index of each vertex's connected component: label
    propagation (each label the smallest of its neighbours'), with pointer jumping."""
    label = torch.arange(size, device=rows.device)
    while True:
        new = label.scatter_reduce(0, rows, label[cols], reduce="amin")
        new = new[new]  # a label's own label is smaller or equal, in the same component
        if torch.equal(new, label):
            return label
        label = new


def block_ordering(
    rows: Tensor, cols: Tensor, size: int, min_block: int | None = None
) -> BlockOrdering:
    """Order the vertices level by level from pseudo-peripheral start vertices.

    Args:
        rows, cols: ``(E,)`` long, the directed edges (both directions) of the graph; other
            entries (a diagonal) are ignored.
        size: the number of vertices ``V``.
        min_block: consecutive levels are merged into blocks: a block starts at the first
            level starting in each run of ``min_block`` positions (default ``MIN_BLOCK``).

    Returns:
        The ordering; its blocks make the matrix block tridiagonal.
    """
    device = rows.device
    min_block = MIN_BLOCK if min_block is None else min_block
    off_diagonal = rows != cols
    rows, cols = rows[off_diagonal], cols[off_diagonal]
    if size == 0:
        return BlockOrdering(torch.zeros(0, dtype=torch.long, device=device), [0])
    by_row = torch.argsort(rows, stable=True)
    rows, cols = rows[by_row], cols[by_row]
    crow = torch.zeros(size + 1, dtype=torch.long, device=device)
    crow[1:] = torch.cumsum(torch.bincount(rows, minlength=size), 0)
    label = _components(rows, cols, size)
    index = torch.arange(size, device=device)
    seeds = torch.unique(label)
    # George and Liu's pseudo-peripheral vertex: restart from a farthest vertex, twice.
    for _ in range(2):
        level = _bfs_levels(crow, cols, seeds)
        eccentricity = torch.zeros(size, dtype=torch.long, device=device)
        eccentricity = eccentricity.scatter_reduce(0, label, level, reduce="amax")
        farthest = torch.where(level == eccentricity[label], index, size)
        seeds = torch.full((size,), size, dtype=torch.long, device=device)
        seeds = seeds.scatter_reduce(0, label, farthest, reduce="amin")
        seeds = seeds[seeds < size]
    level = _bfs_levels(crow, cols, seeds)
    # the components one after the other: a global level number
    depth = torch.zeros(size, dtype=torch.long, device=device)
    depth = depth.scatter_reduce(0, label, level + 1, reduce="amax")  # zero off the roots
    first_level = torch.cumsum(depth, 0) - depth
    global_level = first_level[label] + level
    perm = torch.argsort(global_level, stable=True)
    level_sizes = torch.bincount(global_level)
    level_sizes = level_sizes[level_sizes > 0]
    level_starts = torch.cumsum(level_sizes, 0) - level_sizes
    # a block starts at every level whose start crosses a multiple of min_block
    bucket = torch.div(level_starts, min_block, rounding_mode="floor")
    new_block = torch.ones_like(bucket, dtype=torch.bool)
    new_block[1:] = bucket[1:] != bucket[:-1]
    offsets = [*level_starts[new_block].tolist(), size]
    return BlockOrdering(perm, offsets)


class BlockTridiagonalCholesky:
    """The block-tridiagonal Cholesky factor of a symmetric positive definite matrix in a
    :class:`BlockOrdering`, with its solve.

    Args:
        rows, cols: ``(nnz,)`` long, the matrix's entries' indices (symmetric pattern).
        values: ``(nnz,)`` float32 or float64, the entries (duplicates are summed).
        ordering: from :func:`block_ordering` on the same pattern.

    Raises:
        ValueError: the matrix is not positive definite.
    """

    def __init__(self, rows: Tensor, cols: Tensor, values: Tensor, ordering: BlockOrdering) -> None:
        self.ordering = ordering
        offsets = ordering.offsets
        sizes = ordering.sizes
        device, dtype = values.device, values.dtype
        num_blocks = len(sizes)
        size_t = torch.tensor(sizes, dtype=torch.long, device=device)
        start_t = torch.tensor(offsets[:-1], dtype=torch.long, device=device)
        diag_start = torch.cumsum(size_t * size_t, 0) - size_t * size_t
        below = torch.zeros_like(size_t)
        below[1:] = size_t[1:] * size_t[:-1]
        below_start = torch.cumsum(below, 0) - below
        # the dense blocks, assembled from the entries
        block_of = torch.repeat_interleave(torch.arange(num_blocks, device=device), size_t)
        pr, pc = ordering.position[rows], ordering.position[cols]
        br, bc = block_of[pr], block_of[pc]
        diagonal = torch.zeros(
            int(diag_start[-1] + size_t[-1] ** 2) if sizes else 0, dtype=dtype, device=device
        )
        same = br == bc
        diagonal.index_put_(
            (
                diag_start[br[same]]
                + (pr[same] - start_t[br[same]]) * size_t[br[same]]
                + pc[same]
                - start_t[bc[same]],
            ),
            values[same],
            accumulate=True,
        )
        lower = torch.zeros(int(below.sum()), dtype=dtype, device=device)
        sub = br == bc + 1
        lower.index_put_(
            (
                below_start[br[sub]]
                + (pr[sub] - start_t[br[sub]]) * size_t[bc[sub]]
                + pc[sub]
                - start_t[bc[sub]],
            ),
            values[sub],
            accumulate=True,
        )
        if bool(((br - bc).abs() > 1).any()):
            raise ValueError("the ordering does not make the matrix block tridiagonal")
        self._inverse: list[Tensor] = []  # L_j^-1, in place of M_jj
        self._below: list[Tensor] = [lower[:0]]  # S_j (none for the first block)
        for j, s in enumerate(sizes):
            block = diagonal[int(diag_start[j]) : int(diag_start[j]) + s * s].view(s, s)
            if j:
                sub_block = lower[
                    int(below_start[j]) : int(below_start[j]) + s * sizes[j - 1]
                ].view(s, sizes[j - 1])
                # S_j = M_{j,j-1} L_{j-1}^-T = M_{j,j-1} (L_{j-1}^-1)^T
                sub_block.copy_(sub_block @ self._inverse[j - 1].T)
                block.sub_(sub_block @ sub_block.T)
                self._below.append(sub_block)
            factor, info = torch.linalg.cholesky_ex(block)
            if int(info) != 0:
                raise ValueError("the matrix is not positive definite")
            identity = torch.eye(s, dtype=dtype, device=device)
            block.copy_(torch.linalg.solve_triangular(factor, identity, upper=False))
            self._inverse.append(block)
        self._storage = (diagonal, lower)
        self._work: tuple[Tensor, Tensor, list[tuple[Tensor, ...]]] | None = None

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self._storage)

    def _buffers(self, like: Tensor) -> tuple[Tensor, Tensor, list[tuple[Tensor, ...]]]:
        """Two ``(C, V)`` work buffers and their per-block views (kept between solves)."""
        channels = like.shape[1]
        work = self._work
        if work is None or work[0].shape[0] != channels:
            first = like.new_empty(channels, like.shape[0])  # written fully by each solve
            second = like.new_empty(channels, like.shape[0])
            offsets = self.ordering.offsets
            views = [(first[:, a:b], second[:, a:b]) for a, b in pairwise(offsets)]
            work = self._work = (first, second, views)
        return work

    def solve(self, b: Tensor) -> Tensor:
        """``M^-1 b`` for ``(V, C)`` ``b``: two sweeps over the blocks (no autograd; the
        work buffers are kept, so one solve at a time)."""
        with torch.no_grad():
            return self._solve(b)

    def _solve(self, b: Tensor) -> Tensor:
        z, _, views = self._buffers(b)
        torch.index_select(b.T, 1, self.ordering.perm, out=z)
        inverse, below = self._inverse, self._below
        num_blocks = len(views)
        for j in range(num_blocks):  # y = L^-1 b; z_j becomes b_j - S_j y_{j-1}
            z_j, y_j = views[j]
            if j:
                z_j.addmm_(views[j - 1][1], below[j].T, alpha=-1.0)
            torch.matmul(z_j, inverse[j].T, out=y_j)
        for j in range(num_blocks - 1, -1, -1):  # x = L^-T y, into z
            z_j, y_j = views[j]
            if j + 1 < num_blocks:
                y_j.addmm_(views[j + 1][0], below[j + 1], alpha=-1.0)
            torch.matmul(y_j, inverse[j], out=z_j)
        return z.index_select(1, self.ordering.position).T.contiguous()
