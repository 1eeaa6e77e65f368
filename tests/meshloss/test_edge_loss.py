"""mesh_edge_loss against a loop reference and hand-computed values."""

from __future__ import annotations

import pytest
import torch
from diffmesh.meshcore import Meshes
from diffmesh.meshloss import mesh_edge_loss


def reference_edge_loss(verts_list, faces_list, target):
    total = 0.0
    for verts, faces in zip(verts_list, faces_list, strict=True):
        edges = set()
        for face in faces.tolist():
            for k in range(3):
                a, b = face[k], face[(k + 1) % 3]
                edges.add((min(a, b), max(a, b)))
        if not edges:
            continue
        per_mesh = 0.0
        for a, b in edges:
            length = float((verts[a] - verts[b]).norm())
            per_mesh += (length - target) ** 2
        total += per_mesh / len(edges)
    return total / len(verts_list)


@pytest.mark.parametrize("target", [0.0, 0.7])
def test_matches_reference(mesh_lists, target):
    loss = mesh_edge_loss(Meshes(*mesh_lists), target_length=target)
    assert loss.shape == ()
    assert float(loss) == pytest.approx(reference_edge_loss(*mesh_lists, target), rel=1e-5)


def test_unit_edge_triangle():
    verts = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.5, 3**0.5 / 2, 0.0]])
    mesh = Meshes([verts], [torch.tensor([[0, 1, 2]])])
    assert float(mesh_edge_loss(mesh)) == pytest.approx(1.0)
    assert float(mesh_edge_loss(mesh, target_length=1.0)) == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("target", [0.0, 0.5])
@pytest.mark.parametrize("check", [torch.autograd.gradcheck, torch.autograd.gradgradcheck])
def test_gradcheck(mesh_lists, target, check):
    """First- and second-order gradients (create_graph=True) through the hand-written backward."""
    verts_list, faces_list = mesh_lists
    sizes = [v.shape[0] for v in verts_list]
    packed = torch.cat(verts_list).requires_grad_(True)

    def fn(v):
        return mesh_edge_loss(Meshes(list(torch.split(v, sizes)), faces_list), target)

    assert check(fn, (packed,))


@pytest.mark.parametrize("target", [0.0, 0.5])
def test_degenerate_faces_are_finite(target):
    """Duplicate vertices (zero-length edges), a collinear face, a single triangle."""
    verts = torch.tensor([[0.0, 0, 0], [0.0, 0, 0], [1.0, 0, 0], [2.0, 0, 0], [0.0, 1, 0]],
                         requires_grad=True)
    faces = torch.tensor([[0, 1, 2], [1, 2, 3], [0, 2, 4]])
    loss = mesh_edge_loss(Meshes([verts], [faces]), target)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(verts.grad).all()


def test_empty_batch_is_zero_with_graph():
    verts = torch.zeros(0, 3, requires_grad=True)
    loss = mesh_edge_loss(Meshes([verts], [torch.zeros(0, 3, dtype=torch.int64)]))
    loss.backward()
    assert float(loss.detach()) == 0.0


def test_bad_input_raises():
    with pytest.raises(TypeError, match="meshes must be a Meshes"):
        mesh_edge_loss(torch.zeros(3, 3))
    mesh = Meshes([torch.rand(3, 3)], [torch.tensor([[0, 1, 2]])])
    with pytest.raises(TypeError, match="target_length"):
        mesh_edge_loss(mesh, target_length="1")
