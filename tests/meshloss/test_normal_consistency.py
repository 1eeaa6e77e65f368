"""mesh_normal_consistency against a loop reference and hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
from diffmesh.meshcore import Meshes
from diffmesh.meshloss import mesh_normal_consistency


def reference_normal_consistency(verts_list, faces_list):
    total = 0.0
    for verts, faces in zip(verts_list, faces_list, strict=True):
        opposite: dict[tuple[int, int], list[int]] = {}
        for face in faces.tolist():
            for k in range(3):
                a, b = face[(k + 1) % 3], face[(k + 2) % 3]
                opposite.setdefault((min(a, b), max(a, b)), []).append(face[k])
        terms = []
        for (a, b), opp in sorted(opposite.items()):
            edge = verts[b] - verts[a]
            for i in range(len(opp)):
                for j in range(i + 1, len(opp)):
                    n0 = torch.linalg.cross(edge, verts[opp[i]] - verts[a], dim=0)
                    n1 = -torch.linalg.cross(edge, verts[opp[j]] - verts[a], dim=0)
                    cos = float(n0 @ n1) / max(float(n0.norm() * n1.norm()), 1e-8)
                    terms.append(1.0 - cos)
        if terms:
            total += sum(terms) / len(terms)
    return total / len(verts_list)


def test_matches_reference(mesh_lists):
    loss = mesh_normal_consistency(Meshes(*mesh_lists))
    assert float(loss) == pytest.approx(reference_normal_consistency(*mesh_lists), rel=1e-5)


def _hinge(angle: float) -> Meshes:
    """Two faces on the edge (0, 1); the second rotated by ``angle`` out of the plane."""
    verts = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.5, 1.0, 0.0],
                          [0.5, -math.cos(angle), math.sin(angle)]], dtype=torch.float64)
    return Meshes([verts], [torch.tensor([[0, 1, 2], [1, 0, 3]])])


def test_hand_computed_hinges():
    assert float(mesh_normal_consistency(_hinge(0.0))) == pytest.approx(0.0, abs=1e-12)
    assert float(mesh_normal_consistency(_hinge(math.pi / 2))) == pytest.approx(1.0)
    # winding does not matter: the same coplanar pair with the second face flipped
    verts = _hinge(0.0).verts_packed()
    flipped = Meshes([verts], [torch.tensor([[0, 1, 2], [0, 1, 3]])])
    assert float(mesh_normal_consistency(flipped)) == pytest.approx(0.0, abs=1e-12)


def test_non_manifold_edge_counts_every_pair():
    """Three faces on one edge give three pairs."""
    verts = torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [0.5, 1, 0], [0.5, -1, 0], [0.5, 0, 1]],
                         dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2], [1, 0, 3], [0, 1, 4]])
    # pairs: (2, 3) coplanar -> 0; (2, 4) and (3, 4) at 90 degrees -> 1 each
    assert float(mesh_normal_consistency(Meshes([verts], [faces]))) == pytest.approx(2.0 / 3.0)


@pytest.mark.parametrize("check", [torch.autograd.gradcheck, torch.autograd.gradgradcheck])
def test_gradcheck(mesh_lists, check):
    """First- and second-order gradients (create_graph=True) through the hand-written backward."""
    verts_list, faces_list = mesh_lists
    sizes = [v.shape[0] for v in verts_list]
    packed = torch.cat(verts_list).requires_grad_(True)

    def fn(v):
        return mesh_normal_consistency(Meshes(list(torch.split(v, sizes)), faces_list))

    assert check(fn, (packed,))


def test_degenerate_faces_are_finite():
    """A zero-area face (duplicate vertex) and a collinear face next to normal ones."""
    verts = torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [0.5, 1, 0], [1.0, 0, 0], [2.0, 0, 0],
                          [0.5, -1, 0.3]], requires_grad=True)
    faces = torch.tensor([[0, 1, 2], [1, 0, 3], [0, 1, 4], [1, 0, 5]])
    loss = mesh_normal_consistency(Meshes([verts], [faces]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(verts.grad).all()


def test_degenerate_faces_have_finite_second_order_gradients():
    """Zero-area faces (n = 0) under create_graph=True: a Hessian-vector product is finite."""
    verts = torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [0.5, 1, 0], [1.0, 0, 0], [2.0, 0, 0],
                          [0.5, -1, 0.3]], dtype=torch.float64, requires_grad=True)
    faces = torch.tensor([[0, 1, 2], [1, 0, 3], [0, 1, 4], [1, 0, 5]])
    grad, = torch.autograd.grad(mesh_normal_consistency(Meshes([verts], [faces])), verts,
                                create_graph=True)
    hvp, = torch.autograd.grad(grad.sum(), verts)
    assert torch.isfinite(grad).all() and torch.isfinite(hvp).all()


@pytest.mark.parametrize("corners", [
    [[0.3, -0.2, 0.5], [1.4, 0.1, 0.2], [0.1, 1.2, 0.9]],  # a proper triangle
    [[0.0, 0, 0], [1.0, 0, 0], [3.0, 0, 0]],  # zero area: collinear
    [[0.5, -1.0, 2.0]] * 3,  # zero area: a point
], ids=["proper", "collinear", "point"])
def test_single_triangle_is_zero_with_finite_gradients(corners):
    """No edge is shared, so there is no pair: the loss is 0 (PyTorch3D's value), a constant,
    whose gradient must be finite and zero."""
    verts = torch.tensor(corners, dtype=torch.float64, requires_grad=True)
    loss = mesh_normal_consistency(Meshes([verts], [torch.tensor([[0, 1, 2]])]))
    assert loss.shape == () and float(loss.detach()) == 0.0
    (grad,) = torch.autograd.grad(loss, verts)
    assert torch.isfinite(grad).all() and (grad == 0).all()


def test_meshes_without_shared_edges_count_as_zero():
    """A single triangle and two disjoint triangles next to a hinge at 90 degrees: each mesh
    without face pairs contributes 0 but counts in the mean over the batch, (0 + 0 + 1) / 3;
    their vertices get zero gradients, finite everywhere, and a gradcheck passes."""
    single_v, single_f = _single([[0.3, -0.2, 0.5], [1.4, 0.1, 0.2], [0.1, 1.2, 0.9]])
    disjoint_v = torch.cat([single_v, single_v + 2.0])
    disjoint_f = torch.tensor([[0, 1, 2], [3, 5, 4]])
    hinge = _hinge(math.pi / 2)
    verts_list = [single_v, disjoint_v, hinge.verts_packed()]
    faces_list = [single_f, disjoint_f, hinge.faces_packed()]
    sizes = [v.shape[0] for v in verts_list]
    packed = torch.cat(verts_list).requires_grad_(True)

    def fn(v):
        return mesh_normal_consistency(Meshes(list(torch.split(v, sizes)), faces_list))

    loss = fn(packed)
    assert float(loss.detach()) == pytest.approx(1.0 / 3.0, rel=1e-12)
    assert float(loss.detach()) == pytest.approx(
        reference_normal_consistency(verts_list, faces_list), rel=1e-12)
    (grad,) = torch.autograd.grad(loss, packed)
    assert torch.isfinite(grad).all() and (grad[:9] == 0).all() and (grad[9:] != 0).any()
    assert torch.autograd.gradcheck(fn, (packed,))
    two_alone = Meshes([single_v, disjoint_v], [single_f, disjoint_f])
    assert float(mesh_normal_consistency(two_alone)) == 0.0


def _single(corners):
    return torch.tensor(corners, dtype=torch.float64), torch.tensor([[0, 1, 2]])


def test_single_triangle_and_empty():
    single = Meshes([torch.rand(3, 3, requires_grad=True)], [torch.tensor([[0, 1, 2]])])
    assert float(mesh_normal_consistency(single).detach()) == 0.0
    empty = Meshes([torch.zeros(0, 3)], [torch.zeros(0, 3, dtype=torch.int64)])
    assert float(mesh_normal_consistency(empty)) == 0.0


def test_bad_input_raises():
    with pytest.raises(TypeError, match="meshes must be a Meshes"):
        mesh_normal_consistency([torch.zeros(3, 3)])
