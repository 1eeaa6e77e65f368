"""PyTorch3D's deprecated camera names: functions (as in PyTorch3D) returning the class that
replaces them, with a ``DeprecationWarning`` naming it, attributed to the caller's line."""

from __future__ import annotations

import warnings

import torch

from .base import DEFAULT_R, DEFAULT_T
from .fov import FoVOrthographicCameras, FoVPerspectiveCameras
from .orthographic import OrthographicCameras
from .perspective import PerspectiveCameras

__all__ = ["OpenGLOrthographicCameras", "OpenGLPerspectiveCameras", "SfMOrthographicCameras", "SfMPerspectiveCameras"]


def _warn(old: str, new: str) -> None:
    warnings.warn(
        f"{old} is deprecated, use {new} instead ({old} will be removed in a future release)",
        DeprecationWarning,
        stacklevel=3,
    )


def OpenGLPerspectiveCameras(
    znear: float | torch.Tensor = 1.0,
    zfar: float | torch.Tensor = 100.0,
    aspect_ratio: float | torch.Tensor = 1.0,
    fov: float | torch.Tensor = 60.0,
    degrees: bool = True,
    R: torch.Tensor | tuple = DEFAULT_R,
    T: torch.Tensor | tuple = DEFAULT_T,
    device: torch.device | str = "cpu",
) -> FoVPerspectiveCameras:
    """Deprecated: ``FoVPerspectiveCameras`` with the same arguments (warns)."""
    _warn("OpenGLPerspectiveCameras", "FoVPerspectiveCameras")
    return FoVPerspectiveCameras(znear, zfar, aspect_ratio, fov, degrees, R, T, device=device)


def OpenGLOrthographicCameras(
    znear: float | torch.Tensor = 1.0,
    zfar: float | torch.Tensor = 100.0,
    top: float | torch.Tensor = 1.0,
    bottom: float | torch.Tensor = -1.0,
    left: float | torch.Tensor = -1.0,
    right: float | torch.Tensor = 1.0,
    scale_xyz: torch.Tensor | tuple = ((1.0, 1.0, 1.0),),
    R: torch.Tensor | tuple = DEFAULT_R,
    T: torch.Tensor | tuple = DEFAULT_T,
    device: torch.device | str = "cpu",
) -> FoVOrthographicCameras:
    """Deprecated: ``FoVOrthographicCameras(max_y=top, min_y=bottom, max_x=right,
    min_x=left, ...)`` (warns)."""
    _warn("OpenGLOrthographicCameras", "FoVOrthographicCameras")
    return FoVOrthographicCameras(
        znear=znear, zfar=zfar, max_y=top, min_y=bottom, max_x=right, min_x=left, scale_xyz=scale_xyz, R=R, T=T,
        device=device,
    )


def SfMPerspectiveCameras(
    focal_length: float | torch.Tensor | tuple = 1.0,
    principal_point: torch.Tensor | tuple = ((0.0, 0.0),),
    R: torch.Tensor | tuple = DEFAULT_R,
    T: torch.Tensor | tuple = DEFAULT_T,
    device: torch.device | str = "cpu",
) -> PerspectiveCameras:
    """Deprecated: ``PerspectiveCameras`` in NDC with the same arguments (warns)."""
    _warn("SfMPerspectiveCameras", "PerspectiveCameras")
    return PerspectiveCameras(focal_length, principal_point, R, T, device=device)


def SfMOrthographicCameras(
    focal_length: float | torch.Tensor | tuple = 1.0,
    principal_point: torch.Tensor | tuple = ((0.0, 0.0),),
    R: torch.Tensor | tuple = DEFAULT_R,
    T: torch.Tensor | tuple = DEFAULT_T,
    device: torch.device | str = "cpu",
) -> OrthographicCameras:
    """Deprecated: ``OrthographicCameras`` in NDC with the same arguments (warns)."""
    _warn("SfMOrthographicCameras", "OrthographicCameras")
    return OrthographicCameras(focal_length, principal_point, R, T, device=device)
