"""Look-at camera placement: rotations and (R, T) from positions or spherical angles.

``R`` maps world to view coordinates as row vectors (``X_view = X @ R + T``); its
columns are the camera's axes in world coordinates: x (left on the image), y (up)
and z (viewing direction, from the camera towards ``at``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .cameras.batched import as_batched, as_tensor, broadcast_batch

__all__ = ["camera_position_from_spherical_angles", "look_at_rotation", "look_at_view_transform"]

BatchScalar = float | Sequence[float] | torch.Tensor
BatchVector = Sequence[float] | Sequence[Sequence[float]] | torch.Tensor


def _batch(name: str, value: object, device: torch.device | str, trailing: tuple[int, ...]) -> torch.Tensor:
    """``value`` as float ``(B, *trailing)`` (float32 unless a floating tensor): one element,
    ``(N, *trailing)`` or, for scalars, ``(N, 1)``."""
    tensor = as_tensor(name, value, device)
    if not isinstance(value, torch.Tensor) or not tensor.is_floating_point():
        tensor = tensor.to(torch.float32)
    if trailing == () and tensor.ndim == 2 and tensor.shape[1] == 1:
        tensor = tensor[:, 0]
    return as_batched(name, tensor, trailing, device)


def camera_position_from_spherical_angles(
    distance: BatchScalar,
    elevation: BatchScalar,
    azimuth: BatchScalar,
    degrees: bool = True,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """(N, 3) positions relative to the target, ``dist * (cos(e) sin(a), sin(e), cos(e) cos(a))``:
    elevation above the y = 0 plane, azimuth in it from +Z towards +X (scalars or (N,))."""
    named = {"dist": distance, "elev": elevation, "azim": azimuth}
    dist, elev, azim = (_batch(name, value, device, ()) for name, value in named.items())
    n = len(broadcast_batch({"dist": dist, "elev": elev, "azim": azim})[0])  # checks the batches
    # As in PyTorch3D, each angle's trigonometry runs in its own dtype (float32 for
    # Python numbers) before the products promote: cos(90 deg) is then -4.4e-8, and
    # the camera's axes at the poles are PyTorch3D's (see look_at_rotation).
    if degrees:
        elev = (math.pi / 180.0) * elev
        azim = (math.pi / 180.0) * azim
    x = dist * torch.cos(elev) * torch.sin(azim)
    y = dist * torch.sin(elev)
    z = dist * torch.cos(elev) * torch.cos(azim)
    return torch.stack([x.expand(n), y.expand(n), z.expand(n)], dim=1)


def look_at_rotation(
    camera_position: BatchVector,
    at: BatchVector = ((0, 0, 0),),
    up: BatchVector = ((0, 1, 0),),
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """(N, 3, 3) world -> view rotations of cameras at ``camera_position`` looking at ``at``
    (each (3,), (1, 3) or (N, 3), like ``up``).

    z = normalize(at - camera_position), x = normalize(up x z), y = z x x; R has columns
    (x, y, z). Near the pole x follows the tiny residual ``up x z``, as PyTorch3D's; only an
    exactly zero residual (PyTorch3D: a singular matrix) takes x = normalize(up x e_z)
    (``up x e_x`` if up is along Z). ValueError for a zero ``up`` or a camera at its target.
    """
    named = {"camera_position": camera_position, "at": at, "up": up}
    named = {name: _batch(name, value, device, (3,)) for name, value in named.items()}
    position, at_t, up_t = broadcast_batch(named, torch.float32)
    forward = at_t - position
    if bool((forward.detach().norm(dim=1) == 0).any()):
        raise ValueError("camera_position must differ from at (the viewing direction is undefined)")
    if bool((up_t.detach().norm(dim=1) == 0).any()):
        raise ValueError("up must be a non-zero vector")
    z_axis = F.normalize(forward, dim=1)
    up_unit = F.normalize(up_t, dim=1)
    x_raw = torch.linalg.cross(up_unit, z_axis, dim=1)
    parallel = x_raw.detach().norm(dim=1, keepdim=True) == 0
    if bool(parallel.any()):
        eye = torch.eye(3, dtype=up_unit.dtype, device=up_unit.device).expand(len(up_unit), 3, 3)
        helper = torch.linalg.cross(up_unit, eye[:, 2], dim=1)
        along_z = helper.detach().norm(dim=1, keepdim=True) < 0.5
        helper = torch.where(along_z, torch.linalg.cross(up_unit, eye[:, 0], dim=1), helper)
        x_raw = torch.where(parallel, helper, x_raw)
    # No epsilon floor here: x_raw may be tiny near the poles, and no row is zero any more.
    x_axis = F.normalize(x_raw, dim=1, eps=0.0)
    y_axis = F.normalize(torch.linalg.cross(z_axis, x_axis, dim=1), dim=1, eps=0.0)
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
    """(R (N, 3, 3), T (N, 3)) of cameras at ``C = at + camera_position_from_spherical_angles(
    dist, elev, azim)`` (or ``eye``): ``R = look_at_rotation(C, at, up)``, ``T = -C @ R``.
    E.g. dist 2.7, elev = azim = 0: R = diag(-1, 1, -1), T = (0, 0, 2.7)."""
    at_t, up_t = _batch("at", at, device, (3,)), _batch("up", up, device, (3,))
    if eye is None:
        offset = camera_position_from_spherical_angles(
            dist, elev, azim, degrees=degrees, device=device
        )
        named = {"dist/elev/azim": offset, "at": at_t, "up": up_t}
    else:
        named = {"eye": _batch("eye", eye, device, (3,)), "at": at_t, "up": up_t}
    start, at_t, up_t = broadcast_batch(named, torch.float32)
    center = start if eye is not None else start + at_t
    R = look_at_rotation(center, at_t, up_t, device=device)
    T = -(center[:, None, :] @ R)[:, 0, :]
    return R, T
