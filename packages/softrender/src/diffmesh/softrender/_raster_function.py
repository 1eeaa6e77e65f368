"""The rasterizer's autograd function: sparse (pixel, face) pairs with a hand-written backward.

The forward pass selects the pairs without autograd (``_raster_pairs.select_pairs``) and
returns, for each kept pair, the differentiable barycentrics, depth and signed distance.
The backward pass needs only per-face sums of per-pair terms: screen-space barycentrics are
affine in the pixel position, so the gradient of ``sum_pairs G . bary0`` with respect to a
face's vertices follows from the per-face sums of ``G``, ``G * qx`` and ``G * qy``
(``q`` = pixel centre minus vertex 0). The distance and depth terms add six and three more
channels. The sums are one CSR sparse (faces x pairs) @ (pairs x 18) product.
"""

from __future__ import annotations

import warnings

import torch

from ._raster_pairs import PairGeometry, select_pairs

__all__ = ["rasterize_pairs"]

_EPS = 1e-8
_BACKWARD_CHUNK = 1 << 18  # pairs per block of gradient channels: bounds the (P, 18) temporaries


def _clip_backward(bary1: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """Gradient through ``c = max(b, 0); bary = c / max(sum(c), 1e-5)``."""
    c = bary1.clamp(min=0.0)
    s = c.sum(dim=1, keepdim=True)
    clipped_sum = s < 1e-5
    s = s.clamp(min=1e-5)
    # d bary_j / d c_i = delta_ij / s - c_j / s^2 (the second term only if the sum is not clamped)
    dot = (grad * c).sum(dim=1, keepdim=True) / (s * s)
    g = grad / s - torch.where(clipped_sum, torch.zeros_like(dot), dot)
    return torch.where(bary1 < 0, torch.zeros_like(g), g)


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


def _face_sums(face: torch.Tensor, values: torch.Tensor, num_faces: int) -> torch.Tensor:
    """Sum the rows of ``values`` (P, C) per face.

    Each face's pairs are contiguous, so the sums are one CSR (runs x pairs) @ (pairs x C)
    product over the runs of equal ``face``, then one small scatter of the runs to faces.
    """
    pairs = face.shape[0]
    starts = torch.ones(pairs, dtype=torch.bool, device=face.device)
    starts[1:] = face[1:] != face[:-1]
    starts = starts.nonzero().squeeze(1)
    crow = torch.cat((starts, starts.new_full((1,), pairs)))
    cols = torch.arange(pairs, device=face.device)
    ones = torch.ones(pairs, dtype=values.dtype, device=values.device)
    with warnings.catch_warnings():  # torch flags sparse CSR as beta on every construction
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        matrix = torch.sparse_csr_tensor(crow, cols, ones, size=(starts.shape[0], pairs), check_invariants=False)
    sums = matrix @ values
    return values.new_zeros(num_faces, values.shape[1]).index_add_(0, face[starts], sums)


def _barycentric_vertex_grad(fv: torch.Tensor, sg: torch.Tensor, sgx: torch.Tensor, sgy: torch.Tensor) -> torch.Tensor:
    """Gradient w.r.t. face (x, y) of ``sum_pairs sum_i G_i * bary0_i``, from per-face sums.

    ``bary0_i = e_i(p) / (area + 1e-8)`` with edge functions e_i affine in the pixel p, so the
    pair sum equals a per-face expression in ``sum G_i``, ``sum G_i qx``, ``sum G_i qy``;
    its gradient (by autograd on per-face tensors) is the exact pair-summed gradient.

    Returns:
        (F, 3, 2) gradient w.r.t. the vertices' NDC x and y.
    """
    with torch.enable_grad():
        xy = fv[..., :2].detach().requires_grad_(True)
        x, y = xy[..., 0], xy[..., 1]
        cx, cy = x[:, 0].detach(), y[:, 0].detach()
        x0, x1, x2 = x.unbind(1)
        y0, y1, y2 = y.unbind(1)
        area = (x2 - x0) * (y1 - y0) - (y2 - y0) * (x1 - x0) + _EPS
        total = torch.zeros_like(area)
        for i, (a, b) in enumerate(((1, 2), (2, 0), (0, 1))):
            xa, ya, xb, yb = x[:, a], y[:, a], x[:, b], y[:, b]
            total = total + ((cx - xa) * sg[:, i] + sgx[:, i]) * (yb - ya) - (
                (cy - ya) * sg[:, i] + sgy[:, i]
            ) * (xb - xa)
        (grad,) = torch.autograd.grad((total / area).sum(), xy)
    return grad


def _pair_channel_sums(
    fv: torch.Tensor,
    num_faces: int,
    clip: bool,
    perspective_correct: bool,
    face: torch.Tensor,
    qx: torch.Tensor,
    qy: torch.Tensor,
    bary0: torch.Tensor,
    bary1: torch.Tensor,
    bary: torch.Tensor,
    dists: torch.Tensor,
    edge: torch.Tensor,
    edge_t: torch.Tensor,
    edge_r: torch.Tensor,
    grad_bary: torch.Tensor | None,
    grad_zbuf: torch.Tensor | None,
    grad_dists: torch.Tensor | None,
) -> torch.Tensor:
    """Per-face sums (F, C) of the per-pair gradient channels of a run of pairs.

    Channels, each present only when its upstream gradient is not None: G (3), G * qx (3),
    G * qy (3) with G the gradient w.r.t. the screen-space barycentrics (from bary_coords
    and zbuf); the distance gradient w.r.t. each vertex's x, y (6); the gradient w.r.t.
    each vertex's z (3).
    """
    parts: list[torch.Tensor] = []
    if grad_bary is not None or grad_zbuf is not None:  # None: the output was not used
        z = fv[:, :, 2][face]  # (P, 3)
        g = grad_bary if grad_bary is not None else torch.zeros_like(bary)
        g_z = torch.zeros_like(bary)
        if grad_zbuf is not None:
            g = g + grad_zbuf[:, None] * z  # zbuf = bary . z
            g_z = grad_zbuf[:, None] * bary
        if clip:
            g = _clip_backward(bary1, g)
        if perspective_correct:
            g, g_zp = _perspective_backward(bary0, z, g)
            g_z = g_z + g_zp
        parts += [g, g * qx[:, None], g * qy[:, None]]
    else:
        g_z = None
    if grad_dists is not None:
        # distance: d(|r|^2)/d(a) = 2 (1 - t) r, d/d(b) = 2 t r, signed like the output
        gd = torch.where(torch.signbit(dists), -grad_dists, grad_dists) * 2.0
        u = gd[:, None] * edge_r
        ub = edge_t[:, None] * u
        ua = u - ub
        # edge 0 = (v0, v1), 1 = (v0, v2), 2 = (v1, v2): v0 takes ua on edges 0 and 1, v1
        # takes ub on edge 0 and ua on edge 2, v2 takes ub on edges 1 and 2
        on0 = (edge == 0).to(u.dtype)[:, None]
        on2 = (edge == 2).to(u.dtype)[:, None]
        parts += [ua * (1.0 - on2), ub * on0 + ua * on2, ub * (1.0 - on0)]
    if g_z is not None:
        parts.append(g_z)
    return _face_sums(face, torch.cat(parts, dim=1), num_faces)

class _RasterizePairs(torch.autograd.Function):
    """Pairs forward; hand-written backward to the packed face vertices."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        face_verts: torch.Tensor,
        face_to_mesh: torch.Tensor,
        image_size: tuple[int, int],
        blur_radius: float,
        faces_per_pixel: int,
        perspective_correct: bool,
        clip_barycentric_coords: bool,
        cull_backfaces: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        g: PairGeometry = select_pairs(
            face_verts,
            face_to_mesh,
            image_size,
            blur_radius,
            faces_per_pixel,
            perspective_correct,
            clip_barycentric_coords,
            cull_backfaces,
        )
        ctx.perspective_correct = perspective_correct
        ctx.clip = clip_barycentric_coords
        ctx.save_for_backward(
            face_verts, g.face, g.qx, g.qy, g.bary0, g.bary1, g.bary, g.dists, g.edge, g.edge_t, g.edge_r
        )
        ctx.mark_non_differentiable(g.pix, g.face)
        ctx.set_materialize_grads(False)  # unused outputs get None: their channels are skipped
        return g.bary, g.zbuf, g.dists, g.pix, g.face

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        grad_bary: torch.Tensor | None,
        grad_zbuf: torch.Tensor | None,
        grad_dists: torch.Tensor | None,
        _grad_pix: torch.Tensor | None,
        _grad_face: torch.Tensor | None,
    ) -> tuple[torch.Tensor | None, ...]:
        fv, face, qx, qy, bary0, bary1, bary, dists, edge, edge_t, edge_r = ctx.saved_tensors
        num_faces = fv.shape[0]
        grad_fv = torch.zeros_like(fv)
        grads = (grad_bary, grad_zbuf, grad_dists)
        if face.shape[0] == 0 or all(t is None for t in grads):
            return grad_fv, None, None, None, None, None, None, None
        saved = (face, qx, qy, bary0, bary1, bary, dists, edge, edge_t, edge_r)
        total = face.shape[0]
        sums: torch.Tensor | None = None
        for lo in range(0, total, _BACKWARD_CHUNK):  # bounded (chunk, channels) temporaries
            part = [t[lo : lo + _BACKWARD_CHUNK] for t in saved]
            part += [None if t is None else t[lo : lo + _BACKWARD_CHUNK] for t in grads]
            block = _pair_channel_sums(fv, num_faces, ctx.clip, ctx.perspective_correct, *part)
            sums = block if sums is None else sums + block
        if sums is None:  # no pairs
            return grad_fv, None, None, None, None, None, None, None
        col = 0
        if grad_bary is not None or grad_zbuf is not None:
            grad_fv[..., :2] = _barycentric_vertex_grad(fv, sums[:, 0:3], sums[:, 3:6], sums[:, 6:9])
            col = 9
        if grad_dists is not None:
            grad_fv[..., :2] += sums[:, col : col + 6].reshape(num_faces, 3, 2)
            col += 6
        if grad_bary is not None or grad_zbuf is not None:
            grad_fv[..., 2] = sums[:, col : col + 3]
        return grad_fv, None, None, None, None, None, None, None


def rasterize_pairs(
    face_verts: torch.Tensor,
    face_to_mesh: torch.Tensor,
    image_size: tuple[int, int],
    blur_radius: float,
    faces_per_pixel: int,
    perspective_correct: bool,
    clip_barycentric_coords: bool,
    cull_backfaces: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rasterize packed faces into sparse pairs (differentiable w.r.t. ``face_verts``).

    Args:
        face_verts: (F, 3, 3) float packed face vertices: NDC x, NDC y, view-space z.
        face_to_mesh: (F,) long mesh index of each face.
        image_size: (H, W) in pixels.
        blur_radius: squared NDC distance within which a face touches a pixel.
        faces_per_pixel: K, the most faces kept per pixel.
        perspective_correct: perspective-correct barycentrics.
        clip_barycentric_coords: clip barycentrics to [0, 1] and renormalise.
        cull_backfaces: drop clockwise (back-facing) faces.

    Returns:
        (bary (P, 3), zbuf (P,), dists (P,), pix (P,) long, face (P,) long), each face's
        pairs contiguous:
        ``pix = n * H * W + y * W + x`` is the pair's pixel, ``face`` its packed face id.
    """
    return _RasterizePairs.apply(
        face_verts,
        face_to_mesh,
        image_size,
        blur_radius,
        faces_per_pixel,
        perspective_correct,
        clip_barycentric_coords,
        cull_backfaces,
    )
