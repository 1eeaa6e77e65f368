"""Candidate generation and K-nearest selection for the pair-based rasterizer (no autograd).

A *pair* is one (pixel, face) combination that the rasterizer keeps: the face covers the
pixel centre, or the pixel centre lies within ``blur_radius`` (squared NDC distance) of the
face. Pairs are never produced as a dense pixels x faces product: every face only visits
the pixels inside its screen bounding box grown by ``sqrt(blur_radius)``. Faces are grouped
by the size of that box and evaluated as (cells, faces) grids of about ``_CHUNK_PAIRS``
candidates, so per-face constants broadcast instead of being gathered per candidate and
the temporaries stay cache-sized. Each face's pairs are contiguous in the output.

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
_CHUNK_PAIRS = 1 << 16  # candidates evaluated at once: cache-sized temporaries (fewer page faults)
_TRIM_PAIRS = 1 << 20  # pending pairs that trigger an early K-nearest trim
_BUCKETS_PER_OCTAVE = 1.0  # face groups by box size: at most 2x padding, few groups


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

    All tensors have P rows; the pairs of one face are contiguous.

    Attributes:
        pix: (P,) long global pixel index ``n * H * W + y * W + x``.
        face: (P,) long packed face id.
        qx, qy: (P,) pixel centre minus the face's vertex 0 (NDC x and y).
        bary0: (3, P) screen-space barycentrics (before perspective correction/clipping),
            one contiguous row per vertex (the backward works on rows).
        bary1: (3, P) perspective-corrected barycentrics (``bary0`` when not corrected).
        bary_rows: (3, P) the output barycentrics (``bary1`` clipped when clipping is on).
        bary: (P, 3) the output barycentrics, the same values as ``bary_rows``.
        zbuf: (P,) interpolated view-space depth.
        dists: (P,) signed squared NDC distance to the face's nearest edge (negative inside).
        edge: (P,) long index of the nearest edge: 0 = (v0, v1), 1 = (v0, v2), 2 = (v1, v2).
        edge_t: (P,) position of the nearest point on that edge (0 at its first vertex).
        edge_r: (2, P) nearest point on the edge minus the pixel centre (x and y rows).
    """

    pix: torch.Tensor
    face: torch.Tensor
    qx: torch.Tensor
    qy: torch.Tensor
    bary0: torch.Tensor
    bary1: torch.Tensor
    bary_rows: torch.Tensor
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
    px: torch.Tensor, py: torch.Tensor, pax: torch.Tensor, pay: torch.Tensor, ax: torch.Tensor,
    ay: torch.Tensor, bx: torch.Tensor, by: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor,
    l2: torch.Tensor, degenerate: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Squared distance from pixel centres to segments (a, b), PyTorch3D's arithmetic.

    ``pax, pay`` are ``p - a``; ``dx, dy`` are ``b - a`` and ``l2 = dx * dx + dy * dy``.

    Returns:
        (dist, t, rx, ry): squared distance, clamped segment parameter, and nearest point
        minus pixel centre. A degenerate segment (length^2 <= 1e-8) measures to ``b``.
    """
    t = ((dx * pax + dy * pay) / l2).clamp_(0.0, 1.0)
    rx = (ax + t * dx) - px
    ry = (ay + t * dy) - py
    if degenerate:
        bad = l2.double() <= _EPS
        t = torch.where(bad, torch.ones_like(t), t)
        # the nearest point is b itself (b - p, not a + 1 * (b - a) - p)
        rx = torch.where(bad, bx - px, rx)
        ry = torch.where(bad, by - py, ry)
    return rx * rx + ry * ry, t, rx, ry


# Rows of the per-face table expanded to the candidates.
_X0, _Y0, _Z0, _X1, _Y1, _Z1, _X2, _Y2, _Z2 = range(9)
_AREA, _D21X, _D21Y, _D02X, _D02Y, _D10X, _D10Y, _L01, _L02, _L12 = range(9, 19)


def _face_table(fv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(19, F) per-face constants (vertices, area + eps, edge vectors, squared edge lengths),
    and (F,) bool: the face has a degenerate edge."""
    f = fv.reshape(-1, 9).t()
    x0, y0, x1, y1, x2, y2 = f[_X0], f[_Y0], f[_X1], f[_Y1], f[_X2], f[_Y2]
    # BarycentricCoordinatesForward: area = EdgeFunctionForward(v2, v0, v1) + kEpsilon (a double).
    area = ((x2 - x0) * (y1 - y0) - (y2 - y0) * (x1 - x0)).double().add_(_EPS).to(fv.dtype)
    d21x, d21y, d02x, d02y, d10x, d10y = x2 - x1, y2 - y1, x0 - x2, y0 - y2, x1 - x0, y1 - y0
    l01 = d10x * d10x + d10y * d10y
    l02 = (x2 - x0) * (x2 - x0) + (y2 - y0) * (y2 - y0)
    l12 = d21x * d21x + d21y * d21y
    table = torch.cat((f, torch.stack((area, d21x, d21y, d02x, d02y, d10x, d10y, l01, l02, l12))))
    degenerate = (torch.stack((l01, l02, l12)).double() <= _EPS).any(dim=0)
    return table, degenerate


