"""Quality measures (metrics.py) against values worked out by hand on tiny inputs."""

from __future__ import annotations

import math

import pytest
import torch
from diffmesh.fit.metrics import (
    eval_chamfer,
    flipped_fraction,
    masked_psnr,
    signed_volumes,
    silhouette_iou,
)
from diffmesh.meshcore import Meshes
from diffmesh.meshio import ico_sphere
from diffmesh.meshloss import sample_points_from_meshes

# The unit cube [0, 1]^3, faces wound counter-clockwise seen from outside (outward normals).
CUBE_VERTS = torch.tensor(
    [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]], dtype=torch.float32
)
CUBE_FACES = torch.tensor([
    [0, 2, 1], [0, 3, 2],  # z = 0, normal -z
    [4, 5, 6], [4, 6, 7],  # z = 1, normal +z
    [0, 1, 5], [0, 5, 4],  # y = 0, normal -y
    [3, 7, 6], [3, 6, 2],  # y = 1, normal +y
    [0, 4, 7], [0, 7, 3],  # x = 0, normal -x
    [1, 2, 6], [1, 6, 5],  # x = 1, normal +x
])
# The corner tetrahedron (0, e_x, e_y, e_z), outward faces: volume 1/6.
TET_VERTS = torch.tensor([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=torch.float32)
TET_FACES = torch.tensor([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
# The unit square z = 0, two triangles.
SQUARE_VERTS = torch.tensor([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], dtype=torch.float32)
SQUARE_FACES = torch.tensor([[0, 1, 2], [0, 2, 3]])


def _mesh(verts: torch.Tensor, faces: torch.Tensor) -> Meshes:
    return Meshes(verts=[verts], faces=[faces])


def test_cube_fixture_faces_point_outward():
    v = CUBE_VERTS[CUBE_FACES]
    normal = torch.linalg.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0], dim=-1)
    outward = v.mean(1) - 0.5
    assert (normal * outward).sum(-1).gt(0).all()


# -- signed_volumes -----------------------------------------------------------------------


def test_signed_volume_of_the_unit_cube_and_the_tetrahedron():
    vol = signed_volumes(_mesh(CUBE_VERTS, CUBE_FACES))
    assert vol.dtype == torch.float64 and vol.device.type == "cpu" and vol.shape == (1,)
    assert vol.item() == pytest.approx(1.0, abs=1e-12)
    assert signed_volumes(_mesh(TET_VERTS, TET_FACES)).item() == pytest.approx(1 / 6, abs=1e-12)


def test_signed_volume_is_negative_with_flipped_faces():
    assert signed_volumes(_mesh(CUBE_VERTS, CUBE_FACES.flip(1))).item() == pytest.approx(-1.0, abs=1e-12)
    assert signed_volumes(_mesh(TET_VERTS, TET_FACES[:, [0, 2, 1]])).item() == pytest.approx(-1 / 6, abs=1e-12)


def test_signed_volume_does_not_depend_on_the_origin_and_scales_as_a_cube():
    # Closed mesh: the origin's place is irrelevant; a box 2 x 3 x 0.5 has volume 3.
    verts = CUBE_VERTS * torch.tensor([2.0, 3.0, 0.5]) + torch.tensor([5.0, -7.0, 11.0])
    assert signed_volumes(_mesh(verts, CUBE_FACES)).item() == pytest.approx(3.0, rel=1e-9)


def test_signed_volumes_of_a_batch_are_mesh_by_mesh():
    sphere = ico_sphere(2)
    meshes = Meshes(
        verts=[CUBE_VERTS, TET_VERTS, sphere.verts_packed(), CUBE_VERTS * 2],
        faces=[CUBE_FACES, TET_FACES, sphere.faces_packed(), CUBE_FACES.flip(1)],
    )
    vol = signed_volumes(meshes)
    assert vol.shape == (4,)
    assert vol[0].item() == pytest.approx(1.0, abs=1e-12)
    assert vol[1].item() == pytest.approx(1 / 6, abs=1e-12)
    # An inscribed polyhedron: a little less than the unit ball's 4/3 pi (level 2: 320 faces).
    assert 0.9 * 4 / 3 * math.pi < vol[2].item() < 4 / 3 * math.pi
    assert vol[3].item() == pytest.approx(-8.0, abs=1e-12)


# -- silhouette_iou -----------------------------------------------------------------------


def test_iou_of_hand_made_masks():
    pred = torch.zeros(4, 2, 3)
    target = torch.zeros(4, 2, 3)
    # View 0: pred 3 pixels, target 2 of them plus 1 more: inter 2, union 4.
    pred[0, 0, :3] = 1.0
    target[0, 0, 1:] = 0.9
    target[0, 1, 0] = 0.8
    # View 1: disjoint.
    pred[1, 0, 0] = 1.0
    target[1, 1, 2] = 1.0
    # View 2: both empty. View 3: target only.
    target[3, 1, 1] = 1.0
    iou = silhouette_iou(pred, target)
    assert iou.dtype == torch.float64 and iou.device.type == "cpu"
    assert iou.tolist() == [0.5, 0.0, 1.0, 0.0]
    assert silhouette_iou(target, pred).tolist() == [0.5, 0.0, 1.0, 0.0]  # symmetric


def test_iou_threshold_is_strict():
    pred = torch.tensor([[[0.5, 0.51, 0.2, 0.0]]])
    target = torch.tensor([[[1.0, 1.0, 1.0, 0.0]]])
    assert silhouette_iou(pred, target).tolist() == [1 / 3]  # 0.5 is not above 0.5
    assert silhouette_iou(pred, target, threshold=0.1).tolist() == [1.0]  # 0.2 > 0.1, 0.5 counts
    assert silhouette_iou(pred, target, threshold=0.9).tolist() == [0.0]


def test_iou_rejects_mismatched_or_unbatched_inputs():
    with pytest.raises(ValueError, match="pred, target"):
        silhouette_iou(torch.zeros(2, 4, 4), torch.zeros(2, 4, 5))
    with pytest.raises(ValueError, match="pred, target"):
        silhouette_iou(torch.zeros(4, 4), torch.zeros(4, 4))


# -- masked_psnr --------------------------------------------------------------------------


def test_psnr_of_a_known_mse_counts_only_masked_pixels():
    target = torch.full((1, 2, 2, 3), 0.5)
    pred = target.clone()
    pred[0, 0, 0] += torch.tensor([0.1, -0.2, 0.2])  # squared errors 0.01, 0.04, 0.04
    pred[0, 1] = torch.tensor([1.0, 0.0, 1.0])  # outside the mask: ignored
    mask = torch.tensor([[[True, False], [False, False]]])
    assert masked_psnr(pred, target, mask) == pytest.approx(10 * math.log10(1 / 0.03), rel=1e-6)  # 15.23 dB
    # The same error on one pixel of four masked ones: MSE 0.03 / 4.
    pred[0, 1] = target[0, 1]
    mask[:] = True
    assert masked_psnr(pred, target, mask) == pytest.approx(10 * math.log10(4 / 0.03), rel=1e-6)


def test_psnr_pools_the_error_over_all_views():
    target = torch.zeros(2, 1, 2, 3)
    pred = target.clone()
    pred[0, 0, 0] = 0.1  # view 0: one masked pixel off by 0.1 in every channel
    mask = torch.ones(2, 1, 2, dtype=torch.bool)
    mask[0, 0, 1] = False
    # 3 masked pixels in all, squared error 0.01 on one: MSE 0.01 / 3 (not a mean of per-view PSNRs).
    assert masked_psnr(pred, target, mask) == pytest.approx(10 * math.log10(300), rel=1e-6)


def test_psnr_of_a_perfect_match_and_of_an_empty_mask():
    image = torch.rand(2, 3, 3, 3, generator=torch.Generator().manual_seed(0))
    assert masked_psnr(image, image.clone(), torch.ones(2, 3, 3, dtype=torch.bool)) == math.inf
    assert math.isnan(masked_psnr(image, image + 0.5, torch.zeros(2, 3, 3, dtype=torch.bool)))


def test_psnr_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="pred, target, mask"):
        masked_psnr(torch.zeros(1, 2, 2, 3), torch.zeros(1, 2, 2, 3), torch.ones(1, 2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="pred, target, mask"):
        masked_psnr(torch.zeros(1, 2, 2, 3), torch.zeros(1, 2, 3, 3), torch.ones(1, 2, 2, dtype=torch.bool))


# -- eval_chamfer -------------------------------------------------------------------------


def _reference_chamfer(a: Meshes, b: Meshes, samples: int, draws: int, seed: int) -> torch.Tensor:
    """The same draws, distances by brute force in float64: mean over draws of
    mean_a min_b |pa - pb|^2 + mean_b min_a |pa - pb|^2."""
    torch.manual_seed(seed)
    total = torch.zeros(len(a), dtype=torch.float64)
    for _ in range(draws):
        pa = sample_points_from_meshes(a, samples).double()
        pb = sample_points_from_meshes(b, samples).double()
        d2 = torch.cdist(pa, pb) ** 2
        total += d2.min(2).values.mean(1) + d2.min(1).values.mean(1)
    return total / draws


def test_chamfer_matches_a_brute_force_reference_and_restores_the_rng():
    sphere = ico_sphere(1)
    a = Meshes(verts=[sphere.verts_packed(), CUBE_VERTS], faces=[sphere.faces_packed(), CUBE_FACES])
    b = Meshes(verts=[sphere.verts_packed() * 1.3, TET_VERTS], faces=[sphere.faces_packed(), TET_FACES])
    torch.manual_seed(99)
    state = torch.get_rng_state()
    got = eval_chamfer(a, b, samples=300, draws=3, generator_seed=7)
    assert torch.equal(torch.get_rng_state(), state)  # the fit's random stream is untouched
    assert got.dtype == torch.float64 and got.device.type == "cpu" and got.shape == (2,)
    torch.testing.assert_close(got, _reference_chamfer(a, b, 300, 3, 7), rtol=1e-5, atol=1e-9)
    assert torch.equal(eval_chamfer(a, b, samples=300, draws=3, generator_seed=7), got)  # reproducible


def test_chamfer_of_a_mesh_with_itself_is_near_zero():
    cube = _mesh(CUBE_VERTS, CUBE_FACES)
    value = eval_chamfer(cube, cube, samples=2000, draws=1).item()
    # Two independent uniform samplings of the same surface (area A = 6, n = 2000 points):
    # the squared distance to the nearest of the other points averages A / (pi n) per direction.
    assert value == pytest.approx(2 * 6 / (math.pi * 2000), rel=0.2)  # 1.9e-3


def test_chamfer_of_translated_squares_is_twice_the_squared_gap():
    # Parallel unit squares at z = 0 and z = d: every nearest neighbour is about straight
    # across, so each direction contributes about d^2 (squared L2, not L1 or L2).
    a = Meshes(verts=[SQUARE_VERTS, SQUARE_VERTS], faces=[SQUARE_FACES, SQUARE_FACES])
    b = Meshes(verts=[SQUARE_VERTS + torch.tensor([0.0, 0.0, 1.0]), SQUARE_VERTS + torch.tensor([0.0, 0.0, 0.25])],
               faces=[SQUARE_FACES, SQUARE_FACES])
    value = eval_chamfer(a, b, samples=2000, draws=2)
    assert value[0].item() == pytest.approx(2.0, rel=2e-3)
    assert value[1].item() == pytest.approx(2 * 0.25**2, rel=2e-2)


def test_chamfer_scales_with_the_square_of_the_size():
    sphere = ico_sphere(1)
    a = _mesh(sphere.verts_packed(), sphere.faces_packed())
    b = _mesh(CUBE_VERTS - 0.5, CUBE_FACES)
    small = eval_chamfer(a, b, samples=500, draws=2).item()
    big = eval_chamfer(_mesh(sphere.verts_packed() * 2, sphere.faces_packed()),
                       _mesh((CUBE_VERTS - 0.5) * 2, CUBE_FACES), samples=500, draws=2).item()
    assert small > 0.01  # the sphere and the cube differ
    assert big == pytest.approx(4 * small, rel=1e-5)


def test_chamfer_rejects_batches_of_different_sizes():
    cube = _mesh(CUBE_VERTS, CUBE_FACES)
    with pytest.raises(ValueError, match="same size"):
        eval_chamfer(cube, cube.extend(2), samples=10, draws=1)


def _reference_flipped(fitted_verts, fitted_faces, points, normals):
    """Fraction of flipped faces by loops: nearest sample to each centroid, sign of the dot."""
    flipped = 0
    for face in fitted_faces.tolist():
        corners = fitted_verts[face]
        normal = torch.linalg.cross(corners[1] - corners[0], corners[2] - corners[0], dim=0)
        centroid = corners.mean(0)
        nearest = min(range(points.shape[0]), key=lambda j: float(((points[j] - centroid) ** 2).sum()))
        flipped += int(float(normal @ normals[nearest]) < 0)
    return flipped / fitted_faces.shape[0]


def test_flipped_fraction_of_a_sphere_itself_inverted_and_half_inverted():
    sphere = ico_sphere(2)
    verts, faces = sphere.verts_packed(), sphere.faces_packed()
    inverted = faces[:, [0, 2, 1]]
    half = torch.where((verts[faces].mean(1)[:, 2] > 0)[:, None], inverted, faces)
    fitted = Meshes(verts=[verts, verts, verts], faces=[faces, inverted, half])
    target = Meshes(verts=[verts] * 3, faces=[faces] * 3)
    out = flipped_fraction(fitted, target, samples=2000)
    assert out[0] == 0.0 and out[1] == 1.0
    torch.manual_seed(4321)
    points, normals = sample_points_from_meshes(target, 2000, return_normals=True)  # the same draw
    assert float(out[2]) == pytest.approx(_reference_flipped(verts, half, points[2], normals[2]))
    assert 0.4 < float(out[2]) < 0.6


def test_flipped_fraction_degenerate_meshes_and_rng():
    empty = Meshes(verts=[torch.zeros(0, 3)], faces=[torch.zeros(0, 3, dtype=torch.int64)])
    cube = _mesh(CUBE_VERTS, CUBE_FACES)
    assert flipped_fraction(empty, cube, samples=100).tolist() == [0.0]
    flat = _mesh(torch.zeros(8, 3), CUBE_FACES)  # every face of zero area: no normal, not flipped
    torch.manual_seed(0)
    state = torch.get_rng_state()
    assert flipped_fraction(flat, cube, samples=100).tolist() == [0.0]
    assert torch.equal(torch.get_rng_state(), state)
    with pytest.raises(ValueError, match="same size"):
        flipped_fraction(cube.extend(2), cube)
