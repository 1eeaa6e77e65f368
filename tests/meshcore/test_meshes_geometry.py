"""Meshes geometry added for PyTorch3D parity: given vertex normals, bounding boxes and
the packed Laplacian, against naive references."""

from __future__ import annotations

import pytest
import torch
from diffmesh.meshcore import Meshes


def _normals(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(n, 3, generator=g, dtype=torch.float64), dim=1)


def test_given_verts_normals_are_returned_in_every_view(mixed_batch) -> None:
    _, verts, faces = mixed_batch
    given = [_normals(12, 0), torch.zeros(0, 3, dtype=torch.float64), _normals(8, 1)]
    m = Meshes(verts, faces, verts_normals=given)
    assert m.has_verts_normals()
    assert torch.equal(m.verts_normals_packed(), torch.cat(given))
    assert all(torch.equal(a, b) for a, b in zip(m.verts_normals_list(), given, strict=True))
    assert torch.equal(m.verts_normals_padded()[2, :8], given[2])
    padded = m.verts_normals_padded()
    again = Meshes(verts, faces, verts_normals=padded)  # the padded form, padding ignored
    assert torch.equal(again.verts_normals_packed(), torch.cat(given))


def test_given_verts_normals_kept_or_dropped_as_documented(cube_mesh) -> None:
    v, f = cube_mesh
    given = _normals(8, 2)
    m = Meshes([v], [f], verts_normals=[given])
    computed = Meshes([v], [f]).verts_normals_packed()
    keeps = [
        m.offset_verts(torch.ones(3, dtype=torch.float64)),
        m.scale_verts(2.0),
        m[0],
        m.extend(2)[1],
        m.clone(),
        m.detach(),
        m.to("cpu", copy=True),
    ]
    for kept in keeps:
        assert kept.has_verts_normals()
        assert torch.equal(kept.verts_normals_packed(), given)
    drops = [m.offset_verts(torch.zeros(8, 3, dtype=torch.float64)), m.update_padded(v[None])]
    for dropped in drops:
        assert not dropped.has_verts_normals()
        torch.testing.assert_close(dropped.verts_normals_packed(), computed)
        assert dropped.has_verts_normals()  # computed now: "already present", as PyTorch3D


def test_given_verts_normals_errors(cube_mesh) -> None:
    v, f = cube_mesh
    with pytest.raises(ValueError, match=r"verts_normals\[0\] must have shape \(8, 3\)"):
        Meshes([v], [f], verts_normals=[torch.zeros(7, 3)])
    with pytest.raises(ValueError, match="verts_normals has 2 entries but there are 1"):
        Meshes([v], [f], verts_normals=[v, v])
    with pytest.raises(ValueError, match=r"shape \(1, 8, 3\)"):
        Meshes([v], [f], verts_normals=torch.zeros(1, 9, 3))
    with pytest.raises(ValueError, match="non-finite"):
        Meshes([v], [f], verts_normals=[torch.full((8, 3), float("nan"))])
    with pytest.raises(TypeError, match=r"verts_normals\[0\] must be a float"):
        Meshes([v], [f], verts_normals=[torch.zeros(8, 3, dtype=torch.long)])


def test_bounding_boxes_match_naive_and_gradcheck(mixed_batch) -> None:
    m, verts, faces = mixed_batch
    boxes = m.get_bounding_boxes()
    assert boxes.shape == (3, 3, 2)
    for i in (0, 2):
        want = torch.stack([verts[i].min(0).values, verts[i].max(0).values], dim=1)
        assert torch.equal(boxes[i], want)
    assert not boxes[1].any()  # mesh without vertices: zeros
    g = torch.Generator().manual_seed(4)
    jitter = torch.rand(12, 3, generator=g, dtype=torch.float64) * 1e-3  # break ties
    x = (verts[0] + jitter).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: Meshes([t], [faces[0]]).get_bounding_boxes(), (x,))


def test_laplacian_packed_matches_naive_and_is_shared(mixed_batch) -> None:
    m, verts, _ = mixed_batch
    lap = m.laplacian_packed().to_dense()
    total = sum(v.shape[0] for v in verts)
    neighbours: list[set[int]] = [set() for _ in range(total)]
    for a, b in m.edges_packed().tolist():
        neighbours[a].add(b)
        neighbours[b].add(a)
    want = -torch.eye(total, dtype=torch.float64)
    for i, nbrs in enumerate(neighbours):
        for j in nbrs:
            want[i, j] = 1.0 / len(nbrs)
    torch.testing.assert_close(lap, want)
    moved = m.offset_verts(torch.zeros(3, dtype=torch.float64))
    assert moved.laplacian_packed() is m.laplacian_packed()
    empty = Meshes([torch.tensor([])], [torch.tensor([])])
    assert empty.laplacian_packed().shape == (0, 0)
