"""Tests for diffmesh.meshcore.transforms Transform3d and its builders."""

from __future__ import annotations

import math

import pytest
import torch
from diffmesh.meshcore.transforms import (
    Rotate,
    RotateAxisAngle,
    Scale,
    Transform3d,
    Translate,
    random_rotations,
)

F64 = torch.float64
#: float32 rotations of O(1) points: a few roundings of O(1) values, each within eps.
ATOL32 = 16 * torch.finfo(torch.float32).eps


def _apply_rows(points: list[list[float]], matrix: list[list[float]]) -> list[list[float]]:
    """[x, y, z, 1] @ M then divide by w, point by point (plain Python)."""
    out = []
    for p in points:
        row = [*p, 1.0]
        h = [sum(row[k] * matrix[k][j] for k in range(4)) for j in range(4)]
        out.append([h[0] / h[3], h[1] / h[3], h[2] / h[3]])
    return out


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def test_translate_scale_forms_match_reference():
    pts = torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]], dtype=F64)
    t = Translate(1.0, -2.0, 0.5)
    torch.testing.assert_close(
        t.transform_points(pts), pts + torch.tensor([1.0, -2.0, 0.5], dtype=F64)
    )
    # (N, 3) tensor, (N,) components, and broadcasting of a number against (N,)
    xyz = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=F64)
    a = Translate(xyz).get_matrix()
    b = Translate(xyz[:, 0], xyz[:, 1:2], xyz[:, 2]).get_matrix()
    torch.testing.assert_close(a, b)
    assert a.dtype == F64 and len(Translate(xyz[:, 0], 0.0, 1.0)) == 2
    torch.testing.assert_close(a[:, 3, :3], xyz)
    s = Scale(2.0)
    torch.testing.assert_close(s.transform_points(pts), 2.0 * pts)
    s3 = Scale(torch.tensor([[1.0, 2.0, 3.0]]))
    torch.testing.assert_close(s3.transform_points(pts), pts * torch.tensor([1.0, 2.0, 3.0]))
    torch.testing.assert_close(Scale(1.0, 2.0, 3.0).get_matrix(), s3.get_matrix().float())


def test_rotate_and_rotate_axis_angle_conventions():
    pts = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    # right-handed, row vectors: 90 degrees about Z sends +X to +Y and +Y to -X
    out = RotateAxisAngle(90.0, "Z").transform_points(pts)
    torch.testing.assert_close(
        out, torch.tensor([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]]), atol=ATOL32, rtol=0
    )
    out = RotateAxisAngle(math.pi / 2, axis="x", degrees=False).transform_points(pts)
    torch.testing.assert_close(
        out, torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), atol=ATOL32, rtol=0
    )
    out = RotateAxisAngle(90.0, "Y").transform_points(torch.tensor([[0.0, 0.0, 1.0]]))
    torch.testing.assert_close(out, torch.tensor([[1.0, 0.0, 0.0]]), atol=ATOL32, rtol=0)
    R = random_rotations(3, dtype=F64)
    p = torch.randn(3, 4, 3, dtype=F64)
    torch.testing.assert_close(Rotate(R).transform_points(p), p @ R)
    assert len(RotateAxisAngle(torch.tensor([0.0, 30.0, 60.0]), "Z")) == 3


def test_chain_matches_reference_and_composition_order(gen):
    R = random_rotations(1, dtype=F64, generator=gen)[0]
    t = Transform3d(dtype=F64).scale(2.0).rotate(R).translate(1.0, 2.0, 3.0)
    pts = torch.randn(5, 3, generator=gen, dtype=F64)
    torch.testing.assert_close(
        t.transform_points(pts), (2.0 * pts) @ R + torch.tensor([1.0, 2.0, 3.0], dtype=F64)
    )
    m = t.get_matrix()[0].tolist()
    torch.testing.assert_close(
        t.transform_points(pts), torch.tensor(_apply_rows(pts.tolist(), m), dtype=F64)
    )
    composed = Scale(2.0, dtype=F64).compose(Rotate(R), Translate(1.0, 2.0, 3.0, dtype=F64))
    torch.testing.assert_close(composed.get_matrix(), t.get_matrix())


def test_closed_form_inverses(gen):
    R = random_rotations(4, dtype=F64, generator=gen)
    xyz = torch.randn(4, 3, generator=gen, dtype=F64)
    chain = Rotate(R).compose(Translate(xyz), Scale(2.0, 4.0, 8.0, dtype=F64))
    inverse = chain.inverse().get_matrix()
    eye = torch.eye(4, dtype=F64).expand(4, 4, 4)
    torch.testing.assert_close(chain.get_matrix() @ inverse, eye)
    torch.testing.assert_close(inverse, torch.linalg.inv(chain.get_matrix()))
    # each builder's own inverse
    torch.testing.assert_close(Translate(xyz).inverse().get_matrix()[:, 3, :3], -xyz)
    torch.testing.assert_close(Rotate(R).inverse().get_matrix()[:, :3, :3], R.transpose(1, 2))
    torch.testing.assert_close(
        Scale(4.0).inverse().get_matrix()[0].diagonal(), torch.tensor([0.25, 0.25, 0.25, 1.0])
    )
    # a general matrix falls back to linalg.inv; invert_composed is accepted
    m = torch.randn(2, 4, 4, generator=gen, dtype=F64) + 4 * torch.eye(4, dtype=F64)
    torch.testing.assert_close(
        Transform3d(m).inverse(invert_composed=True).get_matrix(), torch.linalg.inv(m)
    )
    torch.testing.assert_close(chain.inverse().inverse().get_matrix(), chain.get_matrix())


