"""Candidate generation and K-nearest selection for the pair-based rasterizer (no autograd).

A *pair* is one (pixel, face) combination that the rasterizer keeps: the face covers the
pixel centre, or the pixel centre lies within ``blur_radius`` (squared NDC distance) of the
face. Pairs are produced face-major (ascending packed face id) and never as a dense
pixels x faces product: every face only visits the pixels inside its screen bounding box
grown by ``sqrt(blur_radius)``, in chunks of about ``_CHUNK_PAIRS`` candidates.

The arithmetic follows PyTorch3D's CPU rasterizer operation by operation so that float32
results are bit-identical: edge functions first, then a division by the face's signed area
plus 1e-8 (computed in float64 and rounded, as C++ does with a double epsilon); barycentrics
clipped to [0, 1] and renormalised (sum clamped at 1e-5) when asked; depth from the clipped
barycentrics; inside/outside from the unclipped ones; squared distance to the nearest edge
taken in the order (0, 1), (0, 2), (1, 2); ties in depth broken by face id.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["PairGeometry", "ndc_pixel_centers", "select_pairs"]

_EPS = 1e-8  # PyTorch3D's kEpsilon (a C++ double)
_CHUNK_PAIRS = 1 << 20  # candidates evaluated at once: bounds the temporaries


def ndc_pixel_centers(size: int, other: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """NDC coordinates of pixel centres along one image axis, as PyTorch3D computes them.

    Pixel 0 is at the positive end (+Y up for rows, +X left for columns). On a non-square
    image the longer side spans ``2 * size / other`` instead of 2.

    Args:
        size: number of pixels along this axis (H for rows, W for columns).
        other: number of pixels along the other axis.
        dtype: float dtype of the result.
        device: device of the result.

    Returns:
        (size,) NDC coordinate of each pixel centre, decreasing with the pixel index.
    """
    rng = torch.tensor(2.0, dtype=dtype, device=device)
    if size > other:
        rng = (rng * size) / other
    offset = rng / 2.0
    idx = torch.arange(size - 1, -1, -1, dtype=dtype, device=device)
    return (rng * idx + offset) / size - offset


@dataclass(frozen=True)
class PairGeometry:
    """Kept (pixel, face) pairs and what the forward and backward passes need about them.

    All tensors have P rows, in face-major order (ascending ``face``).

    Attributes:
        pix: (P,) long global pixel index ``n * H * W + y * W + x``.
        face: (P,) long packed face id.
        qx, qy: (P,) pixel centre minus the face's vertex 0 (NDC x and y).
        bary0: (P, 3) screen-space barycentrics (before perspective correction/clipping).
        bary1: (P, 3) perspective-corrected barycentrics (``bary0`` when not corrected).
        bary: (P, 3) the output barycentrics (``bary1`` clipped when clipping is on).
        zbuf: (P,) interpolated view-space depth.
        dists: (P,) signed squared NDC distance to the face's nearest edge (negative inside).
        edge: (P,) long index of the nearest edge: 0 = (v0, v1), 1 = (v0, v2), 2 = (v1, v2).
        edge_t: (P,) position of the nearest point on that edge (0 at its first vertex).
        edge_r: (P, 2) nearest point on the edge minus the pixel centre.
    """

    pix: torch.Tensor
    face: torch.Tensor
    qx: torch.Tensor
    qy: torch.Tensor
    bary0: torch.Tensor
    bary1: torch.Tensor
    bary: torch.Tensor
    zbuf: torch.Tensor
    dists: torch.Tensor
    edge: torch.Tensor
    edge_t: torch.Tensor
    edge_r: torch.Tensor


def _face_filter(
    fv: torch.Tensor, blur_radius: float, cull_backfaces: bool, xs: torch.Tensor, ys: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-face visibility test and pixel-index bounding box.

    Returns:
        faces (M,) long ids of the faces that can touch a pixel, and for each their
        column range [x_lo, x_hi) and row range [y_lo, y_hi) (long, image indices).
    """
    x, y, z = fv[..., 0], fv[..., 1], fv[..., 2]
    x0, x1, x2 = x.unbind(1)
    y0, y1, y2 = y.unbind(1)
    # ComputeFaceAreas: EdgeFunctionForward(v0, v1, v2), compared with a double epsilon.
    area = ((x0 - x1) * (y2 - y1) - (y0 - y1) * (x2 - x1)).double()
    ok = (area > _EPS) | (area < -_EPS)
    if cull_backfaces:
        ok &= area >= 0.0
    ok &= z.min(dim=1).values.double() >= _EPS  # faces reaching behind the camera are dropped
    radius = torch.tensor(blur_radius, dtype=torch.float32).sqrt().to(fv.dtype).to(fv.device)
    xmin = x.min(dim=1).values - radius
    xmax = x.max(dim=1).values + radius
    ymin = y.min(dim=1).values - radius
    ymax = y.max(dim=1).values + radius
    # xs/ys are decreasing with the pixel index; flip to search in ascending order.
    xs_up, ys_up = xs.flip(0), ys.flip(0)
    width, height = xs.shape[0], ys.shape[0]
    x_lo = width - torch.searchsorted(xs_up, xmax, side="right")
    x_hi = width - torch.searchsorted(xs_up, xmin, side="left")
    y_lo = height - torch.searchsorted(ys_up, ymax, side="right")
    y_hi = height - torch.searchsorted(ys_up, ymin, side="left")
    ok &= (x_hi > x_lo) & (y_hi > y_lo)
    faces = ok.nonzero().squeeze(1)
    return faces, x_lo[faces], x_hi[faces], y_lo[faces], y_hi[faces]


