"""The rasterizer's autograd function: sparse (pixel, face) pairs with a hand-written backward.

The forward selects the pairs without autograd (``kernel.select_pairs``) and returns each
pair's barycentrics (None when deferred), depth and signed distance. Screen-space
barycentrics are affine in the pixel position, so the backward needs only per-face sums of
per-pair channels (``G``, ``G * qx``, ``G * qy``; six distance and three depth channels).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..fragments import csr_matrix, first_order_only
from .kernel import FaceRows, GridAxes, barycentrics, face_constants, nonnegative, select_pairs

if TYPE_CHECKING:
    from .rasterizer import RasterOptions

__all__ = ["pair_barycentrics", "pair_barycentrics_of", "rasterize_pairs"]

_EPS = 1e-8
_BACKWARD_CHUNK = 1 << 18  # pairs per block of gradient channels: bounds the (P,) temporaries


def _clip_backward(bary1: list[torch.Tensor], grad: list[torch.Tensor]) -> list[torch.Tensor]:
    """Gradient through ``c = max(b, 0); bary = c / max(sum(c), 1e-5)``, on (P,) component rows."""
    c = [b.clamp(min=0.0) for b in bary1]
    s = c[0] + c[1] + c[2]
    unclamped = nonnegative(s - 1e-5)  # s >= 1e-5
    s = s.clamp_(min=1e-5)
    # d bary_j / d c_i = delta_ij / s - c_j / s^2 (the second term only if the sum is not clamped)
    dot = (grad[0] * c[0]).addcmul_(grad[1], c[1]).addcmul_(grad[2], c[2]).div_(s * s).mul_(unclamped)
    return [(g / s).sub_(dot).mul_(nonnegative(b.clone())) for g, b in zip(grad, bary1, strict=True)]


def _perspective_backward(
    bary0: torch.Tensor, z: torch.Tensor, grad: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient through ``w_i = b_i * prod_{j != i} z_j / sum_k (b_k * prod_{j != k} z_j)``."""
    z0, z1, z2 = z.unbind(1)
    zz = torch.stack((z1 * z2, z0 * z2, z0 * z1), dim=1)
    top = bary0 * zz
    denom = top.sum(dim=1, keepdim=True)
    g_top = (grad - (grad * top).sum(dim=1, keepdim=True) / denom) / denom
    g_bary0 = g_top * zz
    gb = g_top * bary0  # gradient w.r.t. each product zz_i
    g_z = torch.stack(
        (gb[:, 1] * z2 + gb[:, 2] * z1, gb[:, 0] * z2 + gb[:, 2] * z0, gb[:, 0] * z1 + gb[:, 1] * z0), dim=1
    )
    return g_bary0, g_z


class _RunSums:
    """Per-face sums of (P,) rows into C columns, each by one CSR (runs x pairs) mat-vec (a
    face's pairs are one run), taken as soon as the row is made (few live (P,) temporaries)."""

    def __init__(self, face: torch.Tensor, num_faces: int, columns: int, dtype: torch.dtype):
        self.runs, counts = torch.unique_consecutive(face, return_counts=True)  # cheaper than a bincount
        crow = torch.cat((counts.new_zeros(1), counts.cumsum(0)))
        ones = torch.ones(face.shape[0], dtype=dtype, device=face.device)
        cols = torch.arange(face.shape[0], device=face.device)
        self.matrix = csr_matrix(crow, cols, ones, (self.runs.shape[0], face.shape[0]))
        self.num_faces = num_faces
        self.sums = torch.zeros(columns, self.runs.shape[0], dtype=dtype, device=face.device)

    def add(self, column: int, row: torch.Tensor) -> None:
        """Sum ``row`` (P,) per face into ``column``."""
        torch.mv(self.matrix, row, out=self.sums[column])

    def per_face(self) -> torch.Tensor:
        """(F, C) sums (a transposed view of (C, F) storage), zero for faces without pairs."""
        out = self.sums.new_zeros(self.sums.shape[0], self.num_faces)
        return out.index_copy_(1, self.runs, self.sums).t()


