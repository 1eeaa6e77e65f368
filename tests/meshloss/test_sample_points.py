"""sample_points_from_meshes: reference draws, statistics, gradients and degenerate meshes."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from diffmesh.meshcore import Meshes, TexturesUV, TexturesVertex
from diffmesh.meshio import ico_sphere
from diffmesh.meshloss import sample_points_from_meshes


def reference_draws(verts_list, faces_list, num_samples, seed):
    """The documented random stream, with loops for the areas: ``torch.multinomial`` on the
    (zero-padded) face areas of the non-empty meshes, then ``torch.rand(2, N_valid, S)``.

    Returns:
        valid: list of N bools; choice: ``(N_valid, S)`` face index within its mesh;
        uv: ``(2, N_valid, S)`` the uniform draws.
    """
    g = torch.Generator().manual_seed(seed)
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
    return valid, choice, uv


def reference_samples(verts_list, faces_list, num_samples, seed):
    """Same random stream, loops for everything else: areas, faces, points, normals."""
    n = len(verts_list)
    valid, choice, uv = reference_draws(verts_list, faces_list, num_samples, seed)
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


def reference_barycentrics(uv):
    """``(..., 3)`` documented barycentrics of the draws ``uv (2, ...)``."""
    sqrt_u = uv[0].sqrt()
    return torch.stack([1 - sqrt_u, sqrt_u * (1 - uv[1]), sqrt_u * uv[1]], dim=-1)


def reference_uv_lookup(image, uv, align_corners):
    """``(S, C)`` bilinear lookup of ``image (H, W, C)`` (row 0 at the top) at ``uv (S, 2)``
    with ``grid_sample``, as PyTorch3D's TexturesUV: x = 2u - 1, y = 1 - 2v (v runs bottom to
    top), border padding."""
    grid = torch.stack([2 * uv[:, 0] - 1, 1 - 2 * uv[:, 1]], dim=-1).view(1, 1, -1, 2)
    out = F.grid_sample(image.permute(2, 0, 1)[None], grid, mode="bilinear",
                        padding_mode="border", align_corners=align_corners)
    return out[0, :, 0].t()


_MAP_H, _MAP_W = 8, 16


def _pixel_centres(align_corners):
    """(u of each column, v of each row) of the pixel centres; row 0 is the top (v = 1)."""
    if align_corners:
        u = torch.arange(_MAP_W, dtype=torch.float64) / (_MAP_W - 1)
        v = 1 - torch.arange(_MAP_H, dtype=torch.float64) / (_MAP_H - 1)
    else:
        u = (torch.arange(_MAP_W, dtype=torch.float64) + 0.5) / _MAP_W
        v = 1 - (torch.arange(_MAP_H, dtype=torch.float64) + 0.5) / _MAP_H
    return u, v


def _gradient_maps(n, align_corners, seed):
    """``(n, H, W, 3)`` float64 maps: channels 0 and 1 hold the u and v of each pixel centre
    (a bilinear lookup of such a map returns the uv itself, clamped to the border centres),
    channel 2 a random image, different for every mesh."""
    u, v = _pixel_centres(align_corners)
    g = torch.Generator().manual_seed(seed)
    grad_u = u.expand(n, _MAP_H, _MAP_W)
    grad_v = v[:, None].expand(n, _MAP_H, _MAP_W)
    noise = 0.5 + torch.rand((n, _MAP_H, _MAP_W), generator=g, dtype=torch.float64)
    return torch.stack([grad_u, grad_v, noise], dim=-1)


def _clamped_uv(uv, align_corners):
    u, v = _pixel_centres(align_corners)
    return torch.stack([uv[:, 0].clamp(float(u[0]), float(u[-1])),
                        uv[:, 1].clamp(float(v[-1]), float(v[0]))], dim=1)


@pytest.mark.parametrize("align_corners", [False, True])
def test_uv_textures_match_reference_lookup(align_corners):
    """TexturesUV through the sampler, on a batch (ico_sphere(1), empty, two triangles) whose
    faces_uvs differ from the faces and whose UVs reach outside [0, 1]: every texture value is
    the bilinear lookup, in its own mesh's map, at the UV interpolated with the barycentrics
    of the documented draws; the empty mesh's rows are zeros."""
    g = torch.Generator().manual_seed(11)
    sphere = ico_sphere(1)
    quad_verts = torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [1.0, 2.0, 0], [0, 2.0, 0.5]],
                              dtype=torch.float64)
    verts_list = [sphere.verts_packed().double(), torch.zeros(0, 3, dtype=torch.float64),
                  quad_verts]
    faces_list = [sphere.faces_packed(), torch.zeros(0, 3, dtype=torch.int64),
                  torch.tensor([[0, 1, 2], [0, 2, 3]])]
    num_uvs = [30, 0, 5]
    verts_uvs = [-0.1 + 1.2 * torch.rand((t, 2), generator=g, dtype=torch.float64)
                 for t in num_uvs]
    faces_uvs = [torch.randint(0, max(t, 1), (f.shape[0], 3), generator=g)
                 for t, f in zip(num_uvs, faces_list, strict=True)]
    maps = _gradient_maps(3, align_corners, seed=12)
    textures = TexturesUV(maps, faces_uvs, verts_uvs, align_corners=align_corners)
    mesh = Meshes(verts_list, faces_list, textures=textures)
    num = 60
    points, normals, colours = sample_points_from_meshes(
        mesh, num, return_normals=True, return_textures=True,
        generator=torch.Generator().manual_seed(5))
    assert colours.shape == (3, num, 3) and colours.dtype == torch.float64
    assert (colours[1] == 0).all()
    ref_points, ref_normals = reference_samples(verts_list, faces_list, num, seed=5)
    torch.testing.assert_close(points, ref_points, rtol=1e-7, atol=1e-12)
    torch.testing.assert_close(normals, ref_normals, rtol=1e-7, atol=1e-12)

    valid, choice, uv = reference_draws(verts_list, faces_list, num, seed=5)
    bary = reference_barycentrics(uv)  # (N_valid, S, 3)
    for row, m in enumerate(i for i, ok in enumerate(valid) if ok):
        corners = verts_uvs[m][faces_uvs[m][choice[row]]]  # (S, corner, 2)
        sample_uv = (bary[row, :, :, None] * corners).sum(1)
        expected = reference_uv_lookup(maps[m], sample_uv, align_corners)
        torch.testing.assert_close(colours[m], expected, rtol=1e-10, atol=1e-12)
        # the gradient channels give the uv back, clamped to the centres of the border pixels
        torch.testing.assert_close(colours[m, :, :2], _clamped_uv(sample_uv, align_corners),
                                   rtol=1e-10, atol=1e-12)
    # the same values without normals (the textures are the last output either way)
    _, colours_only = sample_points_from_meshes(mesh, num, return_textures=True,
                                                generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(colours_only, colours, rtol=0, atol=0)


def test_uv_textures_follow_the_sampled_points():
    """A flat mesh whose UVs are its (x, y) coordinates: each sample's colour is the map read
    at the sample's own (x, y), whatever the draws (the UVs go past [0, 1] to reach the
    clamped border)."""
    verts = torch.tensor([[-0.2, -0.2, 0.0], [1.2, -0.2, 0], [1.2, 1.2, 0], [-0.2, 1.2, 0],
                          [0.5, 0.4, 0]], dtype=torch.float64)
    faces = torch.tensor([[0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4]])
    maps = _gradient_maps(1, False, seed=3)
    mesh = Meshes([verts], [faces], textures=TexturesUV(maps, [faces], [verts[:, :2]]))
    points, colours = sample_points_from_meshes(mesh, 400, return_textures=True,
                                                generator=torch.Generator().manual_seed(8))
    xy = points[0, :, :2]
    torch.testing.assert_close(colours[0], reference_uv_lookup(maps[0], xy, False),
                               rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(colours[0, :, :2], _clamped_uv(xy, False), rtol=1e-10, atol=1e-12)
    u, v = _pixel_centres(False)
    outside = (xy[:, 0] < u[0]) | (xy[:, 0] > u[-1]) | (xy[:, 1] < v[-1]) | (xy[:, 1] > v[0])
    assert outside.any() and (~outside).any()  # both the interior and the border are exercised


def _single_triangle() -> tuple[torch.Tensor, torch.Tensor]:
    """One triangle in general position (not parallel to any axis plane), float64."""
    verts = torch.tensor([[0.3, -0.2, 0.5], [1.4, 0.1, 0.2], [0.1, 1.2, 0.9]],
                         dtype=torch.float64)
    return verts, torch.tensor([[0, 1, 2]])


def test_single_triangle_samples_lie_inside_it():
    verts, faces = _single_triangle()
    num = 500
    points, normals = sample_points_from_meshes(Meshes([verts], [faces]), num,
                                                return_normals=True,
                                                generator=torch.Generator().manual_seed(4))
    a, b, c = verts
    normal = torch.linalg.cross(b - a, c - a, dim=0)
    normal = normal / normal.norm()
    # in the triangle's plane
    assert float(((points[0] - a) @ normal).abs().max()) < 1e-12
    torch.testing.assert_close(normals[0], normal.expand(num, 3))
    # barycentric coordinates recovered from the points: all >= 0 (inside the triangle) ...
    basis = torch.stack([b - a, c - a], dim=1)  # (xyz, 2)
    w12 = torch.linalg.lstsq(basis, (points[0] - a).t()).solution.t()  # (S, 2)
    bary = torch.cat([1 - w12.sum(1, keepdim=True), w12], dim=1)
    assert (bary >= -1e-12).all()
    # ... and equal to the documented barycentrics of the draws
    _, _, uv = reference_draws([verts], [faces], num, seed=4)
    torch.testing.assert_close(bary, reference_barycentrics(uv)[0], rtol=0, atol=1e-12)


def test_single_triangle_gradients():
    verts, faces = _single_triangle()
    verts.requires_grad_(True)

    def fn(v):
        return sample_points_from_meshes(Meshes([v], [faces]), 8, return_normals=True,
                                         generator=torch.Generator().manual_seed(5))

    assert torch.autograd.gradcheck(fn, (verts,))
    # by hand: d(sum of all coordinates of all points) / d v_k = sum_s w_k(s) in x, y and z
    points, _ = fn(verts)
    (grad,) = torch.autograd.grad(points.sum(), verts)
    _, _, uv = reference_draws([verts.detach()], [faces], 8, seed=5)
    expected = reference_barycentrics(uv)[0].sum(0)[:, None].expand(3, 3)
    torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("corners", [
    [[0.0, 0, 0], [1.0, 0, 0], [3.0, 0, 0]],  # collinear
    [[0.2, 0.4, 0.1], [0.2, 0.4, 0.1], [1.0, 2.0, 3.0]],  # a repeated vertex
    [[0.5, -1.0, 2.0]] * 3,  # a point
], ids=["collinear", "repeated-vertex", "point"])
def test_single_zero_area_triangle_is_finite(corners):
    verts = torch.tensor(corners, dtype=torch.float64, requires_grad=True)
    faces = torch.tensor([[0, 1, 2]])
    points, normals = sample_points_from_meshes(Meshes([verts], [faces]), 50,
                                                return_normals=True,
                                                generator=torch.Generator().manual_seed(2))
    assert torch.isfinite(points).all() and (normals == 0).all()
    ref_points, _ = reference_samples([verts.detach()], [faces], 50, seed=2)
    torch.testing.assert_close(points, ref_points, rtol=1e-12, atol=1e-12)
    (grad,) = torch.autograd.grad((points.sum() + normals.sum()), verts)
    assert torch.isfinite(grad).all()

    def fn(v):
        return sample_points_from_meshes(Meshes([v], [faces]), 6,
                                         generator=torch.Generator().manual_seed(2))

    assert torch.autograd.gradcheck(fn, (verts,))


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
