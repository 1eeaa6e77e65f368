"""Look-at camera placement: rotations and (R, T) from positions or spherical angles.

``R`` maps world to view coordinates as row vectors (``X_view = X @ R + T``); its
columns are the camera's axes in world coordinates: x (left on the image), y (up)
and z (viewing direction, from the camera towards ``at``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = ["camera_position_from_spherical_angles", "look_at_rotation", "look_at_view_transform"]

BatchScalar = float | Sequence[float] | torch.Tensor
BatchVector = Sequence[float] | Sequence[Sequence[float]] | torch.Tensor

#: Below this |cross(up, z)| (sine of the angle between up and the viewing
#: direction) the up vector is treated as parallel to the viewing direction.
_PARALLEL_TOL = 1e-5


def _tensor(name: str, value: object, device: torch.device | str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        tensor = value.to(device)
    else:
        try:
            tensor = torch.as_tensor(value, dtype=torch.float32, device=device)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(
                f"{name} must be a number, a sequence of numbers or a tensor, "
                f"got {type(value).__name__}"
            ) from None
    if not tensor.is_floating_point():
        tensor = tensor.to(torch.float32)
    return tensor


def _vectors(name: str, value: object, device: torch.device | str) -> torch.Tensor:
    """``value`` as ``(B, 3)``: accepts ``(3,)``, ``(1, 3)`` or ``(N, 3)``."""
    tensor = _tensor(name, value, device)
    if tensor.ndim == 1:
        tensor = tensor[None]
    if tensor.ndim != 2 or tensor.shape[1] != 3:
        raise ValueError(
            f"{name} must have shape (3,), (1, 3) or (N, 3), got {tuple(tensor.shape)}"
        )
    return tensor


def _scalars(name: str, value: object, device: torch.device | str) -> torch.Tensor:
    """``value`` as ``(B,)``: accepts a scalar, ``(N,)`` or ``(N, 1)``."""
    tensor = _tensor(name, value, device)
    if tensor.ndim == 2 and tensor.shape[1] == 1:
        tensor = tensor[:, 0]
    if tensor.ndim == 0:
        tensor = tensor[None]
    if tensor.ndim != 1:
        raise ValueError(f"{name} must be a scalar, (N,) or (N, 1), got {tuple(tensor.shape)}")
    return tensor


def _broadcast(named: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """Broadcast along dim 0 (sizes N or 1) and promote to one floating dtype."""
    batch, owner = 1, None
    for name, tensor in named.items():
        if len(tensor) != 1:
            if batch != 1 and len(tensor) != batch:
                raise ValueError(
                    f"{name} has batch size {len(tensor)} but {owner} has batch size {batch}; "
                    "batch sizes must be equal or 1"
                )
            batch, owner = len(tensor), name
    dtype = torch.float32
    for tensor in named.values():
        dtype = torch.promote_types(dtype, tensor.dtype)
    return [t.to(dtype).expand(batch, *t.shape[1:]) for t in named.values()]


def _normalize(v: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(eps)


def camera_position_from_spherical_angles(
    distance: BatchScalar,
    elevation: BatchScalar,
    azimuth: BatchScalar,
    degrees: bool = True,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Camera positions ``dist * (cos(e) sin(a), sin(e), cos(e) cos(a))``.

    Elevation is the angle above the y = 0 plane; azimuth is measured in that plane
    from +Z towards +X.

    Args:
        distance, elevation, azimuth: scalars, ``(N,)`` or ``(1,)``, broadcast.
        degrees: whether the angles are in degrees.
        device: device of the result (tensors are moved there).

    Returns:
        ``(N, 3)`` float positions relative to the target (differentiable).
    """
    dist, elev, azim = _broadcast(
        {
            "dist": _scalars("dist", distance, device),
            "elev": _scalars("elev", elevation, device),
            "azim": _scalars("azim", azimuth, device),
        }
    )
    if degrees:
        elev = (math.pi / 180.0) * elev
        azim = (math.pi / 180.0) * azim
    x = dist * torch.cos(elev) * torch.sin(azim)
    y = dist * torch.sin(elev)
    z = dist * torch.cos(elev) * torch.cos(azim)
    return torch.stack([x, y, z], dim=1)


