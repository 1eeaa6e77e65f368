"""MeshRasterizer: world -> view -> NDC through the camera, zbuf in view depth, settings."""

from __future__ import annotations

import pytest
import torch
from diffmesh.meshcore import Meshes
from diffmesh.softrender import (
    FoVOrthographicCameras,
    FoVPerspectiveCameras,
    MeshRasterizer,
    RasterizationSettings,
    rasterize_meshes,
)


def _plane(z: float, half: float = 0.5) -> Meshes:
    verts = torch.tensor([[-half, -half, z], [half, -half, z], [half, half, z], [-half, half, z]])
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    return Meshes([verts], [faces])


@pytest.mark.parametrize("persp", [False, True])
def test_zbuf_is_view_depth(persp):
    """A plane at world z = 0 seen from 3 units away: zbuf is 3 wherever it is drawn."""
    cameras = FoVPerspectiveCameras(T=[[0.0, 0.0, 3.0]])
    settings = RasterizationSettings(image_size=16, faces_per_pixel=2, perspective_correct=persp)
    fragments = MeshRasterizer(cameras, settings)(_plane(0.0))
    drawn = fragments.pix_to_face[..., 0] >= 0
    assert int(drawn.sum()) > 0
    torch.testing.assert_close(fragments.zbuf[..., 0][drawn], torch.full((int(drawn.sum()),), 3.0))
    assert bool((fragments.pix_to_face[..., 1] == -1).all())


def test_matches_rasterize_meshes_on_projected_vertices():
    """MeshRasterizer == rasterize_meshes on (NDC x, NDC y, view z) vertices."""
    g = torch.Generator().manual_seed(0)
    verts = torch.rand(12, 3, generator=g) - 0.5
    faces = torch.randint(0, 12, (10, 3), generator=g)
    meshes = Meshes([verts], [faces])
    cameras = FoVPerspectiveCameras(T=[[0.1, -0.2, 2.5]])
    settings = RasterizationSettings(image_size=(10, 14), blur_radius=0.01, faces_per_pixel=3)
    fragments = MeshRasterizer(cameras, settings)(meshes)
    view = cameras.get_world_to_view_transform().transform_points(verts[None])[0]
    ndc = cameras.transform_points(verts[None])[0]
    projected = Meshes([torch.cat((ndc[:, :2], view[:, 2:]), dim=1)], [faces])
    expected = rasterize_meshes(projected, (10, 14), 0.01, 3, perspective_correct=True,
                                clip_barycentric_coords=True)
    assert torch.equal(fragments.pix_to_face, expected.pix_to_face)
    torch.testing.assert_close(fragments.zbuf, expected.zbuf, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fragments.dists, expected.dists, atol=1e-6, rtol=1e-5)
    assert fragments.pix_to_face.shape == (1, 10, 14, 3)


def test_per_call_overrides_and_orthographic():
    meshes = _plane(0.0, half=0.9)
    near = FoVPerspectiveCameras(T=[[0.0, 0.0, 2.0]])
    far = FoVPerspectiveCameras(T=[[0.0, 0.0, 6.0]])
    rasterizer = MeshRasterizer(near, RasterizationSettings(image_size=12))
    covered_near = int((rasterizer(meshes).pix_to_face >= 0).sum())
    covered_far = int((rasterizer(meshes, cameras=far).pix_to_face >= 0).sum())
    assert covered_far < covered_near  # the override is used: farther camera, smaller plane
    ortho = MeshRasterizer(FoVOrthographicCameras(T=[[0.0, 0.0, 2.0]]), RasterizationSettings(image_size=12))
    fragments = ortho(meshes)
    assert fragments.zbuf.shape == (1, 12, 12, 1)
    with pytest.raises(TypeError, match="raster_settings"):
        rasterizer(meshes, raster_settings={"image_size": 8})
