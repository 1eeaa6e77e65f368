"""Tests for diffmesh.meshcore.transforms rotation conversions and SO(3) maps."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from diffmesh.meshcore.transforms import (
    axis_angle_to_matrix,
    axis_angle_to_quaternion,
    euler_angles_to_matrix,
    hat,
    hat_inv,
    matrix_to_axis_angle,
    matrix_to_euler_angles,
    matrix_to_quaternion,
    matrix_to_rotation_6d,
    quaternion_apply,
    quaternion_invert,
    quaternion_multiply,
    quaternion_raw_multiply,
    quaternion_to_axis_angle,
    quaternion_to_matrix,
    random_quaternions,
    random_rotation,
    random_rotations,
    rotation_6d_to_matrix,
    so3_exp_map,
    so3_log_map,
    so3_relative_angle,
    so3_rotation_angle,
    standardize_quaternion,
)

F64 = torch.float64
CONVENTIONS = [
    "".join(c) for c in itertools.product("XYZ", repeat=3) if c[1] != c[0] and c[1] != c[2]
]


# ----------------------------------------------------------------- references
def _hamilton(a: list[float], b: list[float]) -> list[float]:
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return [
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ]


def _ref_quaternion_to_matrix(q: list[float]) -> list[list[float]]:
    """Columns = q e_i q* for the basis vectors (plain Python)."""
    n = math.sqrt(sum(c * c for c in q))
    q = [c / n for c in q]
    conj = [q[0], -q[1], -q[2], -q[3]]
    cols = [_hamilton(_hamilton(q, [0.0, *e]), conj)[1:] for e in ([1, 0, 0], [0, 1, 0], [0, 0, 1])]
    return [[cols[j][i] for j in range(3)] for i in range(3)]


def _ref_rodrigues(v: list[float]) -> list[list[float]]:
    """Rotation by |v| about v / |v| (plain Python; v != 0)."""
    t = math.sqrt(sum(c * c for c in v))
    x, y, z = (c / t for c in v)
    c, s, C = math.cos(t), math.sin(t), 1 - math.cos(t)
    return [
        [c + x * x * C, x * y * C - z * s, x * z * C + y * s],
        [y * x * C + z * s, c + y * y * C, y * z * C - x * s],
        [z * x * C - y * s, z * y * C + x * s, c + z * z * C],
    ]


def _ref_axis_matrix(axis: str, a: float) -> torch.Tensor:
    c, s = math.cos(a), math.sin(a)
    m = {
        "X": [[1, 0, 0], [0, c, -s], [0, s, c]],
        "Y": [[c, 0, s], [0, 1, 0], [-s, 0, c]],
        "Z": [[c, -s, 0], [s, c, 0], [0, 0, 1]],
    }[axis]
    return torch.tensor(m, dtype=F64)


def _assert_rotations(R: torch.Tensor, atol: float = 1e-12) -> None:
    eye = torch.eye(3, dtype=R.dtype).expand_as(R)
    torch.testing.assert_close(R @ R.transpose(-1, -2), eye, atol=atol, rtol=0)
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(R.shape[:-2], dtype=R.dtype))


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


# ---------------------------------------------------------------- quaternions
def test_quaternion_to_matrix_matches_reference(gen):
    q = torch.randn(8, 4, generator=gen, dtype=F64)
    ref = torch.tensor([_ref_quaternion_to_matrix(x) for x in q.tolist()], dtype=F64)
    torch.testing.assert_close(quaternion_to_matrix(q), ref)
    _assert_rotations(quaternion_to_matrix(q))


def test_matrix_to_quaternion_round_trip_and_standardized(gen):
    q = standardize_quaternion(random_quaternions(64, dtype=F64, generator=gen))
    out = matrix_to_quaternion(quaternion_to_matrix(q))
    torch.testing.assert_close(out, q)
    assert (out[:, 0] >= 0).all()
    # every branch of the conversion: near-pi rotations about each axis
    for axis in torch.eye(3, dtype=F64):
        for angle in (math.pi, math.pi - 1e-9, 2.5):
            v = axis * angle
            R = axis_angle_to_matrix(v)
            torch.testing.assert_close(quaternion_to_matrix(matrix_to_quaternion(R)), R)


def test_quaternion_products_and_apply(gen):
    a = random_quaternions(10, dtype=F64, generator=gen)
    b = random_quaternions(10, dtype=F64, generator=gen)
    ref = torch.tensor([_hamilton(x, y) for x, y in zip(a.tolist(), b.tolist(), strict=True)])
    torch.testing.assert_close(quaternion_raw_multiply(a, b), ref.to(F64))
    ab = quaternion_multiply(a, b)
    assert (ab[:, 0] >= 0).all()
    torch.testing.assert_close(
        quaternion_to_matrix(ab), quaternion_to_matrix(a) @ quaternion_to_matrix(b)
    )
    identity = quaternion_raw_multiply(a, quaternion_invert(a))
    torch.testing.assert_close(identity, torch.tensor([[1.0, 0, 0, 0]], dtype=F64).expand(10, 4))
    p = torch.randn(10, 3, generator=gen, dtype=F64)
    torch.testing.assert_close(
        quaternion_apply(a, p), (quaternion_to_matrix(a) @ p[..., None])[..., 0]
    )
    with pytest.raises(ValueError, match="point"):
        quaternion_apply(a, torch.zeros(10, 2, dtype=F64))


def test_standardize_and_random_quaternions(gen):
    q = torch.tensor([[-0.5, 0.5, 0.5, 0.5], [0.5, -0.5, 0.5, 0.5]])
    torch.testing.assert_close(standardize_quaternion(q)[0], -q[0])
    torch.testing.assert_close(standardize_quaternion(q)[1], q[1])
    r = random_quaternions(1000, generator=gen)
    assert r.shape == (1000, 4) and r.dtype == torch.float32 and (r[:, 0] >= 0).all()
    torch.testing.assert_close(r.norm(dim=1), torch.ones(1000))
    assert random_rotations(4, dtype=F64).shape == (4, 3, 3)
    _assert_rotations(random_rotations(50, dtype=F64, generator=gen))
    assert random_rotation().shape == (3, 3)
    assert random_quaternions(0).shape == (0, 4)
    with pytest.raises(ValueError, match="n must"):
        random_quaternions(-1)
    with pytest.raises(TypeError, match="n must"):
        random_rotations(2.0)  # type: ignore[arg-type]


# ---------------------------------------------------------------- axis-angle
def test_axis_angle_to_matrix_matches_rodrigues_and_expm(gen):
    v = torch.randn(20, 3, generator=gen, dtype=F64) * 1.5
    ref = torch.tensor([_ref_rodrigues(x) for x in v.tolist()], dtype=F64)
    torch.testing.assert_close(axis_angle_to_matrix(v), ref)
    torch.testing.assert_close(axis_angle_to_matrix(v), torch.linalg.matrix_exp(hat(v)))
    torch.testing.assert_close(so3_exp_map(v), ref)
    # batch shapes (..., 3)
    assert axis_angle_to_matrix(v.reshape(4, 5, 3)).shape == (4, 5, 3, 3)


def test_axis_angle_small_angles_exact():
    # across the series / closed-form switch, both dtypes
    for dtype in (torch.float32, F64):
        for t in (0.0, 1e-12, 1e-6, 1e-3, 0.0185, 0.0187, 0.05):
            v = torch.tensor([[t * 0.6, -t * 0.8, 0.0]], dtype=F64)
            ref = torch.linalg.matrix_exp(hat(v))
            out = axis_angle_to_matrix(v.to(dtype)).to(F64)
            tol = 4 * torch.finfo(dtype).eps
            torch.testing.assert_close(out, ref, atol=tol, rtol=0)
            q = axis_angle_to_quaternion(v.to(dtype)).to(F64)
            q_ref = torch.tensor([[math.cos(t / 2), 0, 0, 0]], dtype=F64)
            q_ref[0, 1:] = v[0] * (0.5 if t == 0 else math.sin(t / 2) / t)
            torch.testing.assert_close(q, q_ref, atol=tol, rtol=0)
            back = quaternion_to_axis_angle(q.to(dtype)).to(F64)
            torch.testing.assert_close(
                back, v, atol=tol * max(t, 1.0), rtol=4 * torch.finfo(dtype).eps
            )


def test_matrix_to_axis_angle_round_trip_and_range(gen):
    v = torch.randn(50, 3, generator=gen, dtype=F64) * 1.2
    out = matrix_to_axis_angle(axis_angle_to_matrix(v))
    torch.testing.assert_close(axis_angle_to_matrix(out), axis_angle_to_matrix(v))
    assert (out.norm(dim=1) <= math.pi + 1e-12).all()
    small = v[:, :] * (v.norm(dim=1, keepdim=True) < math.pi)
    torch.testing.assert_close(matrix_to_axis_angle(axis_angle_to_matrix(small)), small)
    torch.testing.assert_close(so3_log_map(axis_angle_to_matrix(small)), small)


def test_quaternion_to_axis_angle_negative_w_gives_same_rotation(gen):
    q = random_quaternions(20, dtype=F64, generator=gen)
    aa_pos, aa_neg = quaternion_to_axis_angle(q), quaternion_to_axis_angle(-q)
    torch.testing.assert_close(aa_pos, aa_neg)
    torch.testing.assert_close(axis_angle_to_matrix(aa_pos), quaternion_to_matrix(q))
    # non-unit quaternions: the rotation, not the scale
    torch.testing.assert_close(quaternion_to_axis_angle(3.0 * q), aa_pos)


@pytest.mark.parametrize("angle", [0.0, math.pi])
def test_degenerate_angles_finite_values_and_gradients(angle: float):
    for axis in torch.eye(3, dtype=F64):
        v = (axis * angle).clone().requires_grad_(True)
        R = axis_angle_to_matrix(v)
        aa = matrix_to_axis_angle(R)
        q = axis_angle_to_quaternion(v)
        back = quaternion_to_axis_angle(q)
        log = so3_log_map(R[None])
        ang = so3_rotation_angle(R[None])
        total = R.sum() + aa.sum() + q.sum() + back.sum() + log.sum() + ang.sum()
        (grad,) = torch.autograd.grad(total, v)
        for t in (R, aa, q, back, log, ang, grad):
            assert torch.isfinite(t).all()
        torch.testing.assert_close(aa.norm(), torch.tensor(angle, dtype=F64))
        torch.testing.assert_close(ang, torch.tensor([angle], dtype=F64))
    # the zero quaternion maps to the zero vector and the identity without NaN
    zero = torch.zeros(1, 4, dtype=F64, requires_grad=True)
    out = quaternion_to_axis_angle(zero)
    matrix = quaternion_to_matrix(zero)
    (out.sum() + matrix.sum()).backward()
    assert (out == 0).all() and torch.isfinite(zero.grad).all()
    torch.testing.assert_close(matrix, torch.eye(3, dtype=F64)[None])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_round_trips():
    v = torch.randn(16, 3, device="cuda")
    R = axis_angle_to_matrix(v)
    assert R.device.type == "cuda"
    torch.testing.assert_close(axis_angle_to_matrix(matrix_to_axis_angle(R)), R, atol=1e-5, rtol=0)
    for convention in ("XYZ", "ZYZ"):
        angles = matrix_to_euler_angles(R, convention)
        torch.testing.assert_close(euler_angles_to_matrix(angles, convention), R, atol=1e-5, rtol=0)
    assert random_rotations(3, device="cuda").device.type == "cuda"


def test_gradcheck_conversions(gen):
    v = (torch.randn(3, 3, generator=gen, dtype=F64) * 0.9).requires_grad_(True)
    zero = torch.zeros(1, 3, dtype=F64, requires_grad=True)
    near_pi = (torch.tensor([[0.0, 0.6, 0.8]], dtype=F64) * (math.pi - 0.1)).requires_grad_(True)
    for x in (v, zero, near_pi):
        assert torch.autograd.gradcheck(axis_angle_to_matrix, (x,))
        assert torch.autograd.gradcheck(axis_angle_to_quaternion, (x,))
        assert torch.autograd.gradcheck(
            lambda a: matrix_to_axis_angle(axis_angle_to_matrix(a)), (x,)
        )
    q = random_quaternions(3, dtype=F64, generator=gen).requires_grad_(True)
    for fn in (quaternion_to_matrix, quaternion_to_axis_angle, quaternion_invert):
        assert torch.autograd.gradcheck(fn, (q,))
    q2 = random_quaternions(3, dtype=F64, generator=gen).requires_grad_(True)
    p = torch.randn(3, 3, generator=gen, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(quaternion_raw_multiply, (q, q2))
    assert torch.autograd.gradcheck(quaternion_apply, (q, p))
    R = random_rotations(3, dtype=F64, generator=gen).requires_grad_(True)
    assert torch.autograd.gradcheck(matrix_to_quaternion, (R,))
    assert torch.autograd.gradcheck(so3_log_map, (R,))
    R2 = random_rotations(3, dtype=F64, generator=gen)
    assert torch.autograd.gradcheck(lambda r: so3_relative_angle(r, R2), (R,))


# --------------------------------------------------------------------- Euler
@pytest.mark.parametrize("convention", CONVENTIONS)
def test_euler_matches_reference_and_round_trips(convention: str, gen):
    angles = (torch.rand(16, 3, generator=gen, dtype=F64) * 2 - 1) * math.pi
    angles[:, 1] = angles[:, 1] / 2  # Tait-Bryan middle range
    if convention[0] == convention[2]:
        angles[:, 1] = angles[:, 1].abs() * 2  # proper Euler middle range [0, pi]
    M = euler_angles_to_matrix(angles, convention)
    for i in range(3):
        ref = (
            _ref_axis_matrix(convention[0], float(angles[i, 0]))
            @ _ref_axis_matrix(convention[1], float(angles[i, 1]))
            @ _ref_axis_matrix(convention[2], float(angles[i, 2]))
        )
        torch.testing.assert_close(M[i], ref)
    torch.testing.assert_close(matrix_to_euler_angles(M, convention), angles)
    # any rotation round-trips through the angles
    R = random_rotations(16, dtype=F64, generator=gen)
    torch.testing.assert_close(
        euler_angles_to_matrix(matrix_to_euler_angles(R, convention), convention), R
    )


@pytest.mark.parametrize("convention", ["XYZ", "ZYZ", "YXZ", "XZX"])
def test_euler_gimbal_lock_finite(convention: str):
    middle = math.pi / 2 if convention[0] != convention[2] else 0.0
    for m in (middle, -middle if middle else math.pi):
        angles = torch.tensor([[0.3, m, -0.7]], dtype=F64)
        R = euler_angles_to_matrix(angles, convention).requires_grad_(True)
        out = matrix_to_euler_angles(R, convention)
        torch.testing.assert_close(euler_angles_to_matrix(out, convention), R.detach())
        (grad,) = torch.autograd.grad(out.sum(), R)
        assert torch.isfinite(out).all() and torch.isfinite(grad).all()


def test_euler_gradcheck_and_errors(gen):
    angles = (torch.rand(2, 3, generator=gen, dtype=F64) - 0.5).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: euler_angles_to_matrix(a, "ZYX"), (angles,))
    assert torch.autograd.gradcheck(
        lambda a: matrix_to_euler_angles(euler_angles_to_matrix(a, "XZX"), "XZX"),
        (angles.detach().abs().add(0.2).requires_grad_(True),),
    )
    for bad in ("XY", "XXY", "XYY", "ABC"):
        with pytest.raises(ValueError, match="convention"):
            euler_angles_to_matrix(torch.zeros(3), bad)
    with pytest.raises(ValueError, match="euler_angles"):
        euler_angles_to_matrix(torch.zeros(2), "XYZ")
    with pytest.raises(ValueError, match="matrix"):
        matrix_to_euler_angles(torch.zeros(3, 4), "XYZ")
    with pytest.raises(TypeError, match="convention"):
        matrix_to_euler_angles(torch.eye(3), 3)  # type: ignore[arg-type]


# ------------------------------------------------------------------------ 6D
def test_rotation_6d_gram_schmidt_reference(gen):
    d6 = torch.randn(5, 6, generator=gen, dtype=F64)
    for row, M in zip(d6.tolist(), rotation_6d_to_matrix(d6), strict=True):
        a1, a2 = row[:3], row[3:]
        n1 = math.sqrt(sum(c * c for c in a1))
        b1 = [c / n1 for c in a1]
        dot = sum(x * y for x, y in zip(b1, a2, strict=True))
        u = [y - dot * x for x, y in zip(b1, a2, strict=True)]
        n2 = math.sqrt(sum(c * c for c in u))
        b2 = [c / n2 for c in u]
        b3 = [
            b1[1] * b2[2] - b1[2] * b2[1],
            b1[2] * b2[0] - b1[0] * b2[2],
            b1[0] * b2[1] - b1[1] * b2[0],
        ]
        torch.testing.assert_close(M, torch.tensor([b1, b2, b3], dtype=F64))
    R = random_rotations(4, dtype=F64, generator=gen)
    torch.testing.assert_close(matrix_to_rotation_6d(R), R[:, :2].reshape(4, 6))
    torch.testing.assert_close(rotation_6d_to_matrix(matrix_to_rotation_6d(R)), R)
    assert torch.autograd.gradcheck(rotation_6d_to_matrix, (d6[:2].clone().requires_grad_(True),))


def test_rotation_6d_degenerate_no_nan():
    d6 = torch.tensor([[0.0] * 6, [1.0, 0, 0, 2.0, 0, 0]], dtype=F64, requires_grad=True)
    out = rotation_6d_to_matrix(d6)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(d6.grad).all()


# ----------------------------------------------------------------------- SO3
def test_so3_angles_against_acos_reference(gen):
    R1 = random_rotations(10, dtype=F64, generator=gen)
    R2 = random_rotations(10, dtype=F64, generator=gen)
    rel = R1 @ R2.transpose(1, 2)
    ref = torch.tensor(
        [math.acos(max(-1.0, min(1.0, (float(r.trace()) - 1) / 2))) for r in rel], dtype=F64
    )
    torch.testing.assert_close(so3_relative_angle(R1, R2), ref)
    torch.testing.assert_close(so3_rotation_angle(rel), ref)
    torch.testing.assert_close(so3_relative_angle(R1, R2, cos_angle=True), ref.cos())
    # accurate where acos of the trace is not: tiny angles
    tiny = axis_angle_to_matrix(torch.tensor([[1e-9, 0.0, 0.0]], dtype=F64))
    torch.testing.assert_close(so3_rotation_angle(tiny), torch.tensor([1e-9], dtype=F64))


def test_so3_hat_and_errors(gen):
    v = torch.randn(4, 3, generator=gen, dtype=F64)
    u = torch.randn(4, 3, generator=gen, dtype=F64)
    torch.testing.assert_close((hat(v) @ u[..., None])[..., 0], torch.linalg.cross(v, u))
    torch.testing.assert_close(hat_inv(hat(v)), v)
    with pytest.raises(ValueError, match="skew-symmetric"):
        hat_inv(torch.eye(3)[None])
    with pytest.raises(ValueError, match="log_rot"):
        so3_exp_map(torch.zeros(3))
    with pytest.raises(ValueError, match="R"):
        so3_log_map(torch.eye(3))
    with pytest.raises(ValueError, match="trace"):
        so3_log_map(5 * torch.eye(3)[None])
    with pytest.raises(ValueError, match="batch size"):
        so3_relative_angle(torch.eye(3).expand(2, 3, 3), torch.eye(3)[None])
    with pytest.raises(TypeError, match="axis_angle"):
        axis_angle_to_matrix(torch.zeros(3, dtype=torch.int64))
    with pytest.raises(ValueError, match="quaternions"):
        quaternion_to_matrix(torch.zeros(2, 3))


def test_empty_batches():
    assert axis_angle_to_matrix(torch.zeros(0, 3)).shape == (0, 3, 3)
    assert matrix_to_quaternion(torch.zeros(0, 3, 3)).shape == (0, 4)
    assert matrix_to_axis_angle(torch.zeros(0, 3, 3)).shape == (0, 3)
    assert matrix_to_euler_angles(torch.zeros(0, 3, 3), "XYZ").shape == (0, 3)
    assert so3_log_map(torch.zeros(0, 3, 3)).shape == (0, 3)
    assert hat_inv(torch.zeros(0, 3, 3)).shape == (0, 3)