def _barycentric_vertex_grad(fv: torch.Tensor, sg: torch.Tensor, sgx: torch.Tensor, sgy: torch.Tensor) -> torch.Tensor:
    """(F, 3, 2) gradient w.r.t. face (x, y) of ``sum_pairs sum_i G_i * bary0_i``, from per-face sums.

    ``bary0_i = e_i(p) / (area + 1e-8)`` with e_i affine in the pixel p, so the pair sum is
    ``E = sum_i term_i / area``, ``term_i = A_i (yb - ya) - B_i (xb - xa)``,
    ``A_i = (x0' - xa) sum G_i + sum G_i qx``, ``B_i = (y0' - ya) sum G_i + sum G_i qy`` over
    the edges (a, b) = (1, 2), (2, 0), (0, 1) (``x0', y0'`` fixed: ``qx, qy`` are measured
    from it); its gradient in closed form is the exact pair-summed gradient.
    """
    x = fv[..., 0].detach().t()  # (3, F) rows
    y = fv[..., 1].detach().t()
    area = (x[2] - x[0]) * (y[1] - y[0]) - (y[2] - y[0]) * (x[1] - x[0]) + _EPS
    gx = torch.zeros_like(x)
    gy = torch.zeros_like(y)
    total = torch.zeros_like(area)
    for i, (a, b) in enumerate(((1, 2), (2, 0), (0, 1))):
        s, sx, sy = sg[:, i], sgx[:, i], sgy[:, i]
        dx, dy = x[b] - x[a], y[b] - y[a]
        big_a = (x[0] - x[a]) * s + sx
        big_b = (y[0] - y[a]) * s + sy
        total += big_a * dy - big_b * dx
        # d term / d(xa, xb, ya, yb) = (-s dy + B, -B, -A + s dx, A)
        gx[a] += big_b - s * dy
        gx[b] -= big_b
        gy[a] += s * dx - big_a
        gy[b] += big_a
    energy = total / area
    # d area / d(x0, x1, x2) = (y2 - y1, y0 - y2, y1 - y0); d / d(y0, y1, y2) = (x1 - x2, x2 - x0, x0 - x1)
    gx -= energy * torch.stack((y[2] - y[1], y[0] - y[2], y[1] - y[0]))
    gy -= energy * torch.stack((x[1] - x[2], x[2] - x[0], x[0] - x[1]))
    return torch.stack((gx / area, gy / area), dim=-1).transpose(0, 1)


Opt = torch.Tensor | None


def _pair_channel_sums(
    fv: torch.Tensor, num_faces: int, clip: bool, perspective_correct: bool, face: torch.Tensor, qx: Opt,
    qy: Opt, bary0: Opt, bary1: Opt, bary: Opt, dists: Opt, edge: Opt, edge_t: Opt, edge_r: Opt,
    grad_bary: Opt, grad_zbuf: Opt, grad_dists: Opt,
) -> torch.Tensor:
    """Per-face sums (F, C) of the per-pair gradient channels, each present only when its
    upstream gradient is: G, G * qx, G * qy (3 each; G the gradient w.r.t. the screen-space
    barycentrics, from bary_coords and zbuf), the distance gradient w.r.t. each vertex's x, y
    (6), the gradient w.r.t. each vertex's z (3). ``bary0``, ``bary1``, ``bary`` are (3, P)
    and ``edge_r`` (2, P) rows: each channel is a contiguous (P,) row ((P, 3) work with
    (P, 1) broadcasts is several times slower on a CPU), summed as soon as it is made.
    """
    bary_channels = grad_bary is not None or grad_zbuf is not None  # None: the output was not used
    columns = (12 if bary_channels else 0) + (6 if grad_dists is not None else 0)
    sums = _RunSums(face, num_faces, columns, fv.dtype)
    if bary_channels:
        assert qx is not None and qy is not None and bary0 is not None and bary1 is not None and bary is not None
        b1, b2 = bary1.unbind(0), bary.unbind(0)  # (3, P) -> contiguous rows
        z_col = columns - 3
        # (P, 3) columns as strided views: the first op on each writes a contiguous row
        g = list(grad_bary.unbind(1)) if grad_bary is not None else [torch.zeros_like(qx) for _ in range(3)]
        g_z: list[torch.Tensor] = []
        if grad_zbuf is not None:
            z = [col.index_select(0, face) for col in fv[:, :, 2].t().contiguous().unbind(0)]
            g = [zi.mul_(grad_zbuf).add_(gi) for gi, zi in zip(g, z, strict=True)]  # zbuf = bary . z
            if perspective_correct:
                g_z = [grad_zbuf * bi for bi in b2]
            else:
                for i, bi in enumerate(b2):
                    sums.add(z_col + i, grad_zbuf * bi)
        else:
            g = [gi.contiguous() for gi in g]
        if clip:
            g = _clip_backward(list(b1), g)
        if perspective_correct:
            z = fv[:, :, 2].index_select(0, face)
            g_b0, g_zp = _perspective_backward(bary0.t(), z, torch.stack(g, dim=1))
            g = list(g_b0.t().contiguous().unbind(0))
            g_zp_rows = g_zp.t().contiguous().unbind(0)
            for i in range(3):
                sums.add(z_col + i, g_zp_rows[i].add_(g_z[i]) if g_z else g_zp_rows[i])
        for i, gi in enumerate(g):
            sums.add(i, gi)
        tmp = torch.empty_like(qx)  # every element written by each mul below
        for i, gi in enumerate(g):
            sums.add(3 + i, torch.mul(gi, qx, out=tmp))
            sums.add(6 + i, torch.mul(gi, qy, out=tmp))
    if grad_dists is not None:
        assert dists is not None and edge is not None and edge_t is not None and edge_r is not None
        col = 9 if bary_channels else 0
        # distance: d(|r|^2)/d(a) = 2 (1 - t) r, d/d(b) = 2 t r, signed like the output
        gd = torch.copysign(torch.full_like(dists, 2.0), dists).mul_(grad_dists)
        on0, on2 = torch.rsub(edge, 1.0).clamp_(min=0.0), (edge - 1.0).clamp_(min=0.0)  # edge is 0., 1. or 2.
        off0, off2 = torch.rsub(on0, 1.0), torch.rsub(on2, 1.0)
        # edge 0 = (v0, v1), 1 = (v0, v2), 2 = (v1, v2): v0 takes ua on edges 0 and 1, v1
        # takes ub on edge 0 and ua on edge 2, v2 takes ub on edges 1 and 2
        tmp = torch.empty_like(dists)  # every element written by each mul below
        for xy, r in enumerate(edge_r.unbind(0)):
            ua = gd * r
            ub = edge_t * ua
            ua.sub_(ub)
            sums.add(col + xy, torch.mul(ua, off2, out=tmp))
            sums.add(col + 2 + xy, torch.mul(ub, on0, out=tmp).addcmul_(ua, on2))
            sums.add(col + 4 + xy, ub.mul_(off0))
    return sums.per_face()


