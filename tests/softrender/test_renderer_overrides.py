"""Per-call camera parameters on the renderer (``renderer(meshes, R=R, T=T)``), MeshRendererWithFragments,
and rasterize_meshes' 4-tuple."""

from __future__ import annotations

import pytest
import torch
from diffmesh.meshcore import Meshes, TexturesVertex
from diffmesh.meshio import ico_sphere
from diffmesh.softrender import (
    BlendParams,
    FoVPerspectiveCameras,
    HardDepthShader,
    Materials,
    MeshRasterizer,
    MeshRenderer,
    MeshRendererWithFragments,
    PerspectiveCameras,
    PointLights,
    RasterizationSettings,
    SoftPhongShader,
    SoftSilhouetteShader,
    look_at_rotation,
    look_at_view_transform,
    rasterize_meshes,
)

SETTINGS = RasterizationSettings(image_size=16, blur_radius=2e-3, faces_per_pixel=4)


def _ellipsoid(n: int = 1) -> Meshes:
    s = ico_sphere(1)
    verts = s.verts_packed() * torch.tensor([1.0, 0.6, 0.35])  # no rotational symmetry
    colors = (s.verts_packed() + 1) / 2
    return Meshes([verts] * n, [s.faces_packed()] * n, textures=TexturesVertex([colors] * n))


def _phong(cameras, shader_cameras) -> MeshRenderer:
    """A point light and a broad specular lobe: the shading depends on the camera position."""
    shader = SoftPhongShader(
        cameras=shader_cameras,
        lights=PointLights(location=[[0.0, 2.0, 3.0]]),
        materials=Materials(shininess=8.0),
        blend_params=BlendParams(sigma=1e-3, gamma=1e-2),
    )
    return MeshRenderer(MeshRasterizer(cameras, SETTINGS), shader)


@pytest.mark.parametrize("shader_has_cameras", [False, True])
def test_R_T_override_equals_cameras_built_with_them(shader_has_cameras):
    stored = FoVPerspectiveCameras(R=look_at_view_transform(3.0, 0.0, 0.0)[0])
    R, T = look_at_view_transform(2.7, 25.0, 60.0)
    stored_R = stored.R.clone()
    image = _phong(stored, stored if shader_has_cameras else None)(_ellipsoid(), R=R, T=T)
    moved = FoVPerspectiveCameras(R=R, T=T)
    expected = _phong(moved, moved if shader_has_cameras else None)(_ellipsoid())
    torch.testing.assert_close(image, expected)
    assert torch.equal(stored.R, stored_R)  # the stored cameras are unchanged
    # the shader's own (different) cameras get the override too: specular follows the camera
    other = FoVPerspectiveCameras(R=stored.R, T=stored.T)
    torch.testing.assert_close(_phong(stored, other)(_ellipsoid(), R=R, T=T), expected)


def test_projection_overrides_and_batches():
    R, T = look_at_view_transform(
        torch.tensor([2.7, 3.2]), torch.tensor([10.0, -30.0]), torch.tensor([20.0, 120.0])
    )
    one = FoVPerspectiveCameras(R=R[:1], T=T[:1])
    renderer = MeshRenderer(
        MeshRasterizer(one, SETTINGS), SoftSilhouetteShader(BlendParams(sigma=1e-3))
    )
    image = renderer(_ellipsoid(2), R=R, T=T, fov=40.0)  # batch-1 cameras, batch-2 extrinsics
    expected = MeshRenderer(
        MeshRasterizer(FoVPerspectiveCameras(R=R, T=T, fov=40.0), SETTINGS),
        SoftSilhouetteShader(BlendParams(sigma=1e-3)),
    )(_ellipsoid(2))
    torch.testing.assert_close(image, expected)
    assert not torch.allclose(image, renderer(_ellipsoid(2), R=R, T=T))
    depth = MeshRenderer(MeshRasterizer(one, SETTINGS), HardDepthShader())(_ellipsoid(), zfar=7.5)
    assert float(depth.max()) == 7.5  # the overridden far plane reaches the shader


def test_override_errors():
    cameras = FoVPerspectiveCameras(
        R=look_at_view_transform(2.7, 0.0, 0.0)[0], T=torch.tensor([[0.0, 0.0, 2.7]])
    )
    renderer = MeshRenderer(MeshRasterizer(cameras, SETTINGS), SoftSilhouetteShader())
    with pytest.raises(TypeError):
        renderer(_ellipsoid(), Rot=cameras.R)  # a misspelled name is not silently ignored
    with pytest.raises(ValueError, match="R must have shape"):
        renderer(_ellipsoid(), R=torch.eye(4))
    pinhole = MeshRenderer(
        MeshRasterizer(PerspectiveCameras(T=cameras.T), SETTINGS), SoftSilhouetteShader()
    )
    with pytest.raises(TypeError, match="fov"):
        pinhole(_ellipsoid(), fov=30.0)
    pinhole(_ellipsoid(), focal_length=2.0)  # its own parameters are fine
    with pytest.raises(ValueError, match="cameras"):
        MeshRenderer(MeshRasterizer(None, SETTINGS), SoftSilhouetteShader())(
            _ellipsoid(), T=cameras.T
        )
    with pytest.raises(ValueError, match="K matrix"):
        k_cams = FoVPerspectiveCameras(
            K=cameras.get_projection_transform().get_matrix().transpose(1, 2)
        )
        MeshRenderer(MeshRasterizer(k_cams, SETTINGS), SoftSilhouetteShader())(
            _ellipsoid(), fov=30.0
        )


