"""Shared fixtures for the softrender tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch


def dense_reference_rasterize(
    face_verts: torch.Tensor,
    face_to_mesh: torch.Tensor,
    num_meshes: int,
    image_size: tuple[int, int],
    blur_radius: float,
    faces_per_pixel: int,
    perspective_correct: bool = False,
    clip_barycentric_coords: bool = False,
    cull_backfaces: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Slow, obviously correct rasterizer: every pixel against every face, PyTorch3D's rules.

    Evaluates all (pixel, face) combinations by broadcasting (tiny images only) with the same
    float operations as PyTorch3D's CPU kernel, then keeps per pixel the K smallest
    (z, face id) with a stable sort over all faces.
    """
    height, width = image_size
    fv = face_verts.detach()
    dt = fv.dtype

    def centers(s1: int, s2: int) -> torch.Tensor:
        rng = torch.tensor(2.0, dtype=dt)
        if s1 > s2:
            rng = (rng * s1) / s2
        off = rng / 2
        idx = torch.arange(s1, dtype=dt)
        return ((rng * idx + off) / s1 - off).flip(0)  # pixel 0 at the + end

    ys = centers(height, width)[:, None, None]  # (H, 1, 1)
    xs = centers(width, height)[None, :, None]  # (1, W, 1)
    x0, y0, z0 = fv[:, 0].unbind(1)
    x1, y1, z1 = fv[:, 1].unbind(1)
    x2, y2, z2 = fv[:, 2].unbind(1)
    area_cull = ((x0 - x1) * (y2 - y1) - (y0 - y1) * (x2 - x1)).double()
    face_ok = ~((area_cull <= 1e-8) & (area_cull >= -1e-8))
    if cull_backfaces:
        face_ok &= ~(area_cull < 0)
    face_ok &= ~(torch.minimum(torch.minimum(z0, z1), z2).double() < 1e-8)
    r = torch.tensor(blur_radius, dtype=torch.float32).sqrt().to(dt)
    inbox = ~(
        (xs > torch.maximum(torch.maximum(x0, x1), x2) + r)
        | (xs < torch.minimum(torch.minimum(x0, x1), x2) - r)
        | (ys > torch.maximum(torch.maximum(y0, y1), y2) + r)
        | (ys < torch.minimum(torch.minimum(y0, y1), y2) - r)
    )
    area = ((x2 - x0) * (y1 - y0) - (y2 - y0) * (x1 - x0)).double().add(1e-8).to(dt)
    w0 = ((xs - x1) * (y2 - y1) - (ys - y1) * (x2 - x1)) / area
    w1 = ((xs - x2) * (y0 - y2) - (ys - y2) * (x0 - x2)) / area
    w2 = ((xs - x0) * (y1 - y0) - (ys - y0) * (x1 - x0)) / area
    if perspective_correct:
        t0, t1, t2 = w0 * z1 * z2, w1 * z0 * z2, w2 * z0 * z1
        d = t0 + t1 + t2
        w0, w1, w2 = t0 / d, t1 / d, t2 / d
    c0, c1, c2 = w0, w1, w2
    if clip_barycentric_coords:
        c0, c1, c2 = w0.clamp(min=0), w1.clamp(min=0), w2.clamp(min=0)
        s = (c0 + c1 + c2).clamp(min=1e-5)
        c0, c1, c2 = c0 / s, c1 / s, c2 / s
    pz = c0 * z0 + c1 * z1 + c2 * z2

    def seg(ax, ay, bx, by):
        dx, dy = bx - ax, by - ay
        l2 = dx * dx + dy * dy
        t = ((dx * (xs - ax) + dy * (ys - ay)) / l2).clamp(0.0, 1.0)
        px, py = ax + t * dx, ay + t * dy
        dist = (xs - px) * (xs - px) + (ys - py) * (ys - py)
        degenerate = (xs - bx) * (xs - bx) + (ys - by) * (ys - by)
        return torch.where(l2.double() <= 1e-8, degenerate, dist)

    dist = torch.minimum(
        torch.minimum(seg(x0, y0, x1, y1), seg(x0, y0, x2, y2)), seg(x1, y1, x2, y2)
    )
    inside = (w0 > 0) & (w1 > 0) & (w2 > 0)
    blur32 = torch.tensor(blur_radius, dtype=torch.float32).item()
    hit = face_ok & inbox & ~(pz < 0) & (inside | ~(dist >= blur32))
    signed = torch.where(inside, -dist, dist)

    k = faces_per_pixel
    num_faces = fv.shape[0]
    pad = max(k - num_faces, 0)  # so that the first k of the sorted faces always exist
    p2f, zbuf, bary, dists = [], [], [], []
    for n in range(num_meshes):
        ok = hit & (face_to_mesh == n)
        key = torch.where(ok, pz, torch.inf)  # (H, W, F): faces ascending, so ties go by face id
        key = torch.cat((key, torch.full((height, width, pad), torch.inf, dtype=dt)), dim=2)
        order = torch.sort(key, dim=2, stable=True).indices[..., :k]
        valid = key.gather(2, order) < torch.inf
        f = order.clamp(max=max(num_faces - 1, 0))

        def pick(t: torch.Tensor, f=f, valid=valid) -> torch.Tensor:
            if num_faces == 0:
                return torch.full(valid.shape, -1.0, dtype=dt)
            return torch.where(valid, t.gather(2, f), torch.tensor(-1.0, dtype=dt))

        p2f.append(torch.where(valid, order, -1))
        zbuf.append(pick(pz))
        dists.append(pick(signed))
        bary.append(torch.stack((pick(c0), pick(c1), pick(c2)), dim=-1))
    p2f, zbuf, bary, dists = (torch.stack(t) for t in (p2f, zbuf, bary, dists))
    return p2f, zbuf, bary, dists


