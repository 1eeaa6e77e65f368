"""Quaternions (real part first, ``(w, x, y, z)``) and their conversions.

Conventions are PyTorch3D's: a unit quaternion ``q`` rotates a column vector ``v`` as
``q v q*``; ``quaternion_to_matrix`` gives the matrix ``M`` with ``M @ v`` equal to
that rotation. ``q`` and ``-q`` are the same rotation; functions that return
quaternions from rotations return the standardized one (``w >= 0``).

Every function accepts any leading batch shape ``(...)`` and is differentiable, with
finite gradients at the angles 0 and pi.
"""

from __future__ import annotations

import torch

from ._checks import check_last_dims, small_angle_mask

__all__ = [
    "axis_angle_to_quaternion",
    "matrix_to_quaternion",
    "quaternion_apply",
    "quaternion_invert",
    "quaternion_multiply",
    "quaternion_raw_multiply",
    "quaternion_to_axis_angle",
    "quaternion_to_matrix",
    "random_quaternions",
    "standardize_quaternion",
]


def standardize_quaternion(quaternions: torch.Tensor) -> torch.Tensor:
    """The representative of each rotation with a non-negative real part.

    Args:
        quaternions: ``(..., 4)`` float, real part first.

    Returns:
        ``(..., 4)`` float: ``-q`` where ``w < 0``, else ``q``.
    """
    check_last_dims("quaternions", quaternions, (4,))
    return torch.where(quaternions[..., :1] < 0, -quaternions, quaternions)


def quaternion_raw_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product ``a * b`` (not standardized).

    Args:
        a, b: ``(..., 4)`` float, real part first; leading shapes broadcast.

    Returns:
        ``(..., 4)`` float: the rotation ``b`` followed by ``a`` for unit inputs.
    """
    check_last_dims("a", a, (4,))
    check_last_dims("b", b, (4,))
    aw, ax, ay, az = torch.unbind(a, -1)
    bw, bx, by, bz = torch.unbind(b, -1)
    ow = aw * bw - ax * bx - ay * by - az * bz
    ox = aw * bx + ax * bw + ay * bz - az * by
    oy = aw * by - ax * bz + ay * bw + az * bx
    oz = aw * bz + ax * by - ay * bx + az * bw
    return torch.stack((ow, ox, oy, oz), -1)


def quaternion_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product ``a * b``, standardized (``w >= 0``).

    Args:
        a, b: ``(..., 4)`` float, real part first; leading shapes broadcast.

    Returns:
        ``(..., 4)`` float.
    """
    return standardize_quaternion(quaternion_raw_multiply(a, b))


def quaternion_invert(quaternion: torch.Tensor) -> torch.Tensor:
    """The conjugate ``(w, -x, -y, -z)``: the inverse rotation of a unit quaternion.

    Args:
        quaternion: ``(..., 4)`` float, real part first.

    Returns:
        ``(..., 4)`` float.
    """
    check_last_dims("quaternion", quaternion, (4,))
    sign = quaternion.new_tensor([1.0, -1.0, -1.0, -1.0])
    return quaternion * sign


def quaternion_apply(quaternion: torch.Tensor, point: torch.Tensor) -> torch.Tensor:
    """Rotate points by unit quaternions: ``q (0, p) q*``.

    Args:
        quaternion: ``(..., 4)`` float, real part first.
        point: ``(..., 3)`` float; leading shapes broadcast with ``quaternion``'s.

    Returns:
        ``(..., 3)`` float, the rotated points.
    """
    check_last_dims("quaternion", quaternion, (4,))
    check_last_dims("point", point, (3,))
    as_quaternion = torch.cat((torch.zeros_like(point[..., :1]), point), -1)
    out = quaternion_raw_multiply(
        quaternion_raw_multiply(quaternion, as_quaternion), quaternion_invert(quaternion)
    )
    return out[..., 1:]


