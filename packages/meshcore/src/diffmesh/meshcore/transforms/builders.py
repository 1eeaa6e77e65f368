"""Transform3d subclasses built from parameters: Translate, Scale, Rotate, RotateAxisAngle.

Each keeps its closed-form inverse (negated translation, reciprocal scale, transposed
rotation), so inverses of their compositions are exact. Parameters given as tensors
keep their autograd graph.
"""

from __future__ import annotations

import math
import warnings

import torch

from .rotations import _axis_rotation
from .transform3d import Transform3d

__all__ = ["Rotate", "RotateAxisAngle", "Scale", "Translate"]

Scalar = float | int | torch.Tensor


def _dtype_of(values: tuple[object, ...], dtype: torch.dtype | None) -> torch.dtype:
    """``dtype`` if given, else the promotion of the floating tensors given, else float32."""
    if dtype is not None:
        return dtype
    out = None
    for value in values:
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            out = value.dtype if out is None else torch.promote_types(out, value.dtype)
    return torch.float32 if out is None else out


def _device_of(values: tuple[object, ...], device: torch.device | str | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    for value in values:
        if isinstance(value, torch.Tensor):
            return value.device
    return torch.device("cpu")


def _per_batch(name: str, value: object, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A number, 0-d, ``(N,)`` or ``(N, 1)`` tensor as ``(N,)``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, torch.Tensor)):
        raise TypeError(f"{name} must be a number or a tensor, got {type(value).__name__}")
    tensor = torch.as_tensor(value, dtype=dtype, device=device)
    if tensor.ndim == 2 and tensor.shape[1] == 1:
        tensor = tensor[:, 0]
    if tensor.ndim == 0:
        tensor = tensor[None]
    if tensor.ndim != 1:
        raise ValueError(
            f"{name} must be a number or a tensor of shape (N,) or (N, 1), "
            f"got {tuple(tensor.shape)}"
        )
    return tensor


def _xyz(
    cls_name: str,
    x: object,
    y: object,
    z: object,
    dtype: torch.dtype | None,
    device: torch.device | str | None,
    allow_singleton: bool,
) -> torch.Tensor:
    """PyTorch3D's ``_handle_input``: the parameters as one ``(N, 3)`` tensor.

    Accepts ``x`` of shape ``(N, 3)`` alone; or x, y, z each a number, 0-d, ``(N,)``
    or ``(N, 1)`` tensor (broadcast to a common N); or (``allow_singleton``) ``x``
    alone as such a scalar, used for all three axes.
    """
    values = (x, y, z)
    dt, dev = _dtype_of(values, dtype), _device_of(values, device)
    if isinstance(x, torch.Tensor) and x.ndim == 2 and x.shape[1] == 3:
        if y is not None or z is not None:
            raise ValueError(f"{cls_name}: y and z must be None when x has shape (N, 3)")
        if not x.is_floating_point():
            x = x.to(dt)
        return x.to(device=dev, dtype=dt)
    if y is None and z is None and allow_singleton:
        y = z = x
    if y is None or z is None:
        raise ValueError(
            f"{cls_name} expects x of shape (N, 3), or x, y and z; got y={y!r} and z={z!r}"
        )
    parts = [
        _per_batch(f"{cls_name} {axis}", value, dt, dev)
        for axis, value in zip("xyz", (x, y, z), strict=True)
    ]
    n = max(len(p) for p in parts)
    for axis, part in zip("xyz", parts, strict=True):
        if len(part) not in (1, n):
            raise ValueError(f"{cls_name}: {axis} has batch size {len(part)}; expected 1 or {n}")
    return torch.stack([p.expand(n) for p in parts], dim=1)


