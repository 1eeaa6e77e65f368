"""The rasterizer's kernel, no autograd: which (pixel, face) pairs are kept, and their values.

Each face visits only the pixels of its box grown by ``sqrt(blur_radius)``. Faces sorted by
box size are evaluated as (faces, cells) grids of about ``_CHUNK_PAIRS`` candidates
(face-major: per-face constants broadcast along the rows); kept cells are compacted into one
growing buffer, so each face's pairs are contiguous, and pixels with more than K pairs keep
the K nearest by (z, face id).

Every value follows PyTorch3D's CPU arithmetic in its order (bit-identical float32): edge
functions, then division by the signed area + 1e-8 (a double); barycentrics clipped to
[0, 1] and renormalised (sum clamped at 1e-5) when asked; depth from the clipped ones,
inside/outside from the unclipped ones; squared distance to the nearest edge in the order
(0, 1), (0, 2), (1, 2). No ``torch.where``, bool -> float conversions or per-candidate
gathers in the grids (slow CPU kernels): 0/1 weights come from ``sign``.
"""

from __future__ import annotations

from collections import namedtuple
from itertools import pairwise

import torch

from ..fragments import complement, k_nearest_drop

__all__ = [
    "FaceRows", "GridAxes", "PairGeometry", "RowLayout", "barycentrics", "eval_grid",
    "face_constants", "face_table", "ndc_pixel_centers", "nonnegative", "positive", "select_pairs",
]

_EPS = 1e-8  # PyTorch3D's kEpsilon (a C++ double)
_CHUNK_PAIRS = 1 << 16  # candidates evaluated at once: cache-sized temporaries (fewer page faults)
_TRIM_PAIRS = 1 << 20  # pairs stored before the first K-nearest trim
_MAX_SPREAD = 2.0  # largest box size ratio within one grid (bounds the padding cells)
_FEW_DROPS = 64  # up to this many pairs beyond the K nearest are removed by shifting in place
_SHIFT_BLOCK = 1 << 14  # columns moved at once when shifting pairs in place
_k_nearest_drop = k_nearest_drop  # its 0.2.0 name here (read through ``_raster_pairs``)

# The rows of the per-face table, (M,) each (or (m, 1) columns in a grid): vertices, signed
# area + eps, edge vectors, squared edge lengths; then the box (flipped first column and row,
# width, height) and whether an edge is degenerate, as floats.
FaceRows = namedtuple(
    "FaceRows",
    "x0 y0 z0 x1 y1 z1 x2 y2 z2 area d21x d21y d02x d02y d10x d10y e02x e02y l01 l02 l12 xb yb nx ny deg",
    defaults=(None,) * 5,
)


class RowLayout:
    """Which per-pair rows :func:`eval_grid` returns, and where each starts.

    After the pixel offset row: ``zbuf`` (row 0 of the stored block), ``dists`` (1); with
    gradients and barycentrics ``qx``, ``qy``, the screen-space barycentrics (3) and the
    perspective-corrected ones (3, if corrected); with gradients the nearest-edge rows
    ``edge``, ``edge_t``, ``edge_rx``, ``edge_ry``; then the output barycentrics (3) when they
    are not a set above (clipped, or no gradients) and barycentrics are kept.
    """

    def __init__(self, perspective_correct: bool, clip: bool, need_grad: bool, need_bary: bool = True) -> None:
        self.perspective_correct, self.clip, self.need_grad = perspective_correct, clip, need_grad
        self.grad_bary = need_grad and need_bary  # qx, qy and the screen-space barycentrics are stored
        self.out_bary = need_bary and (clip or not need_grad)  # the output barycentrics have rows of their own
        self.bary0, self.bary1 = 4, (7 if perspective_correct else 4)
        self.edge = 2 + (5 + 3 * perspective_correct if self.grad_bary else 0)
        after_edge = self.edge + 4 * need_grad
        self.bary = after_edge if self.out_bary else (self.bary1 if self.grad_bary else None)
        self.count = after_edge + 3 * self.out_bary  # stored rows, without the pixel offset row


