"""Tests for look_at_rotation, look_at_view_transform and spherical camera positions."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from diffmesh.softrender.look_at import (
    camera_position_from_spherical_angles,
    look_at_rotation,
    look_at_view_transform,
)

F64 = torch.float64
# Float32 rotation entries are unit-sized and each passes through trig, a cross product and
# a normalization (a few ulps each, differing with SIMD width and FMA): 16 ulps of 1.
F32_TOL = 16 * torch.finfo(torch.float32).eps
# Positions and translations scale with the distance (at most 3 here).
F32_POS_TOL = 3 * F32_TOL


def _reference_look_at(eye: list[float], at: list[float], up: list[float]) -> list[list[float]]:
    """Gram-Schmidt look-at in plain Python: R has columns (x, y, z)."""

    def sub(a, b):
        return [a[i] - b[i] for i in range(3)]

    def cross(a, b):
        return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]

    def unit(a):
        n = math.sqrt(sum(v * v for v in a))
        return [v / n for v in a]

    z = unit(sub(at, eye))
    x = unit(cross(up, z))
    y = cross(z, x)
    return [[x[i], y[i], z[i]] for i in range(3)]


def _assert_rotation(R: torch.Tensor) -> None:
    eye = torch.eye(3, dtype=R.dtype).expand_as(R)
    torch.testing.assert_close(R.transpose(1, 2) @ R, eye, atol=F32_TOL, rtol=0)
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(len(R), dtype=R.dtype))


def test_known_value_dist_2_7():
    R, T = look_at_view_transform(2.7, 0.0, 0.0)
    torch.testing.assert_close(R, torch.diag(torch.tensor([-1.0, 1.0, -1.0]))[None])
    torch.testing.assert_close(T, torch.tensor([[0.0, 0.0, 2.7]]))


def test_azimuth_and_elevation_hand_computed():
    # azim 90: camera at +X looking along -X; x axis = up x z = (0, 0, 1).
    R, T = look_at_view_transform(2.0, 0.0, 90.0)
    expected = torch.tensor([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    torch.testing.assert_close(R[0], expected, atol=F32_TOL, rtol=0)
    torch.testing.assert_close(T[0], torch.tensor([0.0, 0.0, 2.0]), atol=F32_POS_TOL, rtol=0)
    # elev 45 in radians
    R, T = look_at_view_transform(1.0, math.pi / 4, 0.0, degrees=False)
    s = math.sqrt(0.5)
    expected = torch.tensor([[-1.0, 0.0, 0.0], [0.0, s, -s], [0.0, -s, -s]])
    torch.testing.assert_close(R[0], expected, atol=F32_TOL, rtol=0)
    torch.testing.assert_close(T[0], torch.tensor([0.0, 0.0, 1.0]), atol=F32_POS_TOL, rtol=0)


def test_matches_reference_random_eyes():
    g = torch.Generator().manual_seed(0)
    eyes = torch.randn(6, 3, generator=g, dtype=F64) * 3
    ats = torch.randn(6, 3, generator=g, dtype=F64) * 0.3
    ups = torch.randn(6, 3, generator=g, dtype=F64)
    R = look_at_rotation(eyes, ats, ups)
    ref = [
        _reference_look_at(e, a, u)
        for e, a, u in zip(eyes.tolist(), ats.tolist(), ups.tolist(), strict=True)
    ]
    torch.testing.assert_close(R, torch.tensor(ref, dtype=F64))
    _assert_rotation(R)
    R2, T2 = look_at_view_transform(eye=eyes, at=ats, up=ups)
    torch.testing.assert_close(R2, R)
    # the eye maps to the view origin, the target to the +Z axis
    torch.testing.assert_close((eyes[:, None] @ R2)[:, 0] + T2, torch.zeros(6, 3, dtype=F64))
    at_view = (ats[:, None] @ R2)[:, 0] + T2
    torch.testing.assert_close(at_view[:, :2], torch.zeros(6, 2, dtype=F64))
    torch.testing.assert_close(at_view[:, 2], (eyes - ats).norm(dim=1))


def _pytorch3d_look_at(position: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """PyTorch3D 0.7's look_at_rotation (at = origin), restated as the reference."""
    z = F.normalize(-position, eps=1e-5)
    x = F.normalize(torch.linalg.cross(up.expand_as(z), z, dim=1), eps=1e-5)
    y = F.normalize(torch.linalg.cross(z, x, dim=1), eps=1e-5)
    close = torch.isclose(x, torch.zeros_like(x), atol=5e-3).all(dim=1, keepdim=True)
    x = torch.where(close, F.normalize(torch.linalg.cross(y, z, dim=1), eps=1e-5), x)
    return torch.stack([x, y, z], dim=2)


