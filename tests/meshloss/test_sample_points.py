"""sample_points_from_meshes: reference draws, statistics, gradients and degenerate meshes."""

from __future__ import annotations

import math

import pytest
import torch
from diffmesh.meshcore import Meshes, TexturesVertex
from diffmesh.meshloss import sample_points_from_meshes


def reference_samples(verts_list, faces_list, num_samples, seed):
    """Same random stream, loops for everything else: areas, faces, points, normals."""
    g = torch.Generator().manual_seed(seed)
    n = len(verts_list)
    max_faces = max(f.shape[0] for f in faces_list)
    valid = [f.shape[0] > 0 and v.shape[0] > 0 for v, f in zip(verts_list, faces_list, strict=True)]
    rows = []
    for v, f, ok in zip(verts_list, faces_list, valid, strict=True):
        if not ok:
            continue
        row = [0.0] * max_faces
        for i, face in enumerate(f.tolist()):
            a, b, c = (v[k] for k in face)
            row[i] = 0.5 * float(torch.linalg.cross(b - a, c - a, dim=0).norm())
        if sum(row) == 0:
            row = [1.0 if i < f.shape[0] else 0.0 for i in range(max_faces)]
        rows.append(row)
    areas = torch.tensor(rows, dtype=verts_list[0].dtype)
    choice = torch.multinomial(areas, num_samples, replacement=True, generator=g)
    uv = torch.rand((2, len(rows), num_samples), generator=g, dtype=verts_list[0].dtype)
    points = torch.zeros(n, num_samples, 3, dtype=verts_list[0].dtype)
    normals = torch.zeros(n, num_samples, 3, dtype=verts_list[0].dtype)
    r = 0
    for m in range(n):
        if not valid[m]:
            continue
        for s in range(num_samples):
            face = faces_list[m][int(choice[r, s])].tolist()
            a, b, c = (verts_list[m][k] for k in face)
            u, w = float(uv[0, r, s]), float(uv[1, r, s])
            points[m, s] = (1 - math.sqrt(u)) * a + math.sqrt(u) * (1 - w) * b + math.sqrt(u) * w * c
            normal = torch.linalg.cross(b - a, c - a, dim=0)
            length = float(normal.norm())
            normals[m, s] = normal / length if length > 0 else normal
        r += 1
    return points, normals


def test_matches_reference(mesh_lists):
    points, normals = sample_points_from_meshes(
        Meshes(*mesh_lists), 50, return_normals=True, generator=torch.Generator().manual_seed(3))
    ref_points, ref_normals = reference_samples(*mesh_lists, 50, seed=3)
    torch.testing.assert_close(points, ref_points, rtol=1e-5, atol=1e-12)
    torch.testing.assert_close(normals, ref_normals, rtol=1e-5, atol=1e-12)
    assert (points[1] == 0).all()  # the empty mesh


