"""Tests for diffmesh.softrender.transforms.Transform3d."""

from __future__ import annotations

import pytest
import torch
from diffmesh.softrender.transforms import Transform3d


def _random_matrix(n: int, generator: torch.Generator) -> torch.Tensor:
    m = torch.randn(n, 4, 4, generator=generator, dtype=torch.float64)
    m[:, :, 3] = torch.rand(n, 4, generator=generator, dtype=torch.float64) * 0.1
    m[:, 3, 3] = 1.0
    return m


def _reference_transform(points: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Point by point: [x, y, z, 1] @ M, then divide by w."""
    out = torch.zeros_like(points)
    for i in range(points.shape[0]):
        for p in range(points.shape[1]):
            row = [*points[i, p].tolist(), 1.0]
            h = [sum(row[k] * float(matrix[i, k, j]) for k in range(4)) for j in range(4)]
            out[i, p] = torch.tensor([h[0] / h[3], h[1] / h[3], h[2] / h[3]])
    return out


def test_identity_default():
    t = Transform3d()
    assert len(t) == 1
    torch.testing.assert_close(t.get_matrix(), torch.eye(4)[None])
    pts = torch.randn(5, 3)
    torch.testing.assert_close(t.transform_points(pts), pts)


def test_transform_points_matches_reference():
    g = torch.Generator().manual_seed(0)
    m = _random_matrix(2, g)
    pts = torch.randn(2, 6, 3, generator=g, dtype=torch.float64)
    out = Transform3d(m).transform_points(pts)
    torch.testing.assert_close(out, _reference_transform(pts, m))


def test_transform_points_shapes_and_broadcast():
    g = torch.Generator().manual_seed(1)
    m = _random_matrix(3, g)
    pts = torch.randn(7, 3, generator=g, dtype=torch.float64)
    out = Transform3d(m).transform_points(pts)
    assert out.shape == (3, 7, 3)
    torch.testing.assert_close(out, _reference_transform(pts.expand(3, 7, 3), m))
    # batch-1 transform on (P, 3) points keeps (P, 3)
    single = Transform3d(m[:1]).transform_points(pts)
    assert single.shape == (7, 3)
    # batch-1 transform on (N, P, 3)
    batched = Transform3d(m[:1]).transform_points(pts.expand(4, 7, 3))
    assert batched.shape == (4, 7, 3)


def test_compose_applies_left_first_and_inverse():
    g = torch.Generator().manual_seed(2)
    a, b = Transform3d(_random_matrix(2, g)), Transform3d(_random_matrix(1, g))
    pts = torch.randn(2, 5, 3, generator=g, dtype=torch.float64)
    # compose(b) = apply a, then b (affine parts only: w stays 1 for affine matrices)
    affine_a = a.get_matrix().clone()
    affine_a[:, :, 3] = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64)
    affine_b = b.get_matrix().clone()
    affine_b[:, :, 3] = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64)
    ta, tb = Transform3d(affine_a), Transform3d(affine_b)
    torch.testing.assert_close(
        ta.compose(tb).transform_points(pts), tb.transform_points(ta.transform_points(pts))
    )
    assert len(a.compose(b)) == 2
    round_trip = a.compose(a.inverse()).get_matrix()
    torch.testing.assert_close(round_trip, torch.eye(4, dtype=torch.float64).expand(2, 4, 4))


def test_eps_clamps_homogeneous_coordinate():
    m = torch.eye(4)
    m[2, 3] = 1.0  # w = z
    m[3, 3] = 0.0
    pts = torch.tensor([[1.0, 2.0, 0.0], [1.0, 2.0, -1e-6], [1.0, 2.0, 2.0]])
    out = Transform3d(m).transform_points(pts, eps=1e-3)
    torch.testing.assert_close(out[0], torch.tensor([1e3, 2e3, 0.0]))  # sign(0) = +1
    torch.testing.assert_close(out[1], torch.tensor([-1e3, -2e3, 1e-3]))
    torch.testing.assert_close(out[2], torch.tensor([0.5, 1.0, 1.0]))
    assert torch.isinf(Transform3d(m).transform_points(pts)[0]).any()


def test_transform_normals_stay_perpendicular():
    g = torch.Generator().manual_seed(3)
    m = _random_matrix(1, g)
    m[:, :, 3] = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64)
    t = Transform3d(m)
    tangent = torch.randn(4, 3, generator=g, dtype=torch.float64)
    normal = torch.linalg.cross(tangent, torch.randn(4, 3, generator=g, dtype=torch.float64))
    new_tangent = tangent @ m[0, :3, :3]
    new_normal = t.transform_normals(normal)
    assert new_normal.shape == (4, 3)
    torch.testing.assert_close(
        (new_tangent * new_normal).sum(-1), torch.zeros(4, dtype=torch.float64)
    )


def test_gradcheck_transform_points():
    g = torch.Generator().manual_seed(4)
    m = _random_matrix(2, g).requires_grad_(True)
    pts = torch.randn(2, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)

    def fn(matrix: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        return Transform3d(matrix).transform_points(points, eps=1e-4)

    assert torch.autograd.gradcheck(fn, (m, pts))


def test_degenerate_inputs_no_nan():
    m = torch.eye(4, dtype=torch.float64).requires_grad_(True)
    empty = torch.zeros(0, 3, dtype=torch.float64, requires_grad=True)
    out = Transform3d(m).transform_points(empty)
    assert out.shape == (0, 3)
    dup = torch.zeros(3, 3, dtype=torch.float64, requires_grad=True)
    out = Transform3d(m).transform_points(dup, eps=1e-6)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(dup.grad).all()
    assert torch.isfinite(m.grad).all()


def test_getitem_to_clone():
    g = torch.Generator().manual_seed(5)
    t = Transform3d(_random_matrix(3, g))
    assert len(t[1]) == 1 and len(t[[0, 2]]) == 2 and len(t[torch.tensor([2, 2, 0, 1])]) == 4
    assert t.to(dtype=torch.float32).dtype == torch.float32
    c = t.clone()
    assert c.get_matrix().data_ptr() != t.get_matrix().data_ptr()


def test_validation_errors():
    with pytest.raises(ValueError, match="matrix"):
        Transform3d(torch.eye(3))
    with pytest.raises(TypeError, match="matrix"):
        Transform3d(torch.eye(4, dtype=torch.int64))
    with pytest.raises(ValueError, match="points"):
        Transform3d().transform_points(torch.zeros(4, 2))
    with pytest.raises(TypeError, match="points"):
        Transform3d().transform_points(torch.zeros(4, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="batch size"):
        Transform3d(torch.eye(4).expand(3, 4, 4)).transform_points(torch.zeros(2, 5, 3))
    with pytest.raises(ValueError, match="batch size"):
        Transform3d(torch.eye(4).expand(3, 4, 4)).compose(Transform3d(torch.eye(4).expand(2, 4, 4)))
    with pytest.raises(TypeError, match="Transform3d"):
        Transform3d().compose(torch.eye(4))
