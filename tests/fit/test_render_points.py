"""Point-cloud previews (GIF frames of cloud targets): splats land where the mesh renders."""

from __future__ import annotations

import pytest
import torch
from diffmesh.fit.cameras_io import CameraSet
from diffmesh.fit.render_points import render_points
from diffmesh.fit.render_views import render_shaded
from diffmesh.meshio import ico_sphere


def test_splats_of_a_mesh_fall_inside_its_render_and_nearer_is_brighter():
    sphere = ico_sphere(2)
    verts = sphere.verts_packed() * torch.tensor([0.9, 0.5, 0.3]) + torch.tensor([0.3, 0.1, 0.0])
    cams = CameraSet.look_at(2.3, torch.tensor([20.0]), torch.tensor([90.0])).cameras(None, "cpu")
    size = 48
    mesh_img = render_shaded(
        [verts],
        [sphere.faces_packed()],
        [(0.9, 0.6, 0.3)],
        cams,
        image_size=size,
        light_location=(2.0, 1.0, 0.0),
    )[0]
    splat = render_points([verts], [(0.9, 0.6, 0.3)], cams, image_size=size)[0]
    covered = (mesh_img < 0.99).any(-1)
    dots = (splat < 0.99).any(-1)
    assert int(dots.sum()) > 50
    # Every splat on the mesh's silhouette grown by one pixel (vertices lie on its outline).
    grown = (
        torch.nn.functional.max_pool2d(covered[None, None].float(), 3, stride=1, padding=1)[0, 0]
        > 0
    )
    assert bool(grown[dots].all())
    assert torch.isfinite(splat).all() and splat.min() >= 0 and splat.max() <= 1
    # An empty cloud renders white.
    empty = render_points([torch.zeros(0, 3)], [(1.0, 0.0, 0.0)], cams, image_size=8)
    assert torch.equal(empty, torch.ones(1, 8, 8, 3))
    # Two points on the view axis: the pixel shows the nearer one (brightest shade).
    eye = cams.get_camera_center()[0]
    pair = torch.stack([eye * 0.2, eye * -0.2])
    one = render_points([pair], [(1.0, 1.0, 1.0)], cams, image_size=9)[0]
    assert torch.allclose(one[4, 4], torch.ones(3))
    with pytest.raises(ValueError, match="colors"):
        render_points([verts], [], cams, image_size=8)