def _face_verts_grad(
    fv: torch.Tensor, clip: bool, perspective_correct: bool, saved: tuple[torch.Tensor | None, ...],
    grads: tuple[torch.Tensor | None, ...],
) -> torch.Tensor:
    """(F, 3, 3) gradient w.r.t. the face vertices, from the per-face channel sums of
    :func:`_pair_channel_sums` taken over blocks of pairs (bounded (chunk, P) temporaries);
    ``saved`` its per-pair rows (``face`` first), ``grads`` (bary, zbuf, dists)."""
    grad_fv = torch.zeros_like(fv)
    total = saved[0].shape[0]  # type: ignore[union-attr]
    if total == 0 or all(t is None for t in grads):
        return grad_fv
    sums: torch.Tensor | None = None
    for lo in range(0, total, _BACKWARD_CHUNK):
        part = [None if t is None else t[..., lo : lo + _BACKWARD_CHUNK] for t in saved]  # P is the last dim
        part += [None if t is None else t[lo : lo + _BACKWARD_CHUNK] for t in grads]
        block = _pair_channel_sums(fv, fv.shape[0], clip, perspective_correct, *part)
        sums = block if sums is None else sums + block
    assert sums is not None  # total > 0
    bary_channels, col = grads[0] is not None or grads[1] is not None, 0
    if bary_channels:
        grad_fv[..., :2] = _barycentric_vertex_grad(fv, sums[:, 0:3], sums[:, 3:6], sums[:, 6:9])
        col = 9
    if grads[2] is not None:
        grad_fv[..., :2] += sums[:, col : col + 6].reshape(fv.shape[0], 3, 2)
        col += 6
    if bary_channels:
        grad_fv[..., 2] = sums[:, col : col + 3]
    return grad_fv


class _RasterizePairs(torch.autograd.Function):
    """Pairs forward; backward to the packed face vertices from per-face sums of per-pair terms."""

    # With ``options.defer_barycentrics`` the barycentrics are not returned (None) and their
    # gradient rows are not stored: a depth gradient then recomputes them (``pair_barycentrics``).

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        face_verts: torch.Tensor,
        face_to_mesh: torch.Tensor,
        options: RasterOptions,
    ) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        need_bary = not options.defer_barycentrics
        g = select_pairs(
            face_verts, face_to_mesh, options.image_size, options.blur_radius, options.faces_per_pixel,
            options.perspective_correct, options.clip_barycentric_coords, options.cull_backfaces,
            need_grad=bool(ctx.needs_input_grad[0]), need_bary=need_bary,
        )
        ctx.perspective_correct = options.perspective_correct
        ctx.clip = options.clip_barycentric_coords
        ctx.image_size = options.image_size
        ctx.save_for_backward(
            face_verts, g.face, g.qx, g.qy, g.bary0, g.bary1, g.bary_rows, g.dists, g.edge, g.edge_t,
            g.edge_r, None if need_bary else g.pix,
        )
        ctx.mark_non_differentiable(g.pix, g.face)
        ctx.set_materialize_grads(False)  # unused outputs get None: their channels are skipped
        return g.bary, g.zbuf, g.dists, g.pix, g.face

    @staticmethod
    @first_order_only
    def backward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        grad_bary: torch.Tensor | None,
        grad_zbuf: torch.Tensor | None,
        grad_dists: torch.Tensor | None,
        _grad_pix: torch.Tensor | None,
        _grad_face: torch.Tensor | None,
    ) -> tuple[torch.Tensor | None, ...]:
        fv, face, qx, qy, bary0, bary1, bary, dists, edge, edge_t, edge_r, pix = ctx.saved_tensors
        grads = (grad_bary, grad_zbuf, grad_dists)
        if (grad_bary is not None or grad_zbuf is not None) and qx is None and face.shape[0]:
            # not stored (need_bary False): recompute them
            qx, qy, bary0, bary1, bary = pair_barycentrics(
                fv.detach(), pix, face, ctx.image_size, ctx.perspective_correct, ctx.clip
            )
        saved = (face, qx, qy, bary0, bary1, bary, dists, edge, edge_t, edge_r)
        return _face_verts_grad(fv, ctx.clip, ctx.perspective_correct, saved, grads), None, None