def _eval_candidates(
    t: torch.Tensor,
    px: torch.Tensor,
    py: torch.Tensor,
    blur_radius: float,
    perspective_correct: bool,
    clip_barycentric_coords: bool,
    degenerate: bool,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Evaluate candidate pairs: per-face constants ``t`` (19, 1, m), pixel centres (S, m).

    Returns:
        (keep (S, m) bool, rows): (S, m) tensors qx, qy, bary0 (3), [bary1 (3) when
        perspective-correcting], [bary (3) when clipping], zbuf, dists, edge, t, rx, ry.
    """
    x0, y0, z0, x1, y1, z1, x2, y2, z2 = t[:9]
    area = t[_AREA]
    # e0 = EdgeFunction(p, v1, v2), e1 = EdgeFunction(p, v2, v0), e2 = EdgeFunction(p, v0, v1)
    px0, py0, px1, py1 = px - x0, py - y0, px - x1, py - y1  # shared with the edge distances
    w0 = (px1 * t[_D21Y] - py1 * t[_D21X]) / area
    w1 = ((px - x2) * t[_D02Y] - (py - y2) * t[_D02X]) / area
    w2 = (px0 * t[_D10Y] - py0 * t[_D10X]) / area
    b0 = (w0, w1, w2)
    if perspective_correct:
        p0, p1, p2 = w0 * z1 * z2, w1 * z0 * z2, w2 * z0 * z1
        denom = p0 + p1 + p2
        b1 = (p0 / denom, p1 / denom, p2 / denom)
    else:
        b1 = b0
    if clip_barycentric_coords:
        c0, c1, c2 = b1[0].clamp(min=0.0), b1[1].clamp(min=0.0), b1[2].clamp(min=0.0)
        total = (c0 + c1 + c2).clamp_(min=1e-5)
        b2 = (c0 / total, c1 / total, c2 / total)
    else:
        b2 = b1
    zbuf = b2[0] * z0 + b2[1] * z1 + b2[2] * z2
    d01, t01, rx01, ry01 = _edge_distance(
        px, py, px0, py0, x0, y0, x1, y1, t[_D10X], t[_D10Y], t[_L01], degenerate
    )
    d02, t02, rx02, ry02 = _edge_distance(
        px, py, px0, py0, x0, y0, x2, y2, -t[_D02X], -t[_D02Y], t[_L02], degenerate
    )
    d12, t12, rx12, ry12 = _edge_distance(
        px, py, px1, py1, x1, y1, x2, y2, t[_D21X], t[_D21Y], t[_L12], degenerate
    )
    # nearest edge, first minimum wins in the order (0, 1), (0, 2), (1, 2); its distance is
    # the minimum whichever wins. The per-edge values are picked by 0/1 weights (exact for
    # finite values, and several times faster than torch.where on a CPU).
    sel0 = (d01 <= d02) & (d01 <= d12)
    sel1 = (d02 <= d12) & ~sel0
    dist = torch.minimum(torch.minimum(d01, d02), d12)
    f0, f1 = sel0.to(dist.dtype), sel1.to(dist.dtype)
    f2 = (1.0 - f0).sub_(f1)
    inside = (b1[0] > 0) & (b1[1] > 0) & (b1[2] > 0)
    blur32 = torch.tensor(blur_radius, dtype=torch.float32).item()
    keep = (zbuf >= 0) & (inside | (dist < blur32))
    sign = inside.to(dist.dtype).mul_(-2.0).add_(1.0)  # -1 inside, +1 outside
    rows = [
        px0, py0, *b0,
        *(b1 if perspective_correct else ()), *(b2 if clip_barycentric_coords else ()),
        zbuf, dist * sign, f2.mul(2.0).add_(f1),
        (t01 * f0).addcmul_(t02, f1).addcmul_(t12, f2),
        (rx01 * f0).addcmul_(rx02, f1).addcmul_(rx12, f2),
        (ry01 * f0).addcmul_(ry02, f1).addcmul_(ry12, f2),
    ]
    return keep, rows


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
        The kept pairs (each face's contiguous), with the values the autograd function
        returns and saves.
    """
    fv = face_verts.detach()
    height, width = image_size
    dtype, device = fv.dtype, fv.device
    xs = ndc_pixel_centers(width, height, dtype, device)
    ys = ndc_pixel_centers(height, width, dtype, device)
    faces, x_lo, x_hi, y_lo, y_hi = _face_filter(fv, blur_radius, cull_backfaces, xs, ys)
    nx = x_hi - x_lo
    counts = nx * (y_hi - y_lo)
    if faces.shape[0] == 0:
        return PairGeometry(**_empty_pairs(dtype, device))
    table, degenerate = _face_table(fv[faces])
    mesh_of = face_to_mesh[faces]
    # Faces are grouped by candidate count (see _BUCKETS_PER_OCTAVE) and laid out
    # as (faces, S) grids: per-face constants broadcast along S, no per-candidate gathers.
    bucket = torch.floor(torch.log2(counts.double()) * _BUCKETS_PER_OCTAVE).long()
    order = torch.sort(bucket, stable=True).indices
    _, sizes = torch.unique_consecutive(bucket[order], return_counts=True)
    chunks: list[list[torch.Tensor]] = []
    chunk_faces: list[torch.Tensor] = []
    chunk_pix: list[torch.Tensor] = []
    pending = trimmed = 0
    start = 0
    for size in sizes.tolist():
        members = order[start : start + size]
        start += size
        width_s = int(counts[members].max())
        per_chunk = max(_CHUNK_PAIRS // width_s, 1)
        for lo in range(0, size, per_chunk):
            rows_f = members[lo : lo + per_chunk]
            m = rows_f.shape[0]
            # (cells, faces) layout: the long axis is innermost, per-face values broadcast along it
            j = torch.arange(width_s, device=device)[:, None]
            w = nx[rows_f][None, :]
            q = torch.div(j, w, rounding_mode="floor")
            xi = (x_lo[rows_f][None, :] + (j - q * w)).clamp_(max=width - 1)
            yi = (y_lo[rows_f][None, :] + q).clamp_(max=height - 1)
            t = table.index_select(1, rows_f)[:, None, :]
            px = xs.index_select(0, xi.reshape(-1)).view(xi.shape)
            py = ys.index_select(0, yi.reshape(-1)).view(yi.shape)
            keep, rows = _eval_candidates(
                t, px, py, blur_radius, perspective_correct, clip_barycentric_coords,
                bool(degenerate[rows_f].any()),
            )
            keep &= j < counts[rows_f][None, :]  # grid cells past the face's box
            # kept cells in face-major order, so that each face's pairs are contiguous
            nz = keep.t().nonzero()
            idx = nz[:, 1] * m + nz[:, 0]
            # one fresh 1-D gather per row (index_select along dim 1 or into out= views
            # takes a much slower path)
            chunks.append([row.reshape(-1).index_select(0, idx) for row in rows])
            pix = (mesh_of[rows_f][None, :] * height + yi) * width + xi
            chunk_pix.append(pix.reshape(-1).index_select(0, idx))
            chunk_faces.append(faces[rows_f].index_select(0, nz[:, 0]))
            pending += idx.shape[0]
            if pending > max(_TRIM_PAIRS, trimmed):  # drop pairs beyond the K nearest early
                rest = 5 + 3 * (perspective_correct + clip_barycentric_coords)
                merged = _merge_and_trim(chunks, chunk_faces, chunk_pix, rest, faces_per_pixel)
                chunks, chunk_faces, chunk_pix = [merged[0]], [merged[1]], [merged[2]]
                pending, trimmed = 0, merged[1].shape[0]  # amortised: trims at most double
    rest = 5 + 3 * (perspective_correct + clip_barycentric_coords)
    data, face, pix = _merge_and_trim(chunks, chunk_faces, chunk_pix, rest, faces_per_pixel)
    bary0 = torch.stack(data[2:5])
    bary1 = torch.stack(data[5:8]) if perspective_correct else bary0
    out_rows = data[rest - 3 : rest]  # the clipped, else corrected, else screen-space rows
    return PairGeometry(
        pix=pix, face=face, qx=data[0], qy=data[1], bary0=bary0, bary1=bary1,
        bary_rows=torch.stack(out_rows) if clip_barycentric_coords else bary1,
        bary=torch.stack(out_rows, dim=1),
        zbuf=data[rest], dists=data[rest + 1], edge=data[rest + 2].long(), edge_t=data[rest + 3],
        edge_r=torch.stack(data[rest + 4 : rest + 6]),
    )


def _merge_and_trim(
    chunks: list[list[torch.Tensor]], faces: list[torch.Tensor], pix: list[torch.Tensor], z_row: int, k: int
) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
    """Concatenate per-chunk pairs (a list of 1-D rows per chunk) and keep each pixel's K nearest.

    Dropping a pair that is not among the K nearest of a subset is safe: it cannot be among
    the K nearest of the whole set.
    """
    data = [torch.cat(parts) if len(parts) > 1 else parts[0] for parts in zip(*chunks, strict=True)]
    face = torch.cat(faces) if len(faces) > 1 else faces[0]
    p = torch.cat(pix) if len(pix) > 1 else pix[0]
    keep = _k_nearest_mask(p, data[z_row], face, k)
    if keep is None:
        return data, face, p
    idx = keep.nonzero().squeeze(1)
    return [row.index_select(0, idx) for row in data], face.index_select(0, idx), p.index_select(0, idx)



def _empty_pairs(dtype: torch.dtype, device: torch.device) -> dict[str, torch.Tensor]:
    long = torch.zeros(0, dtype=torch.long, device=device)
    one = torch.zeros(0, dtype=dtype, device=device)
    return {
        "pix": long, "face": long, "qx": one, "qy": one,
        "bary0": one.reshape(3, 0), "bary1": one.reshape(3, 0), "bary_rows": one.reshape(3, 0),
        "bary": one.reshape(0, 3), "zbuf": one, "dists": one, "edge": long, "edge_t": one,
        "edge_r": one.reshape(2, 0),
    }


def _k_nearest_mask(pix: torch.Tensor, zbuf: torch.Tensor, face: torch.Tensor, k: int) -> torch.Tensor | None:
    """Mask of the pairs among the K nearest (by (z, face id)) of their pixel.

    Only pixels with more than K candidates are sorted: stable sorts by face id, then z,
    then pixel order each such pixel's pairs by (z, face id). Returns None when no pixel is
    over-full.
    """
    counts = torch.bincount(pix)
    over = counts > k
    if not bool(over.any()):
        return None
    sel = over[pix].nonzero().squeeze(1)
    sel = sel[torch.sort(face[sel], stable=True).indices]
    sel = sel[torch.sort(zbuf[sel], stable=True).indices]
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