def test_batch_broadcasting_stack_getitem(gen):
    many = Translate(torch.randn(3, 3, generator=gen))
    one = Scale(2.0)
    assert len(many.compose(one)) == 3 and len(one.compose(many)) == 3
    stacked = one.stack(many, Transform3d())
    assert len(stacked) == 5
    torch.testing.assert_close(stacked.get_matrix()[1:4], many.get_matrix())
    torch.testing.assert_close(stacked.inverse().get_matrix()[0], one.inverse().get_matrix()[0])
    assert len(stacked[2]) == 1 and len(stacked[1:3]) == 2 and len(stacked[[0, 4]]) == 2
    assert len(stacked[torch.tensor([True, False, True, False, False])]) == 2
    torch.testing.assert_close(stacked[2].get_matrix(), many.get_matrix()[1:2])
    with pytest.raises(ValueError, match="batch size"):
        many.compose(Translate(torch.zeros(2, 3)))
    with pytest.raises(TypeError, match="Transform3d"):
        many.stack(torch.eye(4))  # type: ignore[arg-type]


def test_transform_normals_inverse_transpose(gen):
    t = Scale(1.0, 2.0, 4.0, dtype=F64).rotate(random_rotations(1, dtype=F64, generator=gen)[0])
    t = t.translate(5.0, 0.0, 0.0)
    tangent = torch.randn(6, 3, generator=gen, dtype=F64)
    normal = torch.linalg.cross(tangent, torch.randn(6, 3, generator=gen, dtype=F64))
    new_tangent = tangent @ t.get_matrix()[0, :3, :3]
    new_normal = t.transform_normals(normal)
    torch.testing.assert_close((new_tangent * new_normal).sum(-1), torch.zeros(6, dtype=F64))
    general = Transform3d(t.get_matrix().clone())  # no closed-form inverse: linalg path
    torch.testing.assert_close(general.transform_normals(normal), new_normal)


def test_device_dtype_clone_to():
    t = Translate(1.0, 2.0, 3.0)
    assert t.dtype == torch.float32 and t.device.type == "cpu"
    assert t.to("cpu") is t and t.to("cpu", copy=True) is not t
    d = t.to(dtype=F64)
    assert d.dtype == F64 and d.inverse().dtype == F64
    assert t.cpu().device.type == "cpu"
    c = t.clone()
    assert c.get_matrix().data_ptr() != t.get_matrix().data_ptr()
    assert isinstance(t, Transform3d) and isinstance(RotateAxisAngle(10.0), Rotate)


def test_gradients_flow_to_parameters(gen):
    xyz = torch.randn(2, 3, generator=gen, dtype=F64, requires_grad=True)
    angle = torch.tensor([10.0, 70.0], dtype=F64, requires_grad=True)
    factor = torch.tensor([1.5, 0.5], dtype=F64, requires_grad=True)
    pts = torch.randn(2, 4, 3, generator=gen, dtype=F64)

    def fn(x, a, s):
        t = Translate(x).rotate_axis_angle(a, "Y").scale(s)
        return t.transform_points(pts), t.inverse().transform_points(pts), t.transform_normals(pts)

    assert torch.autograd.gradcheck(fn, (xyz, angle, factor))


def test_degenerate_no_nan():
    zero_angle = torch.zeros(1, dtype=F64, requires_grad=True)
    out = RotateAxisAngle(zero_angle, "Z").transform_points(torch.zeros(0, 3, dtype=F64))
    assert out.shape == (0, 3)
    pts = torch.zeros(3, 3, dtype=F64)  # duplicate points
    out = RotateAxisAngle(zero_angle, "Z").translate(0.0, 0.0, 0.0).transform_points(pts + 1.0)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(zero_angle.grad).all()
    assert len(Translate(torch.zeros(0, 3))) == 0


def test_validation_errors():
    with pytest.raises(ValueError, match="y and z"):
        Translate(1.0)
    with pytest.raises(ValueError, match="y and z must be None"):
        Translate(torch.zeros(2, 3), 1.0)
    with pytest.raises(ValueError, match="batch size"):
        Translate(torch.zeros(2), torch.zeros(3), 0.0)
    with pytest.raises(ValueError, match="Scale x"):
        Scale(torch.zeros(2, 2))
    with pytest.raises(TypeError, match="Translate x"):
        Translate("1", 0.0, 0.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="axis"):
        RotateAxisAngle(10.0, axis="W")
    with pytest.raises(ValueError, match="R must"):
        Rotate(torch.eye(4))
    with pytest.raises(TypeError, match="R must"):
        Rotate(torch.eye(3, dtype=torch.int64))
    with pytest.warns(UserWarning, match="not a valid rotation"):
        Rotate(2.0 * torch.eye(3))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_transforms():
    t = Translate(1.0, 2.0, 3.0).rotate_axis_angle(30.0, "Y").cuda()
    assert t.device.type == "cuda" and t.inverse().device.type == "cuda"
    pts = torch.rand(4, 3, device="cuda")
    torch.testing.assert_close(t.inverse().transform_points(t.transform_points(pts)), pts)
    moved = Translate(torch.ones(1, 3, device="cuda")).scale(2.0)
    assert moved.get_matrix().device.type == "cuda" and moved.cpu().device.type == "cpu"
