"""Meshes batch methods added for PyTorch3D parity: copies from verts_list/faces_list,
the torch.tensor([]) empty-mesh idiom, split, get_mesh_verts_faces, equisized."""

from __future__ import annotations

import pytest
import torch
from diffmesh.meshcore import Meshes


def test_list_views_are_copies_that_keep_gradients(mixed_batch) -> None:
    m, verts, faces = mixed_batch
    before_edges = m.edges_packed().clone()
    m.verts_list()[0].add_(1.0)
    m.faces_list()[2].zero_()
    assert torch.equal(m.verts_packed(), torch.cat(verts))
    assert torch.equal(m.faces_list()[2], faces[2])
    assert torch.equal(m.edges_packed(), before_edges)
    x = verts[0].clone().requires_grad_(True)
    Meshes([x], [faces[0]]).verts_list()[0].sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))


def test_empty_meshes_given_as_torch_tensor_empty(cube_mesh) -> None:
    v, f = cube_mesh  # float64
    m = Meshes([v, torch.tensor([]), v], [f, torch.tensor([]), torch.tensor([])])
    assert m.dtype == torch.float64  # the empty (0,) float32 tensor adopts the others' dtype
    assert m.num_verts_per_mesh().tolist() == [8, 0, 8]
    assert m.num_faces_per_mesh().tolist() == [12, 0, 0]
    assert m.valid.tolist() == [True, False, False]
    only = Meshes([torch.tensor([])], [torch.tensor([])])
    assert only.isempty() and only.verts_packed().shape == (0, 3)
    assert only.faces_packed().dtype == torch.long
    with pytest.raises(ValueError, match=r"faces\[0\] has index 0 but verts\[0\] has only 0"):
        Meshes([torch.tensor([])], [torch.tensor([[0, 1, 2]])])


def test_split_and_get_mesh_verts_faces(mixed_batch) -> None:
    m, verts, faces = mixed_batch
    parts = m.split([2, 1])
    assert [len(p) for p in parts] == [2, 1]
    assert torch.equal(parts[1].verts_packed(), verts[2])
    assert torch.equal(parts[0].faces_list()[0], faces[0])
    for i in range(3):
        got_v, got_f = m.get_mesh_verts_faces(i)
        assert torch.equal(got_v, verts[i]) and torch.equal(got_f, faces[i])
    assert torch.equal(m.get_mesh_verts_faces(-1)[0], verts[2])
    with pytest.raises(ValueError, match="index 3 out of range"):
        m.get_mesh_verts_faces(3)
    with pytest.raises(TypeError, match="index must be an int"):
        m.get_mesh_verts_faces(torch.tensor(0))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="split_sizes must be ints"):
        m.split([1.5])  # type: ignore[list-item]


def test_equisized(cube_mesh) -> None:
    v, f = cube_mesh
    assert Meshes([v, v], [f, f]).equisized
    assert Meshes(torch.stack([v, v]), torch.stack([f, f])).equisized
    assert not Meshes([v, v], [f, f[:3]]).equisized
    assert not Meshes([], []).equisized
