"""packed_to_padded / padded_to_packed, mesh_face_areas_normals, laplacian and
norm_laplacian against naive references, with gradchecks and degenerate inputs."""

from __future__ import annotations

import pytest
import torch
from diffmesh.meshcore import (
    Meshes,
    laplacian,
    mesh_face_areas_normals,
    norm_laplacian,
    packed_to_padded,
    padded_to_packed,
)


def _naive_packed_to_padded(x: torch.Tensor, first: list[int], max_size: int) -> torch.Tensor:
    out = x.new_zeros((len(first), max_size, *x.shape[1:]))
    for i, start in enumerate(first):
        end = first[i + 1] if i + 1 < len(first) else x.shape[0]
        for j in range(end - start):
            out[i, j] = x[start + j]
    return out


@pytest.mark.parametrize("shape", [(9,), (9, 2), (9, 2, 3)])
def test_packed_to_padded_matches_naive_and_round_trips(shape: tuple[int, ...]) -> None:
    x = torch.rand(shape, dtype=torch.float64)
    first = torch.tensor([0, 4, 4, 6])  # sizes 4, 0, 2, 3
    padded = packed_to_padded(x, first, 5)
    assert padded.shape == (4, 5, *shape[1:])
    assert torch.equal(padded, _naive_packed_to_padded(x, first.tolist(), 5))
    assert torch.equal(padded_to_packed(padded, first, 9), x)


def test_padded_to_packed_max_size_dim() -> None:
    padded = torch.rand(2, 3, 4, dtype=torch.float64)  # max_size 4 on dim 2
    first = torch.tensor([0, 4])
    out = padded_to_packed(padded, first, 7, max_size_dim=2)
    assert out.shape == (7, 3)
    assert torch.equal(out[:4], padded[0].t()) and torch.equal(out[4:], padded[1, :, :3].t())


def test_packed_padded_gradcheck() -> None:
    x = torch.rand(7, 2, dtype=torch.float64, requires_grad=True)
    first = torch.tensor([0, 3, 3])
    assert torch.autograd.gradcheck(lambda t: packed_to_padded(t, first, 4), (x,))
    p = torch.rand(3, 4, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: padded_to_packed(t, first, 7), (p,))


def test_packed_padded_empty_and_errors() -> None:
    empty = packed_to_padded(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long), 0)
    assert empty.shape == (0, 0, 3)
    assert packed_to_padded(torch.zeros(0), torch.tensor([0, 0]), 0).shape == (2, 0)
    x = torch.rand(6)
    with pytest.raises(ValueError, match="has 4 rows but max_size is 3"):
        packed_to_padded(x, torch.tensor([0, 2]), 3)
    with pytest.raises(TypeError, match="first_idxs must be a long"):
        packed_to_padded(x, torch.tensor([0, 2], dtype=torch.int32), 4)
    with pytest.raises(ValueError, match="non-decreasing"):
        packed_to_padded(x, torch.tensor([2, 0]), 4)
    with pytest.raises(ValueError, match=r"\[0, 6\]"):
        packed_to_padded(x, torch.tensor([0, 7]), 4)
    with pytest.raises(TypeError, match="max_size"):
        packed_to_padded(x, torch.tensor([0, 2]), 4.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        padded_to_packed(torch.rand(2, 4), torch.tensor([0]), 6)


def test_mesh_face_areas_normals_matches_naive_and_meshes(ico_mesh) -> None:
    verts, faces = ico_mesh
    areas, normals = mesh_face_areas_normals(verts, faces)
    for f, (a, b, c) in enumerate(faces.tolist()):
        cross = torch.linalg.cross(verts[b] - verts[a], verts[c] - verts[a])
        torch.testing.assert_close(areas[f], 0.5 * cross.norm())
        torch.testing.assert_close(normals[f], cross / cross.norm())
    mesh = Meshes([verts], [faces])
    torch.testing.assert_close(areas, mesh.faces_areas_packed())
    torch.testing.assert_close(normals, mesh.faces_normals_packed())


def test_mesh_face_areas_normals_gradcheck_and_degenerate(cube_mesh) -> None:
    verts, faces = cube_mesh
    verts = verts.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: mesh_face_areas_normals(v, faces), (verts,))
    flat = torch.tensor([[0.0, 0, 0], [1, 0, 0], [2, 0, 0]], dtype=torch.float64)
    flat.requires_grad_(True)
    areas, normals = mesh_face_areas_normals(flat, torch.tensor([[0, 1, 2], [0, 0, 0]]))
    (areas.sum() + normals.sum()).backward()
    assert torch.equal(areas.detach(), torch.zeros(2, dtype=torch.float64))
    assert torch.isfinite(flat.grad).all()
    a, n = mesh_face_areas_normals(flat, torch.zeros(0, 3, dtype=torch.long))
    assert a.shape == (0,) and n.shape == (0, 3)


def test_mesh_face_areas_normals_errors(cube_mesh) -> None:
    verts, faces = cube_mesh
    with pytest.raises(TypeError, match="faces must be a long"):
        mesh_face_areas_normals(verts, faces.float())
    with pytest.raises(ValueError, match=r"faces values must lie in \[0, 8\)"):
        mesh_face_areas_normals(verts, faces + 1)
    with pytest.raises(TypeError, match="verts must be a float"):
        mesh_face_areas_normals(verts.long(), faces)


def _naive_laplacian(num_verts: int, edges: torch.Tensor) -> torch.Tensor:
    adj = torch.zeros(num_verts, num_verts, dtype=torch.float64)
    for i, j in edges.tolist():
        adj[i, j] += 1
        adj[j, i] += 1
    deg = adj.sum(1)
    out = -torch.eye(num_verts, dtype=torch.float64)
    for i in range(num_verts):
        for j in range(num_verts):
            if adj[i, j] > 0:
                out[i, j] += adj[i, j] / deg[i]
    return out


def test_laplacian_matches_naive_with_isolated_vertex(ico_mesh) -> None:
    verts, faces = ico_mesh
    verts = torch.cat([verts, torch.zeros(1, 3, dtype=torch.float64)])  # vertex 12: isolated
    mesh = Meshes([verts], [faces])
    edges = mesh.edges_packed()
    lap = laplacian(verts, edges)
    assert lap.is_sparse and lap.is_coalesced() and lap.dtype == torch.float64
    torch.testing.assert_close(lap.to_dense(), _naive_laplacian(13, edges))
    torch.testing.assert_close(mesh.laplacian_packed().to_dense(), lap.to_dense())
    assert laplacian(verts[:0], edges[:0]).shape == (0, 0)


def test_norm_laplacian_matches_naive_gradcheck_and_zero_length_edge(cube_mesh) -> None:
    verts, faces = cube_mesh
    edges = Meshes([verts], [faces]).edges_packed()
    lap = norm_laplacian(verts, edges).to_dense()
    want = torch.zeros(8, 8, dtype=torch.float64)
    for i, j in edges.tolist():
        want[i, j] = want[j, i] = 1.0 / ((verts[i] - verts[j]).norm() + 1e-12)
    torch.testing.assert_close(lap, want)
    v = verts.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: norm_laplacian(x, edges).to_dense(), (v,))
    dup = torch.tensor([[0.0, 0, 0], [0, 0, 0], [1, 0, 0]], dtype=torch.float64)
    dup.requires_grad_(True)
    out = norm_laplacian(dup, torch.tensor([[0, 1], [1, 2]]), eps=1e-3)
    out.to_dense().sum().backward()
    assert torch.isfinite(dup.grad).all()
    torch.testing.assert_close(out.to_dense()[0, 1], torch.tensor(1e3, dtype=torch.float64))
