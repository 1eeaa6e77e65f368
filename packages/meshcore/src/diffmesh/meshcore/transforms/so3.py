"""SO(3) exponential and logarithm maps, rotation angles and the hat operator.

PyTorch3D's ``so3`` functions with its signatures. PyTorch3D bounds its gradients
near the angles 0 and pi with ``eps`` / ``cos_bound`` clamps, which bias the values
there; these versions use Taylor series and the quaternion route instead, so values
are exact at every angle and gradients finite. The two arguments are accepted for
compatibility; ``eps`` still bounds the accepted trace range.
"""

from __future__ import annotations

import torch

from ._checks import check_last_dims, safe_sqrt
from .quaternions import matrix_to_quaternion
from .rotations import axis_angle_to_matrix, matrix_to_axis_angle, skew

__all__ = [
    "hat",
    "hat_inv",
    "so3_exp_map",
    "so3_log_map",
    "so3_relative_angle",
    "so3_rotation_angle",
]

#: Largest |h + h^T| entry that ``hat_inv`` accepts as skew-symmetric (PyTorch3D's).
HAT_INV_SKEW_SYMMETRIC_TOL = 1e-5


def _check_batch_of(name: str, tensor: object, trailing: tuple[int, ...]) -> torch.Tensor:
    tensor = check_last_dims(name, tensor, trailing)
    if tensor.ndim != len(trailing) + 1:
        dims = ", ".join(str(d) for d in trailing)
        raise ValueError(f"{name} must have shape (N, {dims}), got {tuple(tensor.shape)}")
    return tensor


def hat(v: torch.Tensor) -> torch.Tensor:
    """Skew-symmetric matrices with ``hat(v) @ u = v x u``.

    Args:
        v: ``(N, 3)`` float.

    Returns:
        ``(N, 3, 3)`` float.
    """
    return skew(_check_batch_of("v", v, (3,)))


def hat_inv(h: torch.Tensor) -> torch.Tensor:
    """Inverse of ``hat``: ``(h[2, 1], h[0, 2], h[1, 0])``.

    Args:
        h: ``(N, 3, 3)`` float skew-symmetric matrices.

    Returns:
        ``(N, 3)`` float.

    Raises:
        ValueError: ``h`` is not skew-symmetric (|h + h^T| > 1e-5).
    """
    _check_batch_of("h", h, (3, 3))
    if h.numel() and float((h + h.transpose(1, 2)).abs().max()) > HAT_INV_SKEW_SYMMETRIC_TOL:
        raise ValueError("h must be skew-symmetric: one of the input matrices is not")
    return torch.stack((h[:, 2, 1], h[:, 0, 2], h[:, 1, 0]), -1)


def so3_exp_map(log_rot: torch.Tensor, eps: float = 0.0001) -> torch.Tensor:
    """Rotation matrices ``exp(hat(log_rot))`` (Rodrigues' formula).

    The same as ``axis_angle_to_matrix``, restricted to a batch of vectors.

    Args:
        log_rot: ``(N, 3)`` float axis-angle vectors.
        eps: accepted for PyTorch3D compatibility, unused (no clamp is needed).

    Returns:
        ``(N, 3, 3)`` float.
    """
    return axis_angle_to_matrix(_check_batch_of("log_rot", log_rot, (3,)))


def so3_log_map(R: torch.Tensor, eps: float = 0.0001, cos_bound: float = 0.0001) -> torch.Tensor:
    """Axis-angle vectors (logarithms) of rotation matrices, angle in [0, pi].

    Args:
        R: ``(N, 3, 3)`` float rotation matrices.
        eps: tolerance of the trace check (trace in [-1 - eps, 3 + eps]).
        cos_bound: accepted for PyTorch3D compatibility, unused.

    Returns:
        ``(N, 3)`` float.

    Raises:
        ValueError: a trace outside [-1 - eps, 3 + eps] (not a rotation).
    """
    _check_trace(_check_batch_of("R", R, (3, 3)), eps)
    return matrix_to_axis_angle(R)


def _check_trace(R: torch.Tensor, eps: float) -> torch.Tensor:
    trace = R.diagonal(dim1=-2, dim2=-1).sum(-1)
    if bool(((trace < -1.0 - eps) | (trace > 3.0 + eps)).any()):
        raise ValueError(f"R has a trace outside the valid range [-1 - eps, 3 + eps], eps={eps}")
    return trace


def so3_rotation_angle(
    R: torch.Tensor,
    eps: float = 0.0001,
    cos_angle: bool = False,
    cos_bound: float = 0.0001,
) -> torch.Tensor:
    """Rotation angles of rotation matrices, in [0, pi].

    The angle is ``2 atan2(|xyz|, |w|)`` of the matrix's quaternion: accurate at 0
    and pi, where ``acos((trace - 1) / 2)`` loses half the digits. Its gradient at
    exactly 0 (a cone point) is taken as 0.

    Args:
        R: ``(N, 3, 3)`` float rotation matrices.
        eps: tolerance of the trace check (trace in [-1 - eps, 3 + eps]).
        cos_angle: return ``cos(angle) = (trace - 1) / 2`` instead of the angle.
        cos_bound: accepted for PyTorch3D compatibility, unused.

    Returns:
        ``(N,)`` float.

    Raises:
        ValueError: a trace outside [-1 - eps, 3 + eps] (not a rotation).
    """
    trace = _check_trace(_check_batch_of("R", R, (3, 3)), eps)
    if cos_angle:
        return 0.5 * (trace - 1.0)
    q = matrix_to_quaternion(R)
    xyz_norm = safe_sqrt((q[..., 1:] ** 2).sum(-1))
    return 2.0 * torch.atan2(xyz_norm, q[..., 0].abs())


def so3_relative_angle(
    R1: torch.Tensor,
    R2: torch.Tensor,
    cos_angle: bool = False,
    cos_bound: float = 0.0001,
    eps: float = 0.0001,
) -> torch.Tensor:
    """Angles of the relative rotations ``R1 @ R2^T``, in [0, pi].

    Args:
        R1, R2: ``(N, 3, 3)`` float rotation matrices.
        cos_angle: return the cosines instead of the angles.
        cos_bound: accepted for PyTorch3D compatibility, unused.
        eps: tolerance of the trace check.

    Returns:
        ``(N,)`` float.
    """
    _check_batch_of("R1", R1, (3, 3))
    _check_batch_of("R2", R2, (3, 3))
    if len(R1) != len(R2):
        raise ValueError(f"R1 has batch size {len(R1)} but R2 has batch size {len(R2)}")
    return so3_rotation_angle(R1 @ R2.transpose(1, 2), eps=eps, cos_angle=cos_angle)