def look_at_rotation(
    camera_position: BatchVector,
    at: BatchVector = ((0, 0, 0),),
    up: BatchVector = ((0, 1, 0),),
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """World -> view rotations of cameras at ``camera_position`` looking at ``at``.

    z = normalize(at - camera_position), x = normalize(up x z), y = z x x; R has
    columns (x, y, z). When ``up`` is (nearly) parallel to the viewing direction
    (|up x z| < 1e-5, e.g. a camera straight above the target) ``up x z`` is
    undefined; then the up vector is replaced by the unit vector ``h = e_x x up``
    (``e_y x up`` if up is along X), signed by ``z . up``. For the default up = +Y
    this is the limit of approaching the pole at azimuth 0: looking straight down,
    world -Z is up on the image (at elevation -90, +Z).

    Args:
        camera_position: ``(3,)``, ``(1, 3)`` or ``(N, 3)`` world positions.
        at: ``(3,)``, ``(1, 3)`` or ``(N, 3)`` points looked at.
        up: ``(3,)``, ``(1, 3)`` or ``(N, 3)`` world up directions (non-zero).
        device: device of the result.

    Returns:
        ``(N, 3, 3)`` float rotations (orthonormal, det +1; differentiable).

    Raises:
        ValueError: bad shapes, batch sizes that cannot broadcast, a zero ``up`` or
            a camera placed at its target.
    """
    position, at_t, up_t = _broadcast(
        {
            "camera_position": _vectors("camera_position", camera_position, device),
            "at": _vectors("at", at, device),
            "up": _vectors("up", up, device),
        }
    )
    forward = at_t - position
    if bool((forward.detach().norm(dim=1) == 0).any()):
        raise ValueError("camera_position must differ from at (the viewing direction is undefined)")
    if bool((up_t.detach().norm(dim=1) == 0).any()):
        raise ValueError("up must be a non-zero vector")
    z_axis = _normalize(forward)
    up_unit = _normalize(up_t)
    x_raw = torch.linalg.cross(up_unit, z_axis, dim=1)
    parallel = x_raw.detach().norm(dim=1, keepdim=True) < _PARALLEL_TOL
    if bool(parallel.any()):
        e_x = torch.tensor([1.0, 0.0, 0.0], dtype=up_unit.dtype, device=up_unit.device)
        e_y = torch.tensor([0.0, 1.0, 0.0], dtype=up_unit.dtype, device=up_unit.device)
        helper = torch.linalg.cross(e_x.expand_as(up_unit), up_unit, dim=1)
        along_x = helper.detach().norm(dim=1, keepdim=True) < 0.5
        helper = torch.where(
            along_x, torch.linalg.cross(e_y.expand_as(up_unit), up_unit, dim=1), helper
        )
        sign = torch.where((z_axis * up_unit).sum(dim=1, keepdim=True) < 0, -1.0, 1.0)
        fallback_up = sign.to(helper.dtype) * _normalize(helper)
        x_raw = torch.where(parallel, torch.linalg.cross(fallback_up, z_axis, dim=1), x_raw)
    x_axis = _normalize(x_raw)
    y_axis = _normalize(torch.linalg.cross(z_axis, x_axis, dim=1))
    return torch.stack([x_axis, y_axis, z_axis], dim=2)


def look_at_view_transform(
    dist: BatchScalar = 1.0,
    elev: BatchScalar = 0.0,
    azim: BatchScalar = 0.0,
    degrees: bool = True,
    eye: BatchVector | None = None,
    at: BatchVector = ((0, 0, 0),),
    up: BatchVector = ((0, 1, 0),),
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """(R, T) of cameras looking at ``at``, placed by spherical angles or by ``eye``.

    The camera sits at ``C = at + camera_position_from_spherical_angles(dist, elev,
    azim)`` (or at ``eye`` when given), ``R = look_at_rotation(C, at, up)`` and
    ``T = -C @ R``, so that ``C @ R + T = 0``. Example: dist 2.7, elev = azim = 0
    gives R = diag(-1, 1, -1), T = (0, 0, 2.7).

    Args:
        dist: distance from ``at``; scalar, ``(N,)`` or ``(1,)``.
        elev: elevation above the y = 0 plane; scalar, ``(N,)`` or ``(1,)``.
        azim: azimuth in the y = 0 plane from +Z towards +X; scalar, ``(N,)``, ``(1,)``.
        degrees: whether elev and azim are in degrees.
        eye: optional ``(3,)``, ``(1, 3)`` or ``(N, 3)`` camera positions overriding
            dist/elev/azim.
        at: ``(3,)``, ``(1, 3)`` or ``(N, 3)`` target points.
        up: ``(3,)``, ``(1, 3)`` or ``(N, 3)`` world up directions.
        device: device of the results.

    Returns:
        R ``(N, 3, 3)`` and T ``(N, 3)`` float, N the broadcast batch size
        (differentiable w.r.t. every tensor input).
    """
    at_t = _vectors("at", at, device)
    up_t = _vectors("up", up, device)
    if eye is not None:
        center, at_t, up_t = _broadcast(
            {"eye": _vectors("eye", eye, device), "at": at_t, "up": up_t}
        )
    else:
        dist_t, elev_t, azim_t, at_t, up_t = _broadcast(
            {
                "dist": _scalars("dist", dist, device),
                "elev": _scalars("elev", elev, device),
                "azim": _scalars("azim", azim, device),
                "at": at_t,
                "up": up_t,
            }
        )
        center = (
            camera_position_from_spherical_angles(
                dist_t, elev_t, azim_t, degrees=degrees, device=device
            )
            + at_t
        )
    R = look_at_rotation(center, at_t, up_t, device=device)
    T = -(center[:, None, :] @ R)[:, 0, :]
    return R, T