def quaternion_to_matrix(quaternions: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (acting on column vectors) of quaternions.

    Non-unit quaternions are normalized first (the formula divides by ``|q|^2``);
    the zero quaternion gives the identity (no NaN).

    Args:
        quaternions: ``(..., 4)`` float, real part first, non-zero.

    Returns:
        ``(..., 3, 3)`` float.
    """
    check_last_dims("quaternions", quaternions, (4,))
    w, x, y, z = torch.unbind(quaternions, -1)
    norm_sq = (quaternions * quaternions).sum(-1)
    s = 2.0 / norm_sq.clamp_min(torch.finfo(norm_sq.dtype).tiny)
    rows = (
        1 - s * (y * y + z * z),
        s * (x * y - z * w),
        s * (x * z + y * w),
        s * (x * y + z * w),
        1 - s * (x * x + z * z),
        s * (y * z - x * w),
        s * (x * z - y * w),
        s * (y * z + x * w),
        1 - s * (x * x + y * y),
    )
    return torch.stack(rows, -1).reshape((*quaternions.shape[:-1], 3, 3))


def matrix_to_quaternion(matrix: torch.Tensor) -> torch.Tensor:
    """Standardized unit quaternions (``w >= 0``) of rotation matrices.

    With ``t_0 = 1 + m00 + m11 + m22`` and ``t_i = 1 + 2 m_ii - trace`` (i = 1..3),
    ``|q_i| = sqrt(t_i) / 2``. The component with the largest ``t_i`` (at least 1,
    since the four sum to 4) is taken from its square root and the other three from
    the off-diagonal sums and differences divided by ``4 q_i``, so every rotation,
    angle pi included, is converted with full precision and finite gradients.

    Args:
        matrix: ``(..., 3, 3)`` float rotation matrices (acting on column vectors).

    Returns:
        ``(..., 4)`` float, real part first.
    """
    check_last_dims("matrix", matrix, (3, 3))
    m = matrix
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    t = torch.stack(
        (
            1.0 + m00 + m11 + m22,
            1.0 + m00 - m11 - m22,
            1.0 - m00 + m11 - m22,
            1.0 - m00 - m11 + m22,
        ),
        -1,
    )
    # The chosen t_i is >= 1: clamping at 1/4 changes only unchosen candidates and
    # keeps their (discarded) square roots and divisions finite.
    big = 0.5 * t.clamp_min(0.25).sqrt()  # |q_i| for the chosen i
    d = 0.25 / big
    s21, d21 = m[..., 2, 1] + m[..., 1, 2], m[..., 2, 1] - m[..., 1, 2]
    s02, d02 = m[..., 0, 2] + m[..., 2, 0], m[..., 0, 2] - m[..., 2, 0]
    s10, d10 = m[..., 1, 0] + m[..., 0, 1], m[..., 1, 0] - m[..., 0, 1]
    candidates = torch.stack(
        (
            torch.stack((big[..., 0], d21 * d[..., 0], d02 * d[..., 0], d10 * d[..., 0]), -1),
            torch.stack((d21 * d[..., 1], big[..., 1], s10 * d[..., 1], s02 * d[..., 1]), -1),
            torch.stack((d02 * d[..., 2], s10 * d[..., 2], big[..., 2], s21 * d[..., 2]), -1),
            torch.stack((d10 * d[..., 3], s02 * d[..., 3], s21 * d[..., 3], big[..., 3]), -1),
        ),
        -2,
    )  # (..., 4 candidates, 4 components)
    best = t.detach().argmax(-1)[..., None, None].expand(*t.shape[:-1], 1, 4)
    return standardize_quaternion(candidates.gather(-2, best)[..., 0, :])


def axis_angle_to_quaternion(axis_angle: torch.Tensor) -> torch.Tensor:
    """Quaternions of axis-angle vectors (direction = axis, length = angle in radians).

    ``q = (cos(theta / 2), sin(theta / 2) / theta * v)`` with ``theta = |v|``; a
    Taylor series near 0 keeps values and gradients exact there.

    Args:
        axis_angle: ``(..., 3)`` float.

    Returns:
        ``(..., 4)`` float unit quaternions, real part first (``w < 0`` for angles
        above pi, as in PyTorch3D).
    """
    check_last_dims("axis_angle", axis_angle, (3,))
    theta_sq = (axis_angle * axis_angle).sum(-1, keepdim=True)
    small = small_angle_mask(theta_sq)
    theta = torch.where(small, 1.0, theta_sq).sqrt()
    half = 0.5 * theta
    scale = torch.where(small, 0.5 - theta_sq / 48.0 + theta_sq**2 / 3840.0, half.sin() / theta)
    real = torch.where(small, 1.0 - theta_sq / 8.0 + theta_sq**2 / 384.0, half.cos())
    return torch.cat((real, axis_angle * scale), -1)


def quaternion_to_axis_angle(quaternions: torch.Tensor) -> torch.Tensor:
    """Axis-angle vectors of (not necessarily unit) quaternions, angle in [0, pi].

    The quaternion is standardized first, so the angle ``2 atan2(|xyz|, w)`` is at
    most pi (PyTorch3D returns ``2 pi - angle`` about the opposite axis when
    ``w < 0``: the same rotation). A series in ``|xyz| / w`` keeps values and
    gradients exact near the identity; the zero quaternion gives the zero vector.

    Args:
        quaternions: ``(..., 4)`` float, real part first.

    Returns:
        ``(..., 3)`` float: unit axis times angle in radians.
    """
    q = standardize_quaternion(quaternions)
    w, xyz = q[..., :1], q[..., 1:]
    n_sq = (xyz * xyz).sum(-1, keepdim=True)
    # |xyz| / w small (n_sq == 0 included: the identity and the zero quaternion)
    small = n_sq <= torch.finfo(n_sq.dtype).eps ** 0.5 * (w * w)
    n = torch.where(small, 1.0, n_sq).sqrt()
    safe_w = torch.where(w > 0, w, 1.0)
    x_sq = n_sq / (safe_w * safe_w)
    # 2 atan(x) / x = 2 (1 - x^2/3 + x^4/5 - ...), x = |xyz| / w
    series = 2.0 * (1.0 - x_sq / 3.0 + x_sq * x_sq / 5.0) / safe_w
    ratio = torch.where(small, series, 2.0 * torch.atan2(n, w) / n)
    return xyz * ratio


def random_quaternions(
    n: int,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Uniformly distributed random rotations as standardized unit quaternions.

    Args:
        n: number of quaternions (>= 0).
        dtype: floating dtype (default: torch's default dtype).
        device: device of the result.
        generator: optional random generator (a diffmesh addition).

    Returns:
        ``(n, 4)`` float, real part first, ``w >= 0``.
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    q = torch.randn(n, 4, dtype=dtype, device=device, generator=generator)
    # A zero draw has probability 0; the clamp only guards the division.
    q = q / q.norm(dim=1, keepdim=True).clamp_min(torch.finfo(q.dtype).tiny)
    return standardize_quaternion(q)