@pytest.mark.parametrize("elev", [90.0, -90.0])
def test_pole_gives_pytorch3d_axes(elev: float):
    azim = torch.tensor([0.0, 30.0, 90.0, 200.0])
    R, T = look_at_view_transform(2.7, elev, azim)
    _assert_rotation(R)
    C = camera_position_from_spherical_angles(2.7, elev, azim)
    up = torch.tensor([[0.0, 1.0, 0.0]])
    torch.testing.assert_close(R, _pytorch3d_look_at(C, up), atol=F32_TOL, rtol=0)
    torch.testing.assert_close(T[:, 2], torch.full((4,), 2.7))
    # float64 angles: cos(90 deg) = +6e-17, so x follows that residual, (-cos a, 0, sin a)
    # (PyTorch3D's eps=1e-5 normalisations return a non-rotation there).
    R64, _ = look_at_view_transform(2.7, torch.tensor(elev, dtype=F64), azim.to(F64))
    _assert_rotation(R64)
    a = azim.to(F64) * math.pi / 180
    x = torch.stack([-a.cos(), torch.zeros_like(a), a.sin()], dim=1)
    torch.testing.assert_close(R64[:, :, 0], x, atol=1e-12, rtol=0)


def test_pole_known_values_float32():
    # float32 cos(90 deg) = -4.4e-8: straight down at azim 0, image x is world +X and
    # image up is world +Z (PyTorch3D's R); at azim 90, image x is world -Z (no roll).
    R, T = look_at_view_transform(2.7, 90.0, 0.0)
    expected = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    torch.testing.assert_close(R[0], expected, atol=F32_TOL, rtol=0)
    torch.testing.assert_close(T[0], torch.tensor([0.0, 0.0, 2.7]), atol=F32_TOL, rtol=0)
    R90, _ = look_at_view_transform(2.7, 90.0, 90.0)
    torch.testing.assert_close(R90[0, :, 0], torch.tensor([0.0, 0.0, -1.0]), atol=F32_TOL, rtol=0)
    # the angles are converted in float32 whatever dist's dtype, as in PyTorch3D
    R64, _ = look_at_view_transform(torch.tensor(2.7, dtype=F64), 90.0, 0.0)
    torch.testing.assert_close(R64.float(), R, atol=F32_TOL, rtol=0)
    # an eye exactly above the target (PyTorch3D: singular) gets the same axes
    for sign in (1.0, -1.0):
        R_eye = look_at_rotation(((0.0, sign * 3.0, 0.0),))
        R_pole, _ = look_at_view_transform(3.0, sign * 90.0, 0.0)
        torch.testing.assert_close(R_eye, R_pole, atol=F32_TOL, rtol=0)


def test_degenerate_up_along_x():
    R = look_at_rotation(((5.0, 0.0, 0.0),), up=((1.0, 0.0, 0.0),))
    _assert_rotation(R)
    torch.testing.assert_close(R[0, :, 2], torch.tensor([-1.0, 0.0, 0.0]))