@pytest.fixture
def dense_rasterize() -> Callable[..., tuple[torch.Tensor, ...]]:
    """The dense reference rasterizer (every pixel against every face, PyTorch3D's rules)."""
    return dense_reference_rasterize


def barycentric_condition(face_verts: torch.Tensor, perspective_correct: bool) -> torch.Tensor:
    """(F,) float64 condition number of each face's barycentrics, for float32 tolerances.

    An edge function of coordinates up to r errs by a few ulps of r^2 and a barycentric is
    one edge function divided by twice the face's area, so its rounding error is about
    ``eps * (1 + r^2 / area2)``; perspective correction (``b_i / z_i`` renormalized)
    multiplies that by up to ``2 z_max / z_min``.
    """
    t = face_verts.detach().double()
    if t.shape[0] == 0:
        return t.new_ones(0)
    e1, e2 = t[:, 1, :2] - t[:, 0, :2], t[:, 2, :2] - t[:, 0, :2]
    area2 = (e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]).abs()
    r = t[..., :2].abs().amax((1, 2)).clamp(min=1.0)  # pixel centres lie within [-1, 1]
    cond = 1.0 + r * r / area2.clamp(min=torch.finfo(torch.float64).tiny)
    if perspective_correct:
        z = t[..., 2].abs().clamp(min=torch.finfo(torch.float64).tiny)
        cond = cond * 2 * z.amax(1) / z.amin(1)
    return cond


def assert_fragments_close(fragments, reference, cond: torch.Tensor) -> None:
    """Same faces per pixel as ``reference`` (pix_to_face, zbuf, bary, dists); each float
    within a bound from float32's epsilon and ``cond`` (N, H, W, K), the condition number of
    the face behind each fragment (see :func:`barycentric_condition`).

    Implementation and reference are two float32 computations in different orders, whose
    roundings differ between SIMD widths and with FMA (on AVX-512 one barycentric of a thin
    face differed by 5.4e-6): neither is exact, so a fixed 1e-6 is not a portable bound.
    """
    p2f, zbuf, bary, dists = reference
    assert torch.equal(fragments.pix_to_face, p2f)
    eps = torch.finfo(torch.float32).eps
    bary_tol = 16 * eps * cond
    depth = zbuf.double().abs().clamp(min=1.0)
    z_tol = 3 * bary_tol * depth + 16 * eps * depth
    assert ((fragments.bary_coords.double() - bary.double()).abs() <= bary_tol[..., None]).all()
    assert ((fragments.zbuf.double() - zbuf.double()).abs() <= z_tol).all()
    # Squared distances of points within |2| of the origin: a few ulps of 4.
    torch.testing.assert_close(fragments.dists, dists, atol=16 * eps * 4.0, rtol=0)
    kept = p2f >= 0
    if bool(kept.any()):  # not vacuous: loose only for thin faces or a large depth range
        assert float(bary_tol[kept].median()) < 1e-3


@pytest.fixture
def fragment_checks() -> tuple[Callable[..., torch.Tensor], Callable[..., None]]:
    """``(barycentric_condition, assert_fragments_close)`` for comparing fragments with a
    float32 reference at derived tolerances."""
    return barycentric_condition, assert_fragments_close
