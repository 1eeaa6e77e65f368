"""Tests of the one Phong formula (``lighting.phong_terms``) and the resolved raster options."""

from __future__ import annotations

import pytest
import torch
from diffmesh.softrender import FoVPerspectiveCameras, RasterizationSettings, look_at_view_transform
from diffmesh.softrender.lighting import broadcast_shape, phong_terms
from diffmesh.softrender.raster import RasterOptions

F64 = torch.float64


def _reference(normals, light, points, camera, point_light, shininess):
    """The formula written plainly (autograd), PyTorch3D's normalisation."""
    n = normals / normals.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    d = light - points if point_light else light.expand_as(n)
    d = d / d.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    v = camera - points
    v = v / v.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    cos = (n * d).sum(-1)
    alpha = (v * (2.0 * cos[..., None] * n - d)).sum(-1)
    live = (cos > 0) & (alpha > 0)
    spec = torch.where(live, torch.where(live, alpha, 1.0) ** shininess, 0.0)
    return cos.clamp_min(0.0), spec


def _inputs(count: int, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    normals = torch.randn(count, 3, generator=g, dtype=F64)
    points = torch.randn(count, 3, generator=g, dtype=F64)
    light = torch.tensor([0.3, 1.5, -2.0], dtype=F64)  # one light and camera for all points,
    camera = torch.tensor([0.5, 0.2, -3.0], dtype=F64)  # as the shaders pass them
    return [t.requires_grad_() for t in (normals, light, points, camera)]


@pytest.mark.parametrize("point_light", [True, False])
@pytest.mark.parametrize("shininess", [64.0, 5.5])
def test_phong_terms_match_reference_and_gradcheck(point_light, shininess):
    normals, light, points, camera = _inputs(30, 1)
    got = phong_terms(normals, light, points, camera, point_light=point_light, shininess=shininess)
    want = _reference(normals, light, points, camera, point_light, shininess)
    w = torch.rand(2, 30, dtype=F64)
    loss_got = (got[0] * w[0]).sum() + (got[1] * w[1]).sum()
    loss_want = (want[0] * w[0]).sum() + (want[1] * w[1]).sum()
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)
    inputs = (normals, light, points, camera)
    for a, b in zip(torch.autograd.grad(loss_got, inputs), torch.autograd.grad(loss_want, inputs), strict=True):
        torch.testing.assert_close(a, b)

    def fn(n, lt, p, c):
        return phong_terms(n, lt, p, c, point_light=point_light, shininess=shininess)

    assert torch.autograd.gradcheck(fn, inputs)


def test_phong_terms_diffuse_only_and_degenerate_inputs():
    normals, light, _, _ = _inputs(10, 2)
    diffuse, spec = phong_terms(normals, light, None, None, point_light=False)
    assert spec.shape == () and diffuse.shape == (10,)
    assert torch.autograd.gradcheck(lambda n, lt: phong_terms(n, lt, None, None, point_light=False)[0], (normals, light))
    # zero normal, a point at the light, a point at the camera, a normal along the light: finite everywhere
    n = torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]], dtype=F64)
    p = torch.tensor([[0.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, -3.0], [0.0, 0.0, 0.0]], dtype=F64)
    light = torch.tensor([0.0, 2.0, 0.0], dtype=F64)
    camera = torch.tensor([0.0, 0.0, -3.0], dtype=F64)
    inputs = [t.clone().requires_grad_() for t in (n, light, p, camera)]
    diffuse, spec = phong_terms(*inputs, point_light=True, shininess=0.0)
    grads = torch.autograd.grad(diffuse.sum() + spec.sum(), inputs)
    assert all(bool(torch.isfinite(t).all()) for t in (diffuse, spec, *grads))


def test_broadcast_shape():
    assert broadcast_shape((5, 1, 3), (4, 3), ()) == torch.Size([5, 4, 3])
    assert broadcast_shape((2, 3), (4, 3)) is None


def test_raster_options_resolved_from_settings():
    R, T = look_at_view_transform(2.7, 10.0, 20.0)
    cameras = FoVPerspectiveCameras(R=R, T=T, znear=0.5)
    options = RasterizationSettings(image_size=(12, 16), blur_radius=1e-3, faces_per_pixel=3).resolve(cameras)
    assert options == RasterOptions((12, 16), 1e-3, 3, True, True, False, 0.25)
    flat = RasterizationSettings(image_size=8, perspective_correct=False).resolve(cameras)
    assert flat.image_size == (8, 8) and flat.z_clip_value is None and not flat.clip_barycentric_coords
    with pytest.raises(ValueError, match="faces_per_pixel"):
        RasterOptions((8, 8), 0.0, 0)
    with pytest.raises(ValueError, match="z_clip_value"):
        RasterOptions((8, 8), 0.0, 1, z_clip_value=-1.0)
