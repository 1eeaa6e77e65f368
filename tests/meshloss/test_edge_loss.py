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
    """Duplicate vertices (zero-length edges) and a collinear face next to a proper one (the
    single-triangle cases are in test_single_triangle_by_hand and
    test_single_zero_area_triangle)."""
    verts = torch.tensor([[0.0, 0, 0], [0.0, 0, 0], [1.0, 0, 0], [2.0, 0, 0], [0.0, 1, 0]],
                         requires_grad=True)
    faces = torch.tensor([[0, 1, 2], [1, 2, 3], [0, 2, 4]])
    loss = mesh_edge_loss(Meshes([verts], [faces]), target)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(verts.grad).all()


@pytest.mark.parametrize("target", [0.0, 1.0, 2.5])
def test_single_triangle_by_hand(target):
    """A real single triangle (sides 3, 4, 5, not in an axis plane): the loss
    ``(1/3) sum_e (L_e - t)^2`` and its gradient
    ``d/dv_i = (2/3) sum_{j != i} (L_ij - t) / L_ij (v_i - v_j)``, by hand; and a gradcheck."""
    rotation = torch.linalg.matrix_exp(torch.tensor([[0.0, -0.3, 0.5], [0.3, 0.0, -0.2],
                                                     [-0.5, 0.2, 0.0]], dtype=torch.float64))
    flat = torch.tensor([[0.0, 0, 0], [3.0, 0, 0], [0.0, 4.0, 0]], dtype=torch.float64)
    verts = (flat @ rotation.t() + torch.tensor([0.1, -0.4, 0.7], dtype=torch.float64))
    verts.requires_grad_(True)
    faces = torch.tensor([[0, 1, 2]])
    loss = mesh_edge_loss(Meshes([verts], [faces]), target)
    expected = ((3 - target) ** 2 + (4 - target) ** 2 + (5 - target) ** 2) / 3
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-12)
    (grad,) = torch.autograd.grad(loss, verts)
    v = verts.detach()
    lengths = {(0, 1): 3.0, (0, 2): 4.0, (1, 2): 5.0}
    hand = torch.zeros(3, 3, dtype=torch.float64)
    for (i, j), length in lengths.items():
        g = 2 / 3 * (length - target) / length * (v[i] - v[j])
        hand[i] += g
        hand[j] -= g
    torch.testing.assert_close(grad, hand, rtol=1e-10, atol=1e-12)
    assert torch.autograd.gradcheck(
        lambda x: mesh_edge_loss(Meshes([x], [faces]), target), (verts,))


@pytest.mark.parametrize("target", [0.0, 0.5])
def test_single_zero_area_triangle(target):
    """One triangle with a repeated vertex (edges of length 0, 1, 1): value by hand, finite
    gradients, the zero-length edge contributing nothing to them."""
    verts = torch.tensor([[0.0, 0, 0], [0.0, 0, 0], [1.0, 0, 0]], dtype=torch.float64,
                         requires_grad=True)
    loss = mesh_edge_loss(Meshes([verts], [torch.tensor([[0, 1, 2]])]), target)
    expected = (target**2 + 2 * (1 - target) ** 2) / 3
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-12)
    (grad,) = torch.autograd.grad(loss, verts)
    assert torch.isfinite(grad).all()
    slope = 2 / 3 * (1 - target)  # of each unit edge, along +x for the vertex at x = 1
    hand = torch.tensor([[-slope, 0, 0], [-slope, 0, 0], [2 * slope, 0, 0]],
                        dtype=torch.float64)
    torch.testing.assert_close(grad, hand, rtol=1e-12, atol=1e-12)


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