def _edge_distance(
    px: torch.Tensor, py: torch.Tensor, ax: torch.Tensor, ay: torch.Tensor, bx: torch.Tensor, by: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Squared distance from pixel centres to segments (a, b), PyTorch3D's arithmetic.

    Returns:
        (dist, t, rx, ry): squared distance, clamped segment parameter, and nearest point
        minus pixel centre. A degenerate segment (length^2 <= 1e-8) measures to ``b``.
    """
    dx = bx - ax
    dy = by - ay
    l2 = dx * dx + dy * dy
    degenerate = l2.double() <= _EPS
    t = (dx * (px - ax) + dy * (py - ay)) / l2
    t = t.clamp(0.0, 1.0)
    t = torch.where(degenerate, torch.ones_like(t), t)
    rx = (ax + t * dx) - px
    ry = (ay + t * dy) - py
    # For a degenerate edge the nearest point is b exactly (b - p, not a + 1 * (b - a) - p).
    rx = torch.where(degenerate, bx - px, rx)
    ry = torch.where(degenerate, by - py, ry)
    dist = rx * rx + ry * ry
    return dist, t, rx, ry


def _eval_candidates(
    fv: torch.Tensor,
    face: torch.Tensor,
    px: torch.Tensor,
    py: torch.Tensor,
    blur_radius: float,
    perspective_correct: bool,
    clip_barycentric_coords: bool,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Evaluate candidate pairs; return the keep mask and the per-pair values."""
    f = fv[face]  # (C, 3, 3)
    x0, y0, z0 = f[:, 0].unbind(1)
    x1, y1, z1 = f[:, 1].unbind(1)
    x2, y2, z2 = f[:, 2].unbind(1)
    # BarycentricCoordinatesForward: area = EdgeFunctionForward(v2, v0, v1) + kEpsilon.
    area = ((x2 - x0) * (y1 - y0) - (y2 - y0) * (x1 - x0)).double().add_(_EPS).to(fv.dtype)
    e0 = (px - x1) * (y2 - y1) - (py - y1) * (x2 - x1)
    e1 = (px - x2) * (y0 - y2) - (py - y2) * (x0 - x2)
    e2 = (px - x0) * (y1 - y0) - (py - y0) * (x1 - x0)
    bary0 = torch.stack((e0 / area, e1 / area, e2 / area), dim=1)
    if perspective_correct:
        w0 = bary0[:, 0] * z1 * z2
        w1 = bary0[:, 1] * z0 * z2
        w2 = bary0[:, 2] * z0 * z1
        denom = w0 + w1 + w2
        bary1 = torch.stack((w0 / denom, w1 / denom, w2 / denom), dim=1)
    else:
        bary1 = bary0
    if clip_barycentric_coords:
        c = bary1.clamp(min=0.0)
        s = (c[:, 0] + c[:, 1] + c[:, 2]).clamp(min=1e-5)
        bary = c / s[:, None]
    else:
        bary = bary1
    zbuf = bary[:, 0] * z0 + bary[:, 1] * z1 + bary[:, 2] * z2
    d01, t01, rx01, ry01 = _edge_distance(px, py, x0, y0, x1, y1)
    d02, t02, rx02, ry02 = _edge_distance(px, py, x0, y0, x2, y2)
    d12, t12, rx12, ry12 = _edge_distance(px, py, x1, y1, x2, y2)
    dist_all = torch.stack((d01, d02, d12), dim=1)
    dist, edge = dist_all.min(dim=1)  # first minimum wins: the order (0,1), (0,2), (1,2)
    inside = (bary1 > 0).all(dim=1)
    keep = (zbuf >= 0) & (inside | (dist < torch.tensor(blur_radius, dtype=torch.float32).item()))
    t_all = torch.stack((t01, t02, t12), dim=1)
    rx_all = torch.stack((rx01, rx02, rx12), dim=1)
    ry_all = torch.stack((ry01, ry02, ry12), dim=1)
    e = edge[:, None]
    values = {
        "qx": px - x0,
        "qy": py - y0,
        "bary0": bary0,
        "bary1": bary1,
        "bary": bary,
        "zbuf": zbuf,
        "dists": torch.where(inside, -dist, dist),
        "edge": edge,
        "edge_t": t_all.gather(1, e).squeeze(1),
        "edge_r": torch.cat((rx_all.gather(1, e), ry_all.gather(1, e)), dim=1),
    }
    return keep, values


def select_pairs(
    face_verts: torch.Tensor,
    face_to_mesh: torch.Tensor,
    image_size: tuple[int, int],
    blur_radius: float,
    faces_per_pixel: int,
    perspective_correct: bool,
    clip_barycentric_coords: bool,
    cull_backfaces: bool,
) -> PairGeometry:
    """Find the K nearest faces of every pixel, as sparse (pixel, face) pairs.

    Args:
        face_verts: (F, 3, 3) float packed face vertices, NDC x and y, view-space z.
        face_to_mesh: (F,) long mesh index of each face.
        image_size: (H, W) in pixels.
        blur_radius: squared NDC distance within which a face still touches a pixel.
        faces_per_pixel: K, the most faces kept per pixel.
        perspective_correct: correct barycentrics for perspective with the view depths.
        clip_barycentric_coords: clip barycentrics to [0, 1] and renormalise.
        cull_backfaces: drop faces whose screen-space winding is clockwise.

    Returns:
        The kept pairs, face-major, with the values the autograd function returns and saves.
    """
    fv = face_verts.detach()
    height, width = image_size
    dtype, device = fv.dtype, fv.device
    xs = ndc_pixel_centers(width, height, dtype, device)
    ys = ndc_pixel_centers(height, width, dtype, device)
    faces, x_lo, x_hi, y_lo, y_hi = _face_filter(fv, blur_radius, cull_backfaces, xs, ys)
    nx = x_hi - x_lo
    counts = nx * (y_hi - y_lo)
    ends = counts.cumsum(0)
    chunks: list[tuple[torch.Tensor, dict[str, torch.Tensor]]] = []
    start = 0
    num = faces.shape[0]
    while start < num:
        # Faces [start, stop) with about _CHUNK_PAIRS candidates (at least one face).
        base = ends[start - 1] if start > 0 else ends.new_zeros(())
        stop = int(torch.searchsorted(ends, base + _CHUNK_PAIRS, side="right"))
        stop = min(max(stop, start + 1), num)
        c = counts[start:stop]
        total = int(c.sum())
        if total > 0:
            local = torch.repeat_interleave(torch.arange(stop - start, device=device), c, output_size=total)
            first = torch.cumsum(c, 0) - c
            j = torch.arange(total, device=device) - first[local]
            w = nx[start:stop][local]
            xi = x_lo[start:stop][local] + j % w
            yi = y_lo[start:stop][local] + torch.div(j, w, rounding_mode="floor")
            face = faces[start:stop][local]
            keep, values = _eval_candidates(
                fv, face, xs[xi], ys[yi], blur_radius, perspective_correct, clip_barycentric_coords
            )
            idx = keep.nonzero().squeeze(1)
            pix = (face_to_mesh[face[idx]] * height + yi[idx]) * width + xi[idx]
            values = {k: v[idx] for k, v in values.items()}
            values["pix"] = pix
            values["face"] = face[idx]
            chunks.append((pix, values))
        start = stop
    keys = ("pix", "face", "qx", "qy", "bary0", "bary1", "bary", "zbuf", "dists", "edge", "edge_t", "edge_r")
    if not chunks:
        empty = _empty_pairs(dtype, device)
        return PairGeometry(**{k: empty[k] for k in keys})
    merged = {k: torch.cat([v[k] for _, v in chunks]) if len(chunks) > 1 else chunks[0][1][k] for k in keys}
    keep = _k_nearest_mask(merged["pix"], merged["zbuf"], faces_per_pixel)
    if keep is not None:
        idx = keep.nonzero().squeeze(1)
        merged = {k: v[idx] for k, v in merged.items()}
    return PairGeometry(**merged)


def _empty_pairs(dtype: torch.dtype, device: torch.device) -> dict[str, torch.Tensor]:
    long = torch.zeros(0, dtype=torch.long, device=device)
    one = torch.zeros(0, dtype=dtype, device=device)
    return {
        "pix": long, "face": long, "qx": one, "qy": one,
        "bary0": one.reshape(0, 3), "bary1": one.reshape(0, 3), "bary": one.reshape(0, 3),
        "zbuf": one, "dists": one, "edge": long, "edge_t": one, "edge_r": one.reshape(0, 2),
    }


def _k_nearest_mask(pix: torch.Tensor, zbuf: torch.Tensor, k: int) -> torch.Tensor | None:
    """Mask of the pairs among the K nearest (by (z, face id)) of their pixel.

    Pairs arrive in ascending face order, so a stable sort by z and then a stable sort by
    pixel orders each pixel's pairs by (z, face id). Only pixels with more than K
    candidates are sorted. Returns None when no pixel is over-full.
    """
    counts = torch.bincount(pix)
    over = counts > k
    if not bool(over.any()):
        return None
    sel = over[pix].nonzero().squeeze(1)
    order = torch.sort(zbuf[sel], stable=True).indices
    sel = sel[order]
    sel = sel[torch.sort(pix[sel], stable=True).indices]
    p = pix[sel]
    # rank within the pixel: position minus the position of the pixel's first pair
    pos = torch.arange(sel.shape[0], device=pix.device)
    is_first = torch.ones_like(p, dtype=torch.bool)
    is_first[1:] = p[1:] != p[:-1]
    first_pos = torch.cummax(torch.where(is_first, pos, torch.zeros_like(pos)), 0).values
    drop = sel[(pos - first_pos) >= k]
    keep = torch.ones_like(pix, dtype=torch.bool)
    keep[drop] = False
    return keep
