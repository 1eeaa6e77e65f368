"""Rotation matrices from and to axis-angle, Euler angles and the 6D representation.

Matrices act on column vectors (``R @ v``), as in PyTorch3D's ``rotation_conversions``;
``Rotate(R)`` in ``transform3d`` applies a matrix to row vectors (``v @ R``). Every
function accepts any leading batch shape ``(...)`` and is differentiable, with finite
gradients at the angles 0 and pi.
"""

from __future__ import annotations

import torch

from ._checks import check_last_dims, safe_sqrt, small_angle_mask
from .quaternions import matrix_to_quaternion, quaternion_to_axis_angle, random_quaternions
from .quaternions import quaternion_to_matrix as _quaternion_to_matrix

__all__ = [
    "axis_angle_to_matrix",
    "euler_angles_to_matrix",
    "matrix_to_axis_angle",
    "matrix_to_euler_angles",
    "matrix_to_rotation_6d",
    "random_rotation",
    "random_rotations",
    "rotation_6d_to_matrix",
]

_AXES = {"X": 0, "Y": 1, "Z": 2}


def skew(v: torch.Tensor) -> torch.Tensor:
    """Cross-product matrices: ``skew(v) @ u = v x u``, ``(..., 3)`` -> ``(..., 3, 3)``."""
    x, y, z = torch.unbind(v, -1)
    zero = torch.zeros_like(x)
    rows = (zero, -z, y, z, zero, -x, -y, x, zero)
    return torch.stack(rows, -1).reshape((*v.shape[:-1], 3, 3))


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rotation matrices of axis-angle vectors (Rodrigues' formula).

    ``R = cos(t) I + sin(t)/t [v]x + (1 - cos(t))/t^2 v v^T`` with ``t = |v|``; the
    two ratios come from Taylor series near ``t = 0`` and ``1 - cos t`` is computed
    as ``2 sin^2(t/2)`` (no cancellation).

    Args:
        axis_angle: ``(..., 3)`` float; direction = axis, length = angle (radians).

    Returns:
        ``(..., 3, 3)`` float rotation matrices (acting on column vectors).
    """
    check_last_dims("axis_angle", axis_angle, (3,))
    theta_sq = (axis_angle * axis_angle).sum(-1)[..., None, None]
    small = small_angle_mask(theta_sq)
    safe_sq = torch.where(small, 1.0, theta_sq)
    theta = safe_sq.sqrt()
    sinc = torch.where(small, 1.0 - theta_sq / 6.0 + theta_sq**2 / 120.0, theta.sin() / theta)
    half_sin = (0.5 * theta).sin()
    cosc = torch.where(
        small, 0.5 - theta_sq / 24.0 + theta_sq**2 / 720.0, 2.0 * half_sin * half_sin / safe_sq
    )
    cos = 1.0 - cosc * theta_sq
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    outer = axis_angle[..., :, None] * axis_angle[..., None, :]
    return cos * eye + sinc * skew(axis_angle) + cosc * outer


def matrix_to_axis_angle(matrix: torch.Tensor) -> torch.Tensor:
    """Axis-angle vectors of rotation matrices, angle in [0, pi].

    Computed through ``matrix_to_quaternion`` (well conditioned at every angle,
    pi included) and ``quaternion_to_axis_angle``.

    Args:
        matrix: ``(..., 3, 3)`` float rotation matrices (acting on column vectors).

    Returns:
        ``(..., 3)`` float: unit axis times angle in radians.
    """
    return quaternion_to_axis_angle(matrix_to_quaternion(matrix))


def _check_convention(convention: object) -> list[int]:
    if not isinstance(convention, str):
        raise TypeError(f"convention must be a str such as 'XYZ', got {type(convention).__name__}")
    if len(convention) != 3 or any(letter not in _AXES for letter in convention):
        raise ValueError(f"convention must be 3 letters from X, Y, Z, got {convention!r}")
    if convention[1] in (convention[0], convention[2]):
        raise ValueError(
            f"convention {convention!r} repeats its middle axis next to itself; "
            "valid conventions are e.g. 'XYZ' or 'ZYZ'"
        )
    return [_AXES[letter] for letter in convention]


def _axis_rotation(axis: int, angle: torch.Tensor) -> torch.Tensor:
    """``(..., 3, 3)`` right-handed rotations by ``angle`` about coordinate ``axis``."""
    c, s = angle.cos(), angle.sin()
    one, zero = torch.ones_like(angle), torch.zeros_like(angle)
    p, q = (axis + 1) % 3, (axis + 2) % 3  # (axis, p, q) is a cyclic order
    entries = [[zero] * 3 for _ in range(3)]
    entries[axis][axis] = one
    entries[p][p], entries[q][q] = c, c
    entries[q][p], entries[p][q] = s, -s  # R e_p = c e_p + s e_q
    return torch.stack([torch.stack(row, -1) for row in entries], -2)


def euler_angles_to_matrix(euler_angles: torch.Tensor, convention: str) -> torch.Tensor:
    """Rotation matrices of Euler angles: ``R = R_a(e0) @ R_b(e1) @ R_c(e2)``.

    Args:
        euler_angles: ``(..., 3)`` float, radians, one angle per letter.
        convention: three letters from X, Y, Z (e.g. ``"XYZ"``, ``"ZYZ"``); the
            middle letter differs from its neighbours.

    Returns:
        ``(..., 3, 3)`` float rotation matrices (acting on column vectors).
    """
    axes = _check_convention(convention)
    check_last_dims("euler_angles", euler_angles, (3,))
    a, b, c = (
        _axis_rotation(axis, angle)
        for axis, angle in zip(axes, torch.unbind(euler_angles, -1), strict=True)
    )
    return a @ b @ c


def _safe_atan2(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``atan2`` that is 0 with finite gradients at ``(0, 0)`` (gimbal lock)."""
    zero = (x == 0) & (y == 0)
    return torch.atan2(torch.where(zero, 0.0, y), torch.where(zero, 1.0, x))


def matrix_to_euler_angles(matrix: torch.Tensor, convention: str) -> torch.Tensor:
    """Euler angles of rotation matrices, inverse of ``euler_angles_to_matrix``.

    The first and last angles are in (-pi, pi]; the middle one in [-pi/2, pi/2]
    for Tait-Bryan conventions (three different letters) and in [0, pi] for proper
    Euler conventions (first letter = last), PyTorch3D's ranges. Each angle is an
    ``atan2`` of matrix entries (the middle one too, instead of ``asin``/``acos``),
    so values are accurate everywhere. The last angle is read from
    ``R_b(e1)^T R_a(e0)^T R``, so at gimbal lock, where only the sum (or
    difference) of the outer angles is defined, the first is 0, the last carries the
    rotation and gradients stay finite (PyTorch3D returns 0 for both there).

    Args:
        matrix: ``(..., 3, 3)`` float rotation matrices (acting on column vectors).
        convention: as in ``euler_angles_to_matrix``.

    Returns:
        ``(..., 3)`` float, radians.
    """
    a, b, c = _check_convention(convention)
    check_last_dims("matrix", matrix, (3, 3))
    nxt_a = (a + 1) % 3
    if a != c:  # Tait-Bryan: R e_c = R_a(e0) R_b(e1) e_c has no component along R_a e_b
        v = matrix[..., :, c]
        if b == nxt_a:
            first = _safe_atan2(-v[..., b], v[..., c])
        else:
            first = _safe_atan2(v[..., b], v[..., c])
        sign = 1.0 if c == (b + 1) % 3 else -1.0
        middle = torch.atan2(sign * v[..., a], safe_sqrt(v[..., b] ** 2 + v[..., c] ** 2))
    else:  # proper Euler: R e_a = R_a(e0) R_b(e1) e_a, the third axis d completes (a, b)
        d = 3 - a - b
        sigma = 1.0 if a == (b + 1) % 3 else -1.0
        v = matrix[..., :, a]
        if b == nxt_a:
            first = _safe_atan2(-sigma * v[..., b], sigma * v[..., d])
        else:
            first = _safe_atan2(sigma * v[..., b], sigma * v[..., d])
        middle = torch.atan2(safe_sqrt(v[..., b] ** 2 + v[..., d] ** 2), v[..., a])
    # The last angle from what remains, R_c(e2) = R_b(e1)^T R_a(e0)^T R: defined and
    # consistent with the other two even at gimbal lock.
    rest = (_axis_rotation(a, first) @ _axis_rotation(b, middle)).transpose(-1, -2) @ matrix
    p, q = (c + 1) % 3, (c + 2) % 3
    last = torch.atan2(rest[..., q, p], rest[..., p, p])
    return torch.stack((first, middle, last), -1)


def _normalize(v: torch.Tensor) -> torch.Tensor:
    norm = safe_sqrt((v * v).sum(-1, keepdim=True))
    return v / norm.clamp_min(torch.finfo(v.dtype).eps)


def rotation_6d_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """Rotation matrices from the 6D representation of Zhou et al. (CVPR 2019).

    Gram-Schmidt on the two 3-vectors ``a1 = d6[..., :3]``, ``a2 = d6[..., 3:]``:
    ``b1 = a1 / |a1|``, ``b2 = normalize(a2 - (b1 . a2) b1)``, ``b3 = b1 x b2``; the
    rows of the result are ``b1, b2, b3``. Degenerate inputs (``a1 = 0`` or
    ``a2 || a1``) give zero rows, never NaN.

    Args:
        d6: ``(..., 6)`` float.

    Returns:
        ``(..., 3, 3)`` float.
    """
    check_last_dims("d6", d6, (6,))
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = _normalize(a1)
    b2 = _normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack((b1, b2, b3), -2)


def matrix_to_rotation_6d(matrix: torch.Tensor) -> torch.Tensor:
    """The first two rows of each matrix, flattened: the 6D representation.

    Args:
        matrix: ``(..., 3, 3)`` float.

    Returns:
        ``(..., 6)`` float (a copy).
    """
    check_last_dims("matrix", matrix, (3, 3))
    return matrix[..., :2, :].clone().reshape((*matrix.shape[:-2], 6))


def random_rotations(
    n: int,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Uniformly distributed random rotation matrices.

    Args:
        n: number of matrices (>= 0).
        dtype: floating dtype (default: torch's default dtype).
        device: device of the result.
        generator: optional random generator (a diffmesh addition).

    Returns:
        ``(n, 3, 3)`` float.
    """
    return _quaternion_to_matrix(random_quaternions(n, dtype, device, generator=generator))


def random_rotation(
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One uniformly distributed random rotation matrix, ``(3, 3)`` float."""
    return random_rotations(1, dtype, device, generator=generator)[0]