def _affine(linear: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
    """Row-vector matrices ``[[linear, 0], [translation, 1]]``, ``(N, 4, 4)``."""
    n = len(translation) if len(linear) == 1 else len(linear)
    linear, translation = linear.expand(n, 3, 3), translation.expand(n, 3)
    top = torch.cat([linear, torch.zeros_like(linear[:, :, :1])], dim=2)
    bottom = torch.cat([translation, torch.ones_like(translation[:, :1])], dim=1)[:, None]
    return torch.cat([top, bottom], dim=1)


class Translate(Transform3d):
    """Translations: ``X' = X + (x, y, z)``.

    Args:
        x: ``(N, 3)`` tensor of translations (then y and z are None), or the x
            component as a number, 0-d, ``(N,)`` or ``(N, 1)`` tensor.
        y, z: the other components, same forms as a component ``x``.
        dtype: dtype of the matrix (default: that of the tensors given, else float32).
        device: device of the matrix (default: that of the tensors given, else CPU).
    """

    def __init__(
        self,
        x: Scalar | torch.Tensor,
        y: Scalar | None = None,
        z: Scalar | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        xyz = _xyz("Translate", x, y, z, dtype, device, allow_singleton=False)
        eye = torch.eye(3, dtype=xyz.dtype, device=xyz.device)[None]
        self._matrix = _affine(eye, xyz)
        self._inverse = _affine(eye, -xyz)


class Scale(Transform3d):
    """Axis-aligned scalings: ``X' = X * (x, y, z)``.

    Args:
        x: ``(N, 3)`` tensor of per-axis factors (then y and z are None), a uniform
            factor alone (number, 0-d, ``(N,)`` or ``(N, 1)`` tensor), or the x factor.
        y, z: the other factors, same forms as a factor ``x``.
        dtype: dtype of the matrix (default: that of the tensors given, else float32).
        device: device of the matrix (default: that of the tensors given, else CPU).
    """

    def __init__(
        self,
        x: Scalar | torch.Tensor,
        y: Scalar | None = None,
        z: Scalar | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        xyz = _xyz("Scale", x, y, z, dtype, device, allow_singleton=True)
        ones = torch.ones_like(xyz[:, :1])
        self._matrix = torch.diag_embed(torch.cat([xyz, ones], dim=1))
        self._inverse = torch.diag_embed(torch.cat([1.0 / xyz, ones], dim=1))


class Rotate(Transform3d):
    """Rotations of row vectors: ``X' = X @ R``.

    Args:
        R: ``(3, 3)`` or ``(N, 3, 3)`` float rotation matrices. Applied to row
            vectors, so ``Rotate(R)`` turns a point ``p`` into ``R^T p`` in column
            form.
        dtype: dtype of the matrix (default: that of ``R``).
        device: device of the matrix (default: that of ``R``).
        orthogonal_tol: tolerance of the validity check (``R R^T = I`` and
            ``det R = 1``); a failing ``R`` gives a UserWarning, as in PyTorch3D.
    """

    def __init__(
        self,
        R: torch.Tensor,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        orthogonal_tol: float = 1e-5,
    ) -> None:
        if not isinstance(R, torch.Tensor) or not R.is_floating_point():
            raise TypeError(
                f"R must be a floating-point torch.Tensor, got {type(R).__name__}"
                + (f" of dtype {R.dtype}" if isinstance(R, torch.Tensor) else "")
            )
        if R.ndim == 2:
            R = R[None]
        if R.ndim != 3 or R.shape[1:] != (3, 3):
            raise ValueError(f"R must have shape (3, 3) or (N, 3, 3), got {tuple(R.shape)}")
        R = R.to(device=_device_of((R,), device), dtype=dtype or R.dtype)
        _check_valid_rotation_matrix(R, orthogonal_tol)
        zero = torch.zeros_like(R[:, 0])
        self._matrix = _affine(R, zero)
        self._inverse = _affine(R.transpose(1, 2), zero)


class RotateAxisAngle(Rotate):
    """Rotations about a coordinate axis by ``angle`` (right-handed, row vectors).

    The matrix is the column-vector rotation about ``axis``, transposed for row
    vectors, so that ``RotateAxisAngle(90, "Z").transform_points([[1, 0, 0]])``
    gives ``[[0, 1, 0]]``.

    Args:
        angle: number, 0-d, ``(N,)`` or ``(N, 1)`` tensor.
        axis: ``"X"``, ``"Y"`` or ``"Z"`` (case-insensitive).
        degrees: whether ``angle`` is in degrees.
        dtype: dtype of the matrix (default: that of ``angle``, else float32).
        device: device of the matrix (default: that of ``angle``, else CPU).
    """

    def __init__(
        self,
        angle: Scalar,
        axis: str = "X",
        degrees: bool = True,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        if not isinstance(axis, str) or axis.upper() not in ("X", "Y", "Z"):
            raise ValueError(f"axis must be one of 'X', 'Y', 'Z', got {axis!r}")
        dt, dev = _dtype_of((angle,), dtype), _device_of((angle,), device)
        angle_t = _per_batch("RotateAxisAngle angle", angle, dt, dev)
        if degrees:
            angle_t = angle_t * (math.pi / 180.0)
        R = _axis_rotation("XYZ".index(axis.upper()), angle_t).transpose(1, 2)
        zero = torch.zeros_like(R[:, 0])
        self._matrix = _affine(R, zero)
        self._inverse = _affine(R.transpose(1, 2), zero)


def _check_valid_rotation_matrix(R: torch.Tensor, tol: float) -> None:
    """Warn (as PyTorch3D does) when ``R`` is not orthonormal with determinant 1."""
    if R.numel() == 0:
        return
    with torch.no_grad():
        eye = torch.eye(3, dtype=R.dtype, device=R.device)
        orthogonal = bool(((R @ R.transpose(1, 2)) - eye).abs().max() <= tol)
        proper = bool((torch.linalg.det(R) - 1.0).abs().max() <= max(tol, 1e-5))
    if not (orthogonal and proper):
        warnings.warn("R is not a valid rotation matrix", UserWarning, stacklevel=3)