def test_same_generator_state_same_samples(mesh_batch):
    a = sample_points_from_meshes(mesh_batch, 20, generator=torch.Generator().manual_seed(1))
    b = sample_points_from_meshes(mesh_batch, 20, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


def _two_triangles() -> Meshes:
    """Triangle 0 of area 1 (z = 0) and triangle 1 of area 3 (z = 5)."""
    verts = torch.tensor([[0.0, 0, 0], [2.0, 0, 0], [0, 1.0, 0],
                          [0.0, 0, 5], [3.0, 0, 5], [0, 2.0, 5]], dtype=torch.float64)
    return Meshes([verts], [torch.tensor([[0, 1, 2], [3, 4, 5]])])


def test_area_weighted_choice_and_uniform_barycentrics():
    num = 40000
    points = sample_points_from_meshes(_two_triangles(), num,
                                       generator=torch.Generator().manual_seed(0))[0]
    on_big = points[:, 2] > 2.5
    share = float(on_big.double().mean())
    bound = 5 * math.sqrt(0.25 * 0.75 / num)  # five binomial standard deviations
    assert abs(share - 0.75) < bound
    # barycentrics on the small triangle (0,0,0), (2,0,0), (0,1,0): w1 = x / 2, w2 = y
    small = points[~on_big]
    bary = torch.stack([1 - small[:, 0] / 2 - small[:, 1], small[:, 0] / 2, small[:, 1]], dim=1)
    assert (bary > -1e-12).all()
    std_mean = math.sqrt(1.0 / 18.0 / small.shape[0])  # Dirichlet(1, 1, 1): variance 1/18
    torch.testing.assert_close(bary.mean(0), torch.full((3,), 1 / 3, dtype=torch.float64),
                               rtol=0, atol=5 * std_mean)
    # second moment of a uniform point: E[w_k^2] = 1/6
    torch.testing.assert_close((bary**2).mean(0), torch.full((3,), 1 / 6, dtype=torch.float64),
                               rtol=0, atol=0.01)


def test_gradcheck_with_fixed_generator():
    verts = torch.tensor([[0.0, 0, 0], [1.0, 0.1, 0], [0.2, 1.0, 0.1], [0.1, 0.3, 1.2]],
                         dtype=torch.float64, requires_grad=True)
    faces = torch.tensor([[0, 2, 1], [0, 1, 3], [1, 2, 3], [0, 3, 2]])

    def fn(v):
        points, normals = sample_points_from_meshes(
            Meshes([v], [faces]), 6, return_normals=True,
            generator=torch.Generator().manual_seed(7))
        return points, normals

    assert torch.autograd.gradcheck(fn, (verts,))


def test_textures_are_interpolated():
    """With the vertex positions as vertex colours, a sample's colour is its position."""
    verts = torch.tensor([[0.0, 0, 0], [1.0, 0.1, 0], [0.2, 1.0, 0.1], [0.1, 0.3, 1.2]])
    faces = torch.tensor([[0, 2, 1], [0, 1, 3], [1, 2, 3], [0, 3, 2]])
    empty_v, empty_f = torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.int64)
    mesh = Meshes([verts, empty_v], [faces, empty_f],
                  textures=TexturesVertex([verts.clone(), empty_v]))
    points, normals, colours = sample_points_from_meshes(mesh, 30, return_normals=True,
                                                         return_textures=True)
    torch.testing.assert_close(colours, points)
    assert normals.shape == (2, 30, 3)
    points, colours = sample_points_from_meshes(mesh, 30, return_textures=True)
    torch.testing.assert_close(colours, points)


def test_zero_area_and_degenerate_meshes_are_finite():
    """All faces of zero area (uniform choice), duplicate vertices, collinear points."""
    collinear = torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [2.0, 0, 0], [1.0, 0, 0]],
                             requires_grad=True)
    faces = torch.tensor([[0, 1, 2], [1, 3, 2]])
    mesh = Meshes([collinear], [faces])
    points, normals = sample_points_from_meshes(mesh, 100, return_normals=True)
    (points.sum() + normals.sum()).backward()
    assert torch.isfinite(points).all() and torch.isfinite(normals).all()
    assert torch.isfinite(collinear.grad).all()
    assert (normals == 0).all()
    assert (points[..., 1:] == 0).all() and (points[..., 0] >= 0).all() and (points[..., 0] <= 2).all()


def test_empty_meshes_give_zeros():
    empty = Meshes([torch.zeros(0, 3)] * 2, [torch.zeros(0, 3, dtype=torch.int64)] * 2)
    points, normals = sample_points_from_meshes(empty, 5, return_normals=True)
    assert points.shape == (2, 5, 3) and (points == 0).all() and (normals == 0).all()
    assert sample_points_from_meshes(_two_triangles(), 0).shape == (1, 0, 3)


def test_bad_input_raises():
    with pytest.raises(TypeError, match="meshes must be a Meshes"):
        sample_points_from_meshes(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="num_samples must be >= 0"):
        sample_points_from_meshes(_two_triangles(), -1)
    with pytest.raises(TypeError, match="num_samples must be an int"):
        sample_points_from_meshes(_two_triangles(), 10.0)
    with pytest.raises(ValueError, match="textures"):
        sample_points_from_meshes(_two_triangles(), 10, return_textures=True)