def test_renderer_with_fragments():
    R, T = look_at_view_transform(2.7, 10.0, 20.0)
    cameras = FoVPerspectiveCameras(R=R, T=T)
    rasterizer = MeshRasterizer(cameras, SETTINGS)
    images, fragments = MeshRendererWithFragments(rasterizer, SoftSilhouetteShader())(_ellipsoid())
    torch.testing.assert_close(
        images, MeshRenderer(rasterizer, SoftSilhouetteShader())(_ellipsoid())
    )
    expected = rasterizer(_ellipsoid())
    for got, want in zip(fragments, expected, strict=True):
        torch.testing.assert_close(got, want)
    moved, _ = MeshRendererWithFragments(
        MeshRasterizer(FoVPerspectiveCameras(), SETTINGS), SoftSilhouetteShader()
    )(_ellipsoid(), R=R, T=T)
    torch.testing.assert_close(moved, images)


def test_rasterize_meshes_is_a_4_tuple():
    R, T = look_at_view_transform(2.7, 10.0, 20.0)
    meshes = _ellipsoid()
    verts_ndc = MeshRasterizer(FoVPerspectiveCameras(R=R, T=T), SETTINGS).transform(meshes)
    out = rasterize_meshes(
        meshes.update_padded(verts_ndc[None]), image_size=8, blur_radius=1e-3, faces_per_pixel=2
    )
    assert len(out) == 4
    pix_to_face, zbuf, bary_coords, dists = out
    assert out[0] is pix_to_face and out[-1] is dists and out[1:3] == (zbuf, bary_coords)
    assert tuple(t.shape for t in out) == (
        (1, 8, 8, 2),
        (1, 8, 8, 2),
        (1, 8, 8, 2, 3),
        (1, 8, 8, 2),
    )
    assert torch.equal(out[0], out.pix_to_face)
    with pytest.raises(IndexError):
        out[4]
    with pytest.raises(TypeError, match="index"):
        out["zbuf"]


def test_camera_position_optimisation_tutorial():
    """PyTorch3D's camera-position tutorial, in small: renderer(meshes_world=..., R=R, T=T) and Adam."""
    meshes = _ellipsoid()
    sigma = 5e-3
    settings = RasterizationSettings(image_size=32, blur_radius=9.21 * sigma, faces_per_pixel=10)
    cameras = FoVPerspectiveCameras()
    renderer = MeshRenderer(
        MeshRasterizer(cameras, settings), SoftSilhouetteShader(BlendParams(sigma=sigma))
    )

    def pose(position: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        R = look_at_rotation(position[None, :])
        T = -torch.bmm(R.transpose(1, 2), position[None, :, None])[:, :, 0]
        return R, T

    with torch.no_grad():
        target = renderer(
            meshes_world=meshes,
            R=pose(torch.tensor([0.5, 1.0, 2.6]))[0],
            T=pose(torch.tensor([0.5, 1.0, 2.6]))[1],
        )[..., 3]
    position = torch.nn.Parameter(torch.tensor([1.6, 1.6, 2.2]))
    optimizer = torch.optim.Adam([position], lr=0.05)
    losses = []
    for _ in range(8):
        optimizer.zero_grad()
        R, T = pose(position)
        loss = ((renderer(meshes_world=meshes, R=R, T=T)[..., 3] - target) ** 2).sum()
        loss.backward()
        assert bool(torch.isfinite(position.grad).all())
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.8 * losses[0], losses
    assert torch.equal(cameras.R, FoVPerspectiveCameras().R)  # the stored camera never moved


def test_rasterizer_takes_camera_parameters():
    """rasterizer(meshes, R=R, T=T) rasterizes as a rasterizer built with those cameras."""
    R, T = look_at_view_transform(2.7, 25.0, 60.0)
    stored = FoVPerspectiveCameras()
    got = MeshRasterizer(stored, SETTINGS)(_ellipsoid(), R=R, T=T, fov=50.0)
    want = MeshRasterizer(FoVPerspectiveCameras(R=R, T=T, fov=50.0), SETTINGS)(_ellipsoid())
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)
    with pytest.raises(TypeError):
        MeshRasterizer(stored, SETTINGS)(_ellipsoid(), Rotation=R)
    with pytest.raises(ValueError, match="cameras"):
        MeshRasterizer(None, SETTINGS)(_ellipsoid(), R=R)
