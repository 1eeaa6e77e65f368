"""Per-candidate arithmetic of the pair rasterizer: one (faces, cells) grid of candidates at a time.

A grid holds ``w`` cells for each of ``m`` faces (face-major, so that the kept cells are
compacted in increasing memory order; per-face constants broadcast along the rows); cell
``j`` of face ``f`` is the pixel at row ``j // nx_f`` and column ``j % nx_f`` of the face's
box. Every value is computed with
PyTorch3D's CPU operations in its order so that float32 results are bit-identical: edge
functions first, then a division by the face's signed area plus 1e-8; barycentrics clipped
to [0, 1] and renormalised (sum clamped at 1e-5) when asked; depth from the clipped
barycentrics; inside/outside from the unclipped ones; squared distance to the nearest edge
in the order (0, 1), (0, 2), (1, 2).

The arithmetic avoids the slow kinds of CPU kernels: no ``torch.where``, no bool -> float
conversions (0/1 weights come from ``sign``), one comparison for the keep test, and no
per-candidate gathers in the grids (pixel centres come from the same float formula as
``ndc_pixel_centers``). ``pair_barycentrics`` recomputes the barycentrics of kept pairs
(deferred barycentrics) with per-pair gathers of the face constants, in the same order of
operations, so its values are the grids' bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

__all__ = ["FaceRows", "GridAxes", "RowLayout", "eval_grid", "face_table", "nonnegative", "pair_barycentrics", "positive"]

_EPS = 1e-8  # PyTorch3D's kEpsilon (a C++ double)


class FaceRows(NamedTuple):
    """The rows of the per-face table (T, M), (M,) each (or (m, 1) columns in a grid):
    vertex coordinates, signed area + eps, edge vectors, squared edge lengths, then the
    face's box (flipped first column and row, width, height) and whether an edge is
    degenerate, as floats."""

    x0: torch.Tensor
    y0: torch.Tensor
    z0: torch.Tensor
    x1: torch.Tensor
    y1: torch.Tensor
    z1: torch.Tensor
    x2: torch.Tensor
    y2: torch.Tensor
    z2: torch.Tensor
    area: torch.Tensor
    d21x: torch.Tensor
    d21y: torch.Tensor
    d02x: torch.Tensor
    d02y: torch.Tensor
    d10x: torch.Tensor
    d10y: torch.Tensor
    e02x: torch.Tensor
    e02y: torch.Tensor
    l01: torch.Tensor
    l02: torch.Tensor
    l12: torch.Tensor
    xb: torch.Tensor | None = None
    yb: torch.Tensor | None = None
    nx: torch.Tensor | None = None
    ny: torch.Tensor | None = None
    deg: torch.Tensor | None = None


@dataclass(frozen=True)
class RowLayout:
    """Which per-pair rows ``eval_grid`` returns, and where each starts.

    After the pixel offset row come ``zbuf`` (row 0 of the stored block) and ``dists`` (1);
    with gradients and barycentrics ``qx``, ``qy``, the screen-space barycentrics (3 rows)
    and, when perspective-corrected, the corrected ones (3); with gradients the nearest edge
    rows ``edge``, ``edge_t``, ``edge_rx``, ``edge_ry``; then the output barycentrics (3)
    when they are not a set above (clipped, or no gradients) and barycentrics are kept.

    Attributes:
        perspective_correct, clip: PyTorch3D's options.
        need_grad: keep the rows the backward pass reads.
        need_bary: keep the barycentric rows (without them: depth, distance, edge rows).
    """

    perspective_correct: bool
    clip: bool
    need_grad: bool
    need_bary: bool = True

    @property
    def grad_bary(self) -> bool:
        """Whether ``qx``, ``qy`` and the screen-space barycentrics are stored."""
        return self.need_grad and self.need_bary

    @property
    def out_bary(self) -> bool:
        """Whether the output barycentrics have rows of their own."""
        return self.need_bary and (self.clip or not self.need_grad)

    @property
    def bary0(self) -> int:
        """First of the screen-space barycentric rows (``qx``, ``qy`` are the two before)."""
        return 4

    @property
    def bary1(self) -> int:
        """First of the perspective-corrected rows (the screen-space ones when not corrected)."""
        return 7 if self.perspective_correct else 4

    @property
    def edge(self) -> int:
        """First of the four nearest-edge rows."""
        return 2 + (5 + 3 * self.perspective_correct if self.grad_bary else 0)

    @property
    def bary(self) -> int | None:
        """First of the output barycentric rows, None when they are not stored."""
        if self.out_bary:
            return self.edge + 4 * self.need_grad
        return self.bary1 if self.grad_bary else None

    @property
    def count(self) -> int:
        """Number of stored rows (without the pixel offset row)."""
        return self.edge + 4 * self.need_grad + 3 * self.out_bary


class GridAxes:
    """How pixel indices map to NDC pixel centres on both image axes (``ndc_pixel_centers``).

    Centre of pixel i along an axis of ``size`` pixels: ``(rng * (size - 1 - i) + offset) /
    size - offset`` with ``rng`` 2 (or ``2 * size / other`` on the longer side), ``offset =
    rng / 2``, all float32 tensor operations as in ``ndc_pixel_centers``.
    """

    def __init__(self, height: int, width: int, dtype: torch.dtype, device: torch.device) -> None:
        self.height, self.width = height, width
        self.x = self._axis(width, height, dtype, device)
        self.y = self._axis(height, width, dtype, device)

    @staticmethod
    def _axis(size: int, other: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, int]:
        """(rng, offset, size) of an axis of ``size`` pixels across ``other`` (0-dim tensors)."""
        rng = torch.tensor(2.0, dtype=dtype, device=device)
        if size > other:
            rng = (rng * size) / other
        return rng, rng / 2.0, size

    @staticmethod
    def centres(axis: tuple[torch.Tensor, torch.Tensor, int], flipped: torch.Tensor) -> torch.Tensor:
        """NDC centres of the pixels whose flipped index ``size - 1 - i`` is ``flipped`` (float)."""
        rng, offset, size = axis
        return flipped.mul_(rng).add_(offset).div_(size).sub_(offset)


def _face_constants(fv: torch.Tensor) -> list[torch.Tensor]:
    """The per-face rows of :class:`FaceRows` up to ``l12``, (M,) each."""
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
    """(T, M) per-face constants, the rows of :class:`FaceRows` (each row contiguous).

    Args:
        fv: (M, 3, 3) float face vertices (NDC x, y, view z).
        x_lo, y_lo: (M,) long first column and row of each face's box.
        nx, ny: (M,) long box width and height in pixels.
        axes: the image's pixel-centre mapping.
    """
    rows = _face_constants(fv)
    l01, l02, l12 = rows[-3:]
    degenerate = (torch.stack((l01, l02, l12)).double() <= _EPS).any(dim=0).to(fv.dtype)
    box = torch.stack(((axes.width - 1) - x_lo, (axes.height - 1) - y_lo, nx, ny)).to(fv.dtype)
    return torch.cat((torch.stack(rows), box, degenerate[None]))


def nonnegative(x: torch.Tensor) -> torch.Tensor:
    """1.0 where ``x >= 0`` (either zero), else 0.0, computed in place in ``x`` (finite ``x``;
    float arithmetic: bool -> float conversions are several times slower on a CPU)."""
    return x.sign_().add_(1.0).clamp_(max=1.0)


def positive(x: torch.Tensor) -> torch.Tensor:
    """1.0 where ``x > 0``, else 0.0, computed in place in ``x`` (finite ``x``)."""
    return x.sign_().clamp_(min=0.0)


def _edge(
    px: torch.Tensor, py: torch.Tensor, pax: torch.Tensor, pay: torch.Tensor, ax: torch.Tensor, ay: torch.Tensor,
    bx: torch.Tensor, by: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor, l2: torch.Tensor, degenerate: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Squared distance from pixel centres to segments (a, b), PyTorch3D's arithmetic.

    ``pax, pay`` are ``p - a``; ``dx, dy`` are ``b - a`` and ``l2 = dx * dx + dy * dy``.

    Returns:
        (dist, t, rx, ry): squared distance, clamped segment parameter, and nearest point
        minus pixel centre. A degenerate segment (length^2 <= 1e-8) measures to ``b``.
    """
    t = (dx * pax).add_(dy * pay).div_(l2).clamp_(0.0, 1.0)
    rx = (t * dx).add_(ax).sub_(px)  # (a + t d) - p, in that order
    ry = (t * dy).add_(ay).sub_(py)
    if degenerate:
        bad = l2.double() <= _EPS
        t = torch.where(bad, torch.ones_like(t), t)
        # the nearest point is b itself (b - p, not a + 1 * (b - a) - p)
        rx = torch.where(bad, bx - px, rx)
        ry = torch.where(bad, by - py, ry)
    return (rx * rx).add_(ry * ry), t, rx, ry