class GridAxes:
    """Pixel index -> NDC centre on both image axes: ``(rng * (size - 1 - i) + offset) / size
    - offset`` with ``rng`` 2 (``2 * size / other`` on the longer side), ``offset = rng / 2``."""

    def __init__(self, height: int, width: int, dtype: torch.dtype, device: torch.device) -> None:
        self.height, self.width = height, width
        self.x = self._axis(width, height, dtype, device)
        self.y = self._axis(height, width, dtype, device)

    @staticmethod
    def _axis(size: int, other: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, int]:
        rng = torch.tensor(2.0, dtype=dtype, device=device)
        if size > other:
            rng = (rng * size) / other
        return rng, rng / 2.0, size

    @staticmethod
    def centres(axis: tuple[torch.Tensor, torch.Tensor, int], flipped: torch.Tensor) -> torch.Tensor:
        """Centres of the pixels whose flipped index ``size - 1 - i`` is ``flipped`` (in place)."""
        rng, offset, size = axis
        return flipped.mul_(rng).add_(offset).div_(size).sub_(offset)


def ndc_pixel_centers(size: int, other: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(size,) NDC centres along an axis of ``size`` pixels across ``other`` (PyTorch3D's)."""
    idx = torch.arange(size - 1, -1, -1, dtype=dtype, device=device)
    return GridAxes.centres(GridAxes._axis(size, other, dtype, device), idx)


def face_constants(fv: torch.Tensor) -> list[torch.Tensor]:
    """The rows of :data:`FaceRows` up to ``l12``, (M,) each."""
    f = fv.reshape(-1, 9).t()
    x0, y0, _, x1, y1, _, x2, y2, _ = f
    # BarycentricCoordinatesForward: area = EdgeFunctionForward(v2, v0, v1) + kEpsilon (a double).
    area = ((x2 - x0) * (y1 - y0) - (y2 - y0) * (x1 - x0)).double().add_(_EPS).to(fv.dtype)
    d21x, d21y, d02x, d02y, d10x, d10y = x2 - x1, y2 - y1, x0 - x2, y0 - y2, x1 - x0, y1 - y0
    e02x, e02y = x2 - x0, y2 - y0
    l01 = d10x * d10x + d10y * d10y
    l02 = e02x * e02x + e02y * e02y
    l12 = d21x * d21x + d21y * d21y
    return [*f, area, d21x, d21y, d02x, d02y, d10x, d10y, e02x, e02y, l01, l02, l12]


def face_table(
    fv: torch.Tensor, x_lo: torch.Tensor, y_lo: torch.Tensor, nx: torch.Tensor, ny: torch.Tensor, axes: GridAxes
) -> torch.Tensor:
    """(T, M) rows of :data:`FaceRows` for faces (M, 3, 3) with boxes from (x_lo, y_lo), nx x ny."""
    rows = face_constants(fv)
    l01, l02, l12 = rows[-3:]
    degenerate = (torch.stack((l01, l02, l12)).double() <= _EPS).any(dim=0).to(fv.dtype)
    box = torch.stack(((axes.width - 1) - x_lo, (axes.height - 1) - y_lo, nx, ny)).to(fv.dtype)
    return torch.cat((torch.stack(rows), box, degenerate[None]))


def nonnegative(x: torch.Tensor) -> torch.Tensor:
    """1.0 where ``x >= 0`` (either zero), else 0.0, in place (finite ``x``)."""
    return x.sign_().add_(1.0).clamp_(max=1.0)


def positive(x: torch.Tensor) -> torch.Tensor:
    """1.0 where ``x > 0``, else 0.0, in place (finite ``x``)."""
    return x.sign_().clamp_(min=0.0)


def _edge(
    px: torch.Tensor, py: torch.Tensor, pax: torch.Tensor, pay: torch.Tensor, ax: torch.Tensor, ay: torch.Tensor,
    bx: torch.Tensor, by: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor, l2: torch.Tensor, degenerate: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(squared distance, clamped t, nearest point - p (x, y)) from p to segments a -> b.

    ``pax, pay = p - a``, ``dx, dy = b - a``, ``l2 = |b - a|^2``; a degenerate segment
    (``l2 <= 1e-8``) measures to ``b``.
    """
    t = (dx * pax).add_(dy * pay).div_(l2).clamp_(0.0, 1.0)
    rx = (t * dx).add_(ax).sub_(px)  # (a + t d) - p, in that order
    ry = (t * dy).add_(ay).sub_(py)
    if degenerate:
        bad = l2.double() <= _EPS
        t = torch.where(bad, torch.ones_like(t), t)
        rx = torch.where(bad, bx - px, rx)  # b - p, not a + 1 * (b - a) - p
        ry = torch.where(bad, by - py, ry)
    return (rx * rx).add_(ry * ry), t, rx, ry


def eval_grid(
    tb: torch.Tensor, width: int, axes: GridAxes, blur_radius: float, layout: RowLayout, degenerate: bool
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Evaluate an (m, width) grid of candidates: cell j of face f is the pixel at row
    ``j // nx_f``, column ``j % nx_f`` of its box.

    Args:
        tb: (T, m) :func:`face_table` of the grid's faces.
        width: cells per face (at least the largest ``nx * ny`` among them).
        degenerate: some face has an edge of squared length <= 1e-8.

    Returns:
        (keep (m, width) bool, rows): the pixel offset ``row * W + column`` (exact floats),
        then the (m, width) rows of ``layout``; ``edge`` is 0.0, 1.0, 2.0 for (0, 1), (0, 2), (1, 2).
    """
    t = FaceRows._make(tb[:, :, None].unbind(0))  # (m, 1) columns
    x0, y0, z0, x1, y1, z1, x2, y2, z2 = t[:9]
    perspective_correct, clip, need_grad = layout.perspective_correct, layout.clip, layout.need_grad
    j = torch.arange(width, dtype=tb.dtype, device=tb.device)[None, :]
    nx = t.nx
    row = (j + 0.5).div(nx).floor_()  # exact: cell indices are small integers
    col = torch.addcmul(j, row, nx, value=-1.0)  # j - row * nx, exact on small integers
    inbox = row < t.ny  # cells past the face's box
    if axes.height * axes.width <= 1 << 24:
        pixoff = (row * axes.width).add_(col)
    else:  # pixel offsets past float32's exact integers
        pixoff = (row.double() * axes.width).add_(col)
    # (in place: row and col are not needed again) centres of columns xb - col, rows yb - row
    px = GridAxes.centres(axes.x, col.neg_().add_(t.xb))
    py = GridAxes.centres(axes.y, row.neg_().add_(t.yb))
    (px0, py0, px1, py1), b0, b1, b2 = barycentrics(px, py, t, perspective_correct, clip)
    zbuf = (b2[0] * z0).add_(b2[1] * z1).add_(b2[2] * z2)
    # inside: all (unclipped) barycentrics > 0; kept: inside or dist < blur (and zbuf >= 0)
    min_b = torch.minimum(torch.minimum(b1[0], b1[1]), b1[2])
    # rows kept for the output; the others are released as soon as they are used
    qxy = [px0, py0] if layout.grad_bary else []
    bary_rows = [*b0, *(b1 if perspective_correct else ())] if layout.grad_bary else []
    out_rows = list(b2) if layout.out_bary else []
    del b0, b1, b2
    # per edge: distance, then (t, rx, ry), kept for the gradient rows only
    d01, *e01 = _edge(px, py, px0, py0, x0, y0, x1, y1, t.d10x, t.d10y, t.l01, degenerate)
    d02, *e02 = _edge(px, py, px0, py0, x0, y0, x2, y2, t.e02x, t.e02y, t.l02, degenerate)
    del px0, py0
    d12, *e12 = _edge(px, py, px1, py1, x1, y1, x2, y2, t.d21x, t.d21y, t.l12, degenerate)
    del px, py, px1, py1
    if not need_grad:
        e01 = e02 = e12 = []
    m12 = torch.minimum(d02, d12)
    dist = torch.minimum(d01, m12)
    blur32 = torch.tensor(blur_radius, dtype=torch.float32).item()
    # a - b > 0 exactly when a > b (IEEE subtraction with gradual underflow)
    keep = torch.maximum(min_b, torch.rsub(dist, blur32)) > 0
    keep &= inbox
    if perspective_correct or not clip:  # clipped barycentrics always give zbuf >= 0
        keep &= zbuf >= 0
    # signed distance, negative inside: 0 - min_b is negative exactly when min_b > 0
    dists = dist.copysign_(min_b.neg_().add_(0.0))  # -min_b + 0.0: +0.0 for either zero
    del min_b
    rows = [pixoff, zbuf, dists, *qxy, *bary_rows]
    if need_grad:
        (t01, rx01, ry01), (t02, rx02, ry02), (t12, rx12, ry12) = e01, e02, e12
        # nearest edge, the first minimum in the order (0, 1), (0, 2), (1, 2), by 0/1 weights
        f0 = nonnegative(m12.sub_(d01))  # d01 <= d02 and d01 <= d12
        g0 = torch.rsub(f0, 1.0)
        f1 = nonnegative(d12.sub_(d02)).mul_(g0)  # d02 <= d12, edge 0 not chosen
        f2 = g0.sub_(f1)
        rows += [
            (f2 * 2.0).add_(f1),
            (t01 * f0).addcmul_(t02, f1).addcmul_(t12, f2),
            (rx01 * f0).addcmul_(rx02, f1).addcmul_(rx12, f2),
            (ry01 * f0).addcmul_(ry02, f1).addcmul_(ry12, f2),
        ]
    rows += out_rows
    return keep, rows


def barycentrics(
    px: torch.Tensor, py: torch.Tensor, t: FaceRows, perspective_correct: bool, clip: bool
) -> tuple[tuple[torch.Tensor, ...], ...]:
    """PyTorch3D's barycentrics of pixel centres in faces ``t`` (the one implementation).

    Returns:
        ((px - x0, py - y0, px - x1, py - y1), screen-space, perspective-corrected, output
        (clipped) barycentrics); a set equal to the one before is the same tensors.
    """
    x0, y0, x1, y1, x2, y2, area = t.x0, t.y0, t.x1, t.y1, t.x2, t.y2, t.area
    # e0 = EdgeFunction(p, v1, v2), e1 = EdgeFunction(p, v2, v0), e2 = EdgeFunction(p, v0, v1)
    px0, py0, px1, py1 = px - x0, py - y0, px - x1, py - y1
    w0 = (px1 * t.d21y).sub_(py1 * t.d21x).div_(area)
    w1 = (px - x2).mul_(t.d02y).sub_((py - y2).mul_(t.d02x)).div_(area)
    w2 = (px0 * t.d10y).sub_(py0 * t.d10x).div_(area)
    b0 = (w0, w1, w2)
    if perspective_correct:
        z0, z1, z2 = t.z0, t.z1, t.z2
        p0, p1, p2 = w0 * z1 * z2, w1 * z0 * z2, w2 * z0 * z1
        denom = p0 + p1 + p2
        b1 = (p0.div_(denom), p1.div_(denom), p2.div_(denom))
    else:
        b1 = b0
    if clip:
        c0, c1, c2 = b1[0].clamp(min=0.0), b1[1].clamp(min=0.0), b1[2].clamp(min=0.0)
        total = (c0 + c1).add_(c2).clamp_(min=1e-5)
        b2 = (c0.div_(total), c1.div_(total), c2.div_(total))
    else:
        b2 = b1
    return (px0, py0, px1, py1), b0, b1, b2


# Kept pairs (P of them, each face's contiguous) and what forward and backward need: ``pix``
# (P,) ``n * H * W + y * W + x``; ``face`` (P,) packed id; ``qx``, ``qy`` (P,) pixel centre
# minus vertex 0; ``bary0`` (3, P) screen-space barycentrics, ``bary1`` perspective-corrected
# (``bary0`` if not), ``bary_rows`` the output ones (clipped if asked), ``bary`` the same as
# (P, 3); ``zbuf``, ``dists`` (P,); ``edge`` (P,) nearest edge (0., 1., 2. for (0, 1), (0, 2),
# (1, 2)), ``edge_t`` (P,) position on it, ``edge_r`` (2, P) nearest point minus pixel centre.
# Backward-only fields are None without ``need_grad``, barycentric ones without ``need_bary``.
PairGeometry = namedtuple("PairGeometry", "pix face qx qy bary0 bary1 bary_rows bary zbuf dists edge edge_t edge_r")


def _face_filter(
    fv: torch.Tensor, blur_radius: float, cull_backfaces: bool, axes: GridAxes
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(faces (M,) that can touch a pixel, then their column range [x_lo, x_hi) and row range
    [y_lo, y_hi)), long."""
    (x0, y0, z0), (x1, y1, z1), (x2, y2, z2) = (fv[:, i].unbind(1) for i in range(3))
    # ComputeFaceAreas: EdgeFunctionForward(v0, v1, v2), compared with a double epsilon.
    area = ((x0 - x1) * (y2 - y1) - (y0 - y1) * (x2 - x1)).double()
    ok = (area > _EPS) | (area < -_EPS)
    if cull_backfaces:
        ok &= area >= 0.0
    # min/max as element-wise chains (reductions over 3 are slow); faces reaching behind the camera
    ok &= torch.minimum(torch.minimum(z0, z1), z2).double() >= _EPS
    radius = torch.tensor(blur_radius, dtype=torch.float32).sqrt().to(fv.dtype).to(fv.device)
    xmin = torch.minimum(torch.minimum(x0, x1), x2).sub_(radius)
    xmax = torch.maximum(torch.maximum(x0, x1), x2).add_(radius)
    ymin = torch.minimum(torch.minimum(y0, y1), y2).sub_(radius)
    ymax = torch.maximum(torch.maximum(y0, y1), y2).add_(radius)
    # centres decrease with the index: x_lo counts the centres > xmax, x_hi those >= xmin
    x_lo, x_hi = _count_above(axes.x, xmax, strict=True), _count_above(axes.x, xmin, strict=False)
    y_lo, y_hi = _count_above(axes.y, ymax, strict=True), _count_above(axes.y, ymin, strict=False)
    ok &= (x_hi > x_lo) & (y_hi > y_lo)
    faces = ok.nonzero().squeeze(1)
    return faces, *(t.index_select(0, faces).long() for t in (x_lo, x_hi, y_lo, y_hi))  # type: ignore[return-value]


def _count_above(axis: tuple[torch.Tensor, torch.Tensor, int], v: torch.Tensor, strict: bool) -> torch.Tensor:
    """How many of an axis' centres are ``> v`` (``>= v`` if not ``strict``), as floats, exactly
    as a search of the float centres counts: estimated from the spacing, then corrected once
    each way against the neighbouring centres (the formula of ``GridAxes.centres``)."""
    rng, offset, size = axis
    # flipped index k = size - 1 - i: centre(k) increases with k; ``below`` counts the
    # centres <= v (strict) or < v (not strict)
    below = (v + offset).mul_(size).sub_(offset).div_(rng).floor_().add_(1.0).clamp_(0.0, size)
    last = GridAxes.centres(axis, below - 1.0).sub_(v)  # the last centre counted, minus v: must be <= 0 (< 0)
    below -= positive(last) if strict else nonnegative(last)
    below.clamp_(0.0, size)
    first = torch.rsub(GridAxes.centres(axis, below.clone()), v)  # v minus the first centre not counted: < 0 (<= 0)
    below += nonnegative(first) if strict else positive(first)
    return below.clamp_(0.0, size).neg_().add_(size)


def _plan_chunks(counts: torch.Tensor) -> list[tuple[int, int, int]]:
    """(start, stop, width) grids of faces sorted by box size: at most about ``_CHUNK_PAIRS``
    cells each, boxes within a factor ``_MAX_SPREAD`` (bounded padding)."""
    values, sizes = torch.unique_consecutive(counts, return_counts=True)
    plan: list[tuple[int, int, int]] = []
    start = n_open = first = last = 0
    for c, n in zip(values.tolist(), sizes.tolist(), strict=True):
        while n > 0:
            if n_open and (c > _MAX_SPREAD * first or (n_open + 1) * c > _CHUNK_PAIRS):
                plan.append((start, start + n_open, last))
                start, n_open = start + n_open, 0
            if n_open == 0:
                first = c
            take = min(n, max(_CHUNK_PAIRS // c - n_open, 1))
            n_open, n, last = n_open + take, n - take, c
    if n_open:
        plan.append((start, start + n_open, last))
    return plan


class _PairBuffer:
    """Growing storage of kept pairs: (R, cap) float rows, (2, cap) long pixel and face ids.

    When full it drops the pairs not among their pixel's K nearest so far, then grows. It
    allocates ``reserve_rows`` (>= R) rows and uses R: untouched rows cost no memory on a
    CPU, and a smaller block would lower glibc's heap-trim threshold below the render's
    transient memory (a refilled heap every render).
    """

    def __init__(
        self, num_rows: int, cap: int, z_row: int, k: int, dtype: torch.dtype, device: torch.device,
        reserve_rows: int = 0,
    ):
        self.z_row, self.k, self.size = z_row, k, 0
        self.reserve_rows = max(num_rows, reserve_rows)
        # written before read: ``append`` fills every stored pair's rows
        self.rows = torch.empty(self.reserve_rows, cap, dtype=dtype, device=device)[:num_rows]
        self.ids = torch.empty(2, cap, dtype=torch.long, device=device)  # pixel, face

    def append(self, rows: list[torch.Tensor], idx: torch.Tensor, local: torch.Tensor,
               face_ids: torch.Tensor, base: torch.Tensor) -> None:
        """Append cells ``idx`` (flat, into each (m, w) row; row 0 is the pixel offset) of the
        faces ``local`` (into ``face_ids`` and ``base``, their first-pixel indices)."""
        n = idx.shape[0]
        self.ensure(n)
        s = self.size
        for r, row in enumerate(rows[1:]):
            torch.index_select(row.view(-1), 0, idx, out=self.rows[r, s : s + n])
        torch.index_select(face_ids, 0, local, out=self.ids[1, s : s + n])
        pix = self.ids[0, s : s + n]
        torch.index_select(base, 0, local, out=pix)
        pix += rows[0].view(-1).index_select(0, idx).long()
        self.size = s + n

    def ensure(self, need: int) -> None:
        """Make room for ``need`` more pairs (trimming to the K nearest, then growing)."""
        cap, s = self.ids.shape[1], self.size
        if s + need <= cap:
            return
        drop = k_nearest_drop(self.ids[0, :s], self.rows[self.z_row, :s], self.ids[1, :s], self.k)
        idx = None if drop is None else complement(drop, s)
        kept = s if idx is None else idx.shape[0]
        old_rows, old_ids = self.rows, self.ids
        # amortised: after a trim the capacity leaves room for at least as many new pairs
        self.__init__(
            old_rows.shape[0], max(cap, 2 * kept + need), self.z_row, self.k, old_rows.dtype, old_rows.device,
            self.reserve_rows,
        )
        for new, old in ((self.rows, old_rows), (self.ids, old_ids)):
            if idx is None:
                new[:, :kept] = old[:, :kept]
            else:
                _gather_columns(old, idx, out=new[:, :kept])
        self.size = kept

    def nearest(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(rows (R, P), ids (2, P)): the stored pairs among their pixel's K nearest."""
        s = self.size
        rows, ids = self.rows[:, :s], self.ids[:, :s]
        drop = k_nearest_drop(ids[0], rows[self.z_row], ids[1], self.k)
        if drop is None:
            return rows, ids
        if drop.shape[0] <= _FEW_DROPS:  # shift the pairs on the shorter side of the few dropped ones
            bounds = drop.tolist()
            lo, hi = _shift_out(self.rows, bounds, s)
            _shift_out(self.ids, bounds, s)
            return self.rows[:, lo:hi], self.ids[:, lo:hi]
        idx = complement(drop, s)
        return _gather_columns(rows, idx), _gather_columns(ids, idx)


def _gather_columns(t: torch.Tensor, idx: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``t[:, idx]`` (into ``out``) by 1-D gathers into contiguous rows (``index_select`` on dim
    1 copies the view)."""
    if out is None:
        out = torch.empty(t.shape[0], idx.shape[0], dtype=t.dtype, device=t.device)  # every row gathered
    for r in range(t.shape[0]):
        torch.index_select(t[r], 0, idx, out=out[r])
    return out


def _shift_out(t: torch.Tensor, drop: list[int], size: int) -> tuple[int, int]:
    """Remove columns ``drop`` (ascending) of ``t[:, :size]`` in place, in order; returns the
    range (lo, hi) now holding the others. The shorter side moves, a block at a time through
    a small temporary (copies between overlapping views are not allowed)."""
    if size - drop[0] <= drop[-1]:  # shift the tail left, block by block from the left
        bounds, dst = [*drop, size], drop[0]
        for a, b in pairwise(bounds):
            for lo in range(a + 1, b, _SHIFT_BLOCK):
                hi = min(lo + _SHIFT_BLOCK, b)
                t[:, dst : dst + hi - lo] = t[:, lo:hi].clone()
                dst += hi - lo
        return 0, dst
    bounds, end = [-1, *drop], drop[-1] + 1  # shift the head right, block by block from the right
    for a, b in reversed(list(pairwise(bounds))):
        for hi in range(b, a + 1, -_SHIFT_BLOCK):
            lo = max(hi - _SHIFT_BLOCK, a + 1)
            t[:, end - (hi - lo) : end] = t[:, lo:hi].clone()
            end -= hi - lo
    return end, size


def select_pairs(
    face_verts: torch.Tensor,
    face_to_mesh: torch.Tensor,
    image_size: tuple[int, int],
    blur_radius: float,
    faces_per_pixel: int,
    perspective_correct: bool,
    clip_barycentric_coords: bool,
    cull_backfaces: bool,
    need_grad: bool = True,
    need_bary: bool = True,
) -> PairGeometry:
    """The K nearest faces of every pixel as sparse pairs, for (F, 3, 3) ``face_verts`` (NDC
    x, y, view z) and (F,) ``face_to_mesh``; options as ``RasterOptions``. ``need_grad``
    keeps what the backward reads, ``need_bary`` the barycentrics (see :class:`PairGeometry`).
    """
    fv = face_verts.detach()
    height, width = image_size
    dtype, device = fv.dtype, fv.device
    axes = GridAxes(height, width, dtype, device)
    faces, x_lo, x_hi, y_lo, y_hi = _face_filter(fv, blur_radius, cull_backfaces, axes)
    nx, ny = x_hi - x_lo, y_hi - y_lo
    counts, order = torch.sort(nx * ny, stable=True)  # grids of faces with similar boxes
    faces, x_lo, y_lo, nx, ny = faces[order], x_lo[order], y_lo[order], nx[order], ny[order]
    table = face_table(fv.index_select(0, faces), x_lo, y_lo, nx, ny, axes)
    base = (face_to_mesh[faces] * height + y_lo) * width + x_lo
    plan = _plan_chunks(counts)
    stops = torch.tensor([b for _, b, _ in plan], dtype=torch.long, device=device) - 1
    cum_deg = FaceRows(*table).deg.cumsum(0).index_select(0, stops).tolist()
    layout = RowLayout(perspective_correct, clip_barycentric_coords, need_grad, need_bary)
    cap = min(int(counts.sum()), max([_TRIM_PAIRS, *(w * (b - a) for a, b, w in plan)]))
    # as if all rows were stored, on the CPU only (a device allocator would hold them)
    reserve = RowLayout(perspective_correct, clip_barycentric_coords, need_grad).count if device.type == "cpu" else 0
    buf = _PairBuffer(layout.count, cap, 0, faces_per_pixel, dtype, device, reserve)
    prev_deg = 0.0
    for (a, b, w), deg in zip(plan, cum_deg, strict=True):
        keep, rows = eval_grid(table[:, a:b], w, axes, blur_radius, layout, deg > prev_deg)
        prev_deg = deg
        nz = keep.nonzero()  # face-major, so that each face's pairs are contiguous
        local = nz[:, 0]
        buf.append(rows, (local * w).add_(nz[:, 1]), local, faces[a:b], base[a:b])
    data, (pix, face) = buf.nearest()
    grad_bary, bary = layout.grad_bary, layout.bary
    bary_rows = None if bary is None else data[bary : bary + 3]
    return PairGeometry(
        pix=pix, face=face, qx=data[2] if grad_bary else None, qy=data[3] if grad_bary else None,
        bary0=data[layout.bary0 : layout.bary0 + 3] if grad_bary else None,
        bary1=data[layout.bary1 : layout.bary1 + 3] if grad_bary else None,
        bary_rows=bary_rows, bary=None if bary_rows is None else bary_rows.t().contiguous(), zbuf=data[0],
        dists=data[1], edge=data[layout.edge] if need_grad else None,
        edge_t=data[layout.edge + 1] if need_grad else None,
        edge_r=data[layout.edge + 2 : layout.edge + 4] if need_grad else None,
    )