def test_batched_broadcasting():
    dist = torch.tensor([1.0, 2.0, 3.0])
    R, T = look_at_view_transform(dist, [10.0], 30.0)
    assert R.shape == (3, 3, 3) and T.shape == (3, 3)
    for i in range(3):
        Ri, Ti = look_at_view_transform(float(dist[i]), 10.0, 30.0)
        torch.testing.assert_close(R[i], Ri[0])
        torch.testing.assert_close(T[i], Ti[0])
    R, T = look_at_view_transform(2.0, elev=[0.0, 45.0], azim=[0.0, 90.0], at=((0.0, 1.0, 0.0),))
    assert R.shape == (2, 3, 3)
    torch.testing.assert_close(
        -(T[:, None] @ R.transpose(1, 2))[:, 0],
        torch.tensor([[0.0, 1.0, 2.0], [math.sqrt(2.0), 1.0 + math.sqrt(2.0), 0.0]]),
        atol=F32_POS_TOL,
        rtol=0,
    )
    pos = camera_position_from_spherical_angles(torch.tensor([2.0]), [0.0, 90.0], 90.0)
    torch.testing.assert_close(
        pos, torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]]), atol=F32_POS_TOL, rtol=0
    )


def test_dtype_follows_inputs():
    R, T = look_at_view_transform(torch.tensor([2.0], dtype=F64), 10.0, 20.0)
    assert R.dtype == F64 and T.dtype == F64


def test_gradcheck_look_at_view_transform():
    dist = torch.tensor([2.5, 3.0], dtype=F64, requires_grad=True)
    elev = torch.tensor([10.0, -35.0], dtype=F64, requires_grad=True)
    azim = torch.tensor([20.0, 140.0], dtype=F64, requires_grad=True)
    at = torch.tensor([[0.1, -0.2, 0.3]], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda d, e, a, t: look_at_view_transform(d, e, a, at=t), (dist, elev, azim, at)
    )
    eye = torch.tensor([[1.0, 2.0, 0.5]], dtype=F64, requires_grad=True)
    up = torch.tensor([[0.1, 1.0, 0.0]], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda e, u: look_at_rotation(e, up=u), (eye, up))


def test_pole_gradients_finite():
    elev = torch.tensor([90.0], dtype=F64, requires_grad=True)
    dist = torch.tensor([2.0], dtype=F64, requires_grad=True)
    R, T = look_at_view_transform(dist, elev, 0.0)
    (R.sum() + T.sum()).backward()
    assert torch.isfinite(elev.grad).all() and torch.isfinite(dist.grad).all()


def test_validation_errors():
    with pytest.raises(ValueError, match="camera_position"):
        look_at_rotation(((1.0, 2.0),))
    with pytest.raises(ValueError, match="camera_position"):
        look_at_rotation(((0.0, 0.0, 0.0),))
    with pytest.raises(ValueError, match="up"):
        look_at_rotation(((0.0, 0.0, 1.0),), up=((0.0, 0.0, 0.0),))
    with pytest.raises(ValueError, match="batch size"):
        look_at_view_transform(dist=[1.0, 2.0], elev=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="eye"):
        look_at_view_transform(eye=torch.zeros(2, 2))
    with pytest.raises(ValueError, match="dist"):
        look_at_view_transform(dist=torch.ones(2, 2))
    with pytest.raises(TypeError, match="elev"):
        look_at_view_transform(elev="high")


def test_batch_mixing_pole_and_regular_cameras():
    R, T = look_at_view_transform(2.0, [0.0, 90.0, 45.0, -90.0], [30.0, 0.0, 60.0, 0.0])
    _assert_rotation(R)
    for i, (e, a) in enumerate([(0.0, 30.0), (90.0, 0.0), (45.0, 60.0), (-90.0, 0.0)]):
        Ri, Ti = look_at_view_transform(2.0, e, a)
        torch.testing.assert_close(R[i], Ri[0])
        torch.testing.assert_close(T[i], Ti[0])