def pair_barycentrics(
    fv: torch.Tensor, pix: torch.Tensor, face: torch.Tensor, image_size: tuple[int, int],
    perspective_correct: bool, clip: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The barycentric rows of pairs (pix (P,), face (P,)), bit for bit as :func:`eval_grid`.

    Returns:
        (qx, qy (P,), bary0, bary1, bary (3, P)): pixel centre minus vertex 0, screen-space,
        perspective-corrected (``bary0`` if not) and output (``bary1`` if not clipped).
    """
    height, width = image_size
    axes = GridAxes(height, width, fv.dtype, fv.device)
    local = torch.remainder(pix, height * width)
    row = torch.div(local, width, rounding_mode="floor")
    col = local - row * width
    # flipped indices W - 1 - x and H - 1 - y: the same exact floats the grids use
    px = GridAxes.centres(axes.x, col.neg_().add_(width - 1).to(fv.dtype))
    py = GridAxes.centres(axes.y, row.neg_().add_(height - 1).to(fv.dtype))
    t = FaceRows(*(c.index_select(0, face) for c in face_constants(fv)))  # per pair
    (qx, qy, _, _), b0, b1, b2 = barycentrics(px, py, t, perspective_correct, clip)
    bary0 = torch.stack(b0)
    bary1 = torch.stack(b1) if perspective_correct else bary0
    return qx, qy, bary0, bary1, torch.stack(b2) if clip else bary1


class _PairBarycentrics(torch.autograd.Function):
    """(P, 3) barycentrics of given pairs, recomputed exactly, with the rasterizer's backward."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        face_verts: torch.Tensor,
        pix: torch.Tensor,
        face: torch.Tensor,
        image_size: tuple[int, int],
        perspective_correct: bool,
        clip: bool,
    ) -> torch.Tensor:
        qx, qy, bary0, bary1, bary = pair_barycentrics(
            face_verts.detach(), pix, face, image_size, perspective_correct, clip
        )
        ctx.perspective_correct, ctx.clip = perspective_correct, clip
        ctx.save_for_backward(face_verts, face, qx, qy, bary0, bary1, bary)
        return bary.t().contiguous()

    @staticmethod
    @first_order_only
    def backward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
    ) -> tuple[torch.Tensor | None, ...]:
        fv, face, qx, qy, bary0, bary1, bary = ctx.saved_tensors
        saved = (face, qx, qy, bary0, bary1, bary, None, None, None, None)
        return _face_verts_grad(fv, ctx.clip, ctx.perspective_correct, saved, (grad, None, None)), *(None,) * 5


def pair_barycentrics_of(
    face_verts: torch.Tensor, pix: torch.Tensor, face: torch.Tensor, image_size: tuple[int, int],
    perspective_correct: bool, clip_barycentric_coords: bool,
) -> torch.Tensor:
    """(P, 3) barycentrics of the pairs (pix, face) that :func:`rasterize_pairs` returned with
    ``defer_barycentrics``: the values it would have returned, differentiable w.r.t. ``face_verts``.
    """
    return _PairBarycentrics.apply(face_verts, pix, face, image_size, perspective_correct, clip_barycentric_coords)


def rasterize_pairs(
    face_verts: torch.Tensor, face_to_mesh: torch.Tensor, options: RasterOptions
) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rasterize (F, 3, 3) packed faces (NDC x, y, view z; ``face_to_mesh`` (F,)) to pairs.

    Returns:
        (bary (P, 3) or None when ``options.defer_barycentrics``, zbuf (P,), dists (P,),
        pix (P,) ``n * H * W + y * W + x``, face (P,)), each face's pairs contiguous;
        differentiable w.r.t. ``face_verts`` (``z_clip_value`` is not read here).
    """
    return _RasterizePairs.apply(face_verts, face_to_mesh, options)