def eval_grid(
    tb: torch.Tensor,
    width: int,
    axes: GridAxes,
    blur_radius: float,
    layout: RowLayout,
    degenerate: bool,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Evaluate an (m, width) grid of candidates for the m faces whose constants are ``tb``.

    Args:
        tb: (T, m) per-face table (``face_table``) of the grid's faces.
        width: cells per face (at least the largest box ``nx * ny`` among them).
        axes: the image's pixel-centre mapping.
        blur_radius: squared NDC distance within which a face touches a pixel.
        layout: the options and the rows to return.
        degenerate: some face has an edge of squared length <= 1e-8.

    Returns:
        (keep (m, width) bool, rows): the pixel offset row, then the (m, width) float rows of ``layout``;
        ``pixoff`` is ``row * W + column`` of the pixel (exact integers), ``edge`` the
        nearest edge as 0.0, 1.0, 2.0 for (0, 1), (0, 2), (1, 2).
    """
    t = FaceRows._make(tb[:, :, None].unbind(0))  # (m, 1) columns
    x0, y0, z0, x1, y1, z1, x2, y2, z2 = t[:9]
    perspective_correct, clip, need_grad = layout.perspective_correct, layout.clip, layout.need_grad
    device, dtype = tb.device, tb.dtype
    j = torch.arange(width, dtype=dtype, device=device)[None, :]
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
    (px0, py0, px1, py1), b0, b1, b2 = _barycentrics(px, py, t, perspective_correct, clip)
    zbuf = (b2[0] * z0).add_(b2[1] * z1).add_(b2[2] * z2)
    # inside: all (unclipped) barycentrics > 0; kept: inside or dist < blur (and zbuf >= 0)
    min_b = torch.minimum(torch.minimum(b1[0], b1[1]), b1[2])
    # rows kept for the output (see ``RowLayout``); the others are released as soon as they
    # are used (fewer live temporaries: cache-friendlier, a smaller transient heap)
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
        # nearest edge, first minimum wins in the order (0, 1), (0, 2), (1, 2); per-edge values
        # picked by exact 0/1 weights
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


Bary = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def _barycentrics(
    px: torch.Tensor, py: torch.Tensor, t: FaceRows, perspective_correct: bool, clip: bool
) -> tuple[tuple[torch.Tensor, ...], Bary, Bary, Bary]:
    """PyTorch3D's barycentrics of pixel centres ``px, py`` in faces whose constants ``t``
    broadcast against them; the one implementation of this arithmetic.

    Returns:
        ((px - x0, py - y0, px - x1, py - y1), screen-space, perspective-corrected and
        output (clipped) barycentrics); a set equal to the one before is the same tensors.
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


def pair_barycentrics(
    fv: torch.Tensor, pix: torch.Tensor, face: torch.Tensor, image_size: tuple[int, int],
    perspective_correct: bool, clip: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The barycentric rows of given pairs, recomputed bit for bit as ``eval_grid`` computes them.

    Args:
        fv: (F, 3, 3) float packed face vertices (NDC x, y, view z), detached.
        pix: (P,) long global pixel index ``n * H * W + y * W + x`` of each pair.
        face: (P,) long packed face id of each pair.
        image_size: (H, W).
        perspective_correct, clip: PyTorch3D's options.

    Returns:
        (qx, qy, bary0, bary1, bary): (P,) pixel centre minus vertex 0, then (3, P)
        screen-space, perspective-corrected and output barycentrics (``bary1`` is ``bary0``
        when not corrected, ``bary`` is ``bary1`` when not clipped).
    """
    height, width = image_size
    dtype, device = fv.dtype, fv.device
    axes = GridAxes(height, width, dtype, device)
    local = torch.remainder(pix, height * width)
    row = torch.div(local, width, rounding_mode="floor")
    col = local - row * width
    # flipped indices W - 1 - x and H - 1 - y: the same exact floats the grids use
    px = GridAxes.centres(axes.x, col.neg_().add_(width - 1).to(dtype))
    py = GridAxes.centres(axes.y, row.neg_().add_(height - 1).to(dtype))
    # the constants _barycentrics reads, gathered per pair (the depths only when corrected)
    read = {"x0", "y0", "x1", "y1", "x2", "y2", "area", "d21x", "d21y", "d02x", "d02y", "d10x", "d10y"}
    read |= {"z0", "z1", "z2"} if perspective_correct else set()
    names = FaceRows._fields[:21]  # the constants _face_constants gives
    t = FaceRows(*(c.index_select(0, face) if n in read else c for n, c in zip(names, _face_constants(fv), strict=True)))
    (qx, qy, _, _), b0, b1, b2 = _barycentrics(px, py, t, perspective_correct, clip)
    bary0 = torch.stack(b0)
    bary1 = torch.stack(b1) if perspective_correct else bary0
    return qx, qy, bary0, bary1, torch.stack(b2) if clip else bary1
