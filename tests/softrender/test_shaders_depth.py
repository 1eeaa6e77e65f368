"""HardDepthShader and SoftDepthShader against pixel-by-pixel references of PyTorch3D's formulas."""

from __future__ import annotations

import itertools

import pytest
import torch
from diffmesh.meshcore import Meshes
from diffmesh.meshio import ico_sphere
from diffmesh.softrender import (
    BlendParams,
    FoVPerspectiveCameras,
    HardDepthShader,
    MeshRasterizer,
    MeshRenderer,
    PerspectiveCameras,
    RasterizationSettings,
    SoftDepthShader,
    look_at_view_transform,
)


def _scene(n: int = 1, dtype: torch.dtype = torch.float32):
    """Two offset spheres (overlapping in the image, several faces per pixel), N views."""
    s = ico_sphere(1)
    verts = torch.cat(
        (s.verts_packed() * 0.8, s.verts_packed() * 0.5 + torch.tensor([0.4, 0.2, 0.6]))
    ).to(dtype)
    faces = torch.cat((s.faces_packed(), s.faces_packed() + s.verts_packed().shape[0]))
    meshes = Meshes([verts] * n, [faces] * n)
    R, T = look_at_view_transform(
        torch.tensor([2.7, 3.0][:n]),
        torch.tensor([10.0, -20.0][:n]),
        torch.tensor([20.0, 130.0][:n]),
    )
    cameras = FoVPerspectiveCameras(
        R=R.to(dtype), T=T.to(dtype), zfar=torch.tensor([50.0, 7.0][:n], dtype=dtype)
    )
    settings = RasterizationSettings(image_size=10, blur_radius=0.02, faces_per_pixel=5)
    return meshes, cameras, MeshRasterizer(cameras, settings)


def _hard_reference(fragments, zfar: torch.Tensor) -> torch.Tensor:
    p2f, zbuf = fragments.pix_to_face, fragments.zbuf
    out = torch.empty(*p2f.shape[:3], 1, dtype=zbuf.dtype)  # every pixel written below
    for n, y, x in itertools.product(*(range(s) for s in p2f.shape[:3])):
        out[n, y, x, 0] = zbuf[n, y, x, 0] if p2f[n, y, x, 0] >= 0 else zfar[n]
    return out


def _soft_reference(fragments, zfar: torch.Tensor, sigma: float) -> torch.Tensor:
    """PyTorch3D's loop: coverage accumulated front to back, capped at 1; the rest is zfar."""
    p2f, zbuf, dists = fragments.pix_to_face, fragments.zbuf, fragments.dists
    out = torch.empty(*p2f.shape[:3], 1, dtype=zbuf.dtype)  # every pixel written below
    for n, y, x in itertools.product(*(range(s) for s in p2f.shape[:3])):
        total, cum = zbuf.new_zeros(()), zbuf.new_zeros(())
        for k in range(p2f.shape[3]):
            if p2f[n, y, x, k] < 0:
                continue
            new = cum + torch.sigmoid(-dists[n, y, x, k] / sigma)
            total = total + (new.clamp(max=1) - cum.clamp(max=1)) * zbuf[n, y, x, k]
            cum = new
        out[n, y, x, 0] = total + (1 - cum.clamp(max=1)) * zfar[n]
    return out


@pytest.mark.parametrize("n", [1, 2])
def test_depth_shaders_match_reference(n):
    meshes, cameras, rasterizer = _scene(n)
    fragments = rasterizer(meshes)
    assert int((fragments.pix_to_face >= 0).sum(-1).max()) >= 3  # several faces per pixel
    hard = HardDepthShader(cameras=cameras)(fragments, meshes)
    torch.testing.assert_close(hard, _hard_reference(fragments, cameras.zfar), rtol=0, atol=0)
    blend = BlendParams(sigma=2e-3)
    soft = SoftDepthShader(cameras=cameras, blend_params=blend)(fragments, meshes)
    assert soft.shape == (n, 10, 10, 1)
    torch.testing.assert_close(
        soft, _soft_reference(fragments, cameras.zfar, 2e-3), rtol=1e-5, atol=1e-5
    )
    for i in range(n):  # uncovered pixels: the image's far plane
        assert bool((soft[i][fragments.pix_to_face[i, ..., 0] < 0] == cameras.zfar[i]).all())


def test_depth_zfar_override_and_default():
    meshes, cameras, rasterizer = _scene(1)
    fragments = rasterizer(meshes)
    empty = fragments.pix_to_face[..., 0] < 0
    for shader in (HardDepthShader(), SoftDepthShader()):
        assert bool((shader(fragments, meshes, zfar=9.0)[empty] == 9.0).all())
        assert bool((shader(fragments, meshes, cameras=cameras)[empty] == 50.0).all())
        with pytest.raises(ValueError, match="cameras"):
            shader(fragments, meshes)
        with pytest.raises(ValueError, match="zfar"):
            shader(fragments, meshes, zfar=torch.ones(3))
        with pytest.raises(TypeError, match="zfar"):
            shader(fragments, meshes, zfar="far")
    # cameras without a far plane: PyTorch3D's 100
    pinhole = PerspectiveCameras(R=cameras.R, T=cameras.T)
    assert bool((HardDepthShader(cameras=pinhole)(fragments, meshes)[empty] == 100.0).all())


def test_soft_depth_gradcheck_float64():
    """Gradients reach the vertices through zbuf and dists (float64 gradcheck, tiny scene)."""
    sphere = ico_sphere(0)
    verts = (sphere.verts_packed().double() * 0.9 + 0.013).requires_grad_(True)
    faces = sphere.faces_packed()
    R, T = look_at_view_transform(2.7, 10.0, 20.0)
    cameras = FoVPerspectiveCameras(R=R.double(), T=T.double(), zfar=6.0)
    settings = RasterizationSettings(image_size=8, blur_radius=0.02, faces_per_pixel=4)
    for shader in (SoftDepthShader(blend_params=BlendParams(sigma=5e-3)), HardDepthShader()):
        renderer = MeshRenderer(MeshRasterizer(cameras, settings), shader)

        def render(v: torch.Tensor, renderer=renderer) -> torch.Tensor:
            return renderer(Meshes([v], [faces]))

        assert torch.autograd.gradcheck(
            render, (verts,), eps=1e-7, atol=1e-6, rtol=1e-4, fast_mode=True
        )


def test_depth_empty_and_degenerate_no_nan():
    sphere = ico_sphere(1)
    verts = sphere.verts_packed().clone().requires_grad_(True)
    faces = torch.cat((sphere.faces_packed(), torch.tensor([[0, 0, 1]])))  # a zero-area face
    R, T = look_at_view_transform(2.7, 10.0, 20.0)
    cameras = FoVPerspectiveCameras(R=R, T=T)
    rasterizer = MeshRasterizer(
        cameras, RasterizationSettings(image_size=12, blur_radius=1e-3, faces_per_pixel=3)
    )
    for shader in (SoftDepthShader(), HardDepthShader()):
        verts.grad = None
        meshes = Meshes(
            [verts, torch.zeros(0, 3)], [faces, torch.zeros(0, 3, dtype=torch.long)]
        )  # fresh caches
        depth = MeshRenderer(rasterizer, shader)(meshes)
        assert depth.shape == (2, 12, 12, 1)
        assert bool((depth[1] == 100.0).all())  # the empty mesh: all far plane
        depth.sum().backward()
        assert bool(torch.isfinite(depth).all()) and bool(torch.isfinite(verts.grad).all())
        assert float(verts.grad.abs().sum()) > 0
