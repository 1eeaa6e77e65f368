"""Orthographic cameras from a focal length (scale) and principal point (SfM convention)."""

from __future__ import annotations

import torch
from diffmesh.meshcore.transforms import Transform3d

from .base import DEFAULT_R, DEFAULT_T, CamerasBase, ImageSize
from .perspective import init_pinhole, pinhole_ndc_transform, pinhole_projection

__all__ = ["OrthographicCameras"]


class OrthographicCameras(CamerasBase):
    """Orthographic cameras: ``x_ndc = fx X + px``, ``y_ndc = fy Y + py``, ``z = Z`` (arguments
    as :class:`~diffmesh.softrender.cameras.perspective.PerspectiveCameras`; focal length in
    NDC units or pixels per world unit)."""

    _STATIC_FIELDS = ("_in_ndc",)
    focal_length: torch.Tensor
    principal_point: torch.Tensor

    def __init__(
        self,
        focal_length: float | torch.Tensor | tuple = 1.0,
        principal_point: torch.Tensor | tuple = ((0.0, 0.0),),
        R: torch.Tensor | tuple = DEFAULT_R,
        T: torch.Tensor | tuple = DEFAULT_T,
        K: torch.Tensor | None = None,
        device: torch.device | str = "cpu",
        in_ndc: bool = True,
        image_size: ImageSize | None = None,
    ) -> None:
        super().__init__()
        init_pinhole(self, focal_length, principal_point, R, T, K, device, in_ndc, image_size)

    def get_projection_transform(
        self, *, focal_length: float | torch.Tensor | tuple | None = None,
        principal_point: torch.Tensor | tuple | None = None, K: torch.Tensor | None = None,
    ) -> Transform3d:
        """View -> NDC, or screen units when ``in_ndc=False`` (see ``pinhole_projection``)."""
        return pinhole_projection(self, focal_length, principal_point, K)

    def get_principal_point(self, **overrides: object) -> torch.Tensor:
        """As :meth:`PerspectiveCameras.get_principal_point` (``(N, 2)``)."""
        return self.get_projection_transform(**overrides).get_matrix()[:, 3, :2]

    def get_ndc_camera_transform(self, *, image_size: ImageSize | None = None, **overrides: object) -> Transform3d:
        """Projection space -> NDC (see ``pinhole_ndc_transform``)."""
        return pinhole_ndc_transform(self, image_size, overrides)

    def unproject_points(
        self, xy_depth: torch.Tensor, world_coordinates: bool = True, from_ndc: bool = False, **overrides: object
    ) -> torch.Tensor:
        """As :meth:`PerspectiveCameras.unproject_points` (``xy_depth`` (P, 3) or (N, P, 3))."""
        return super().unproject_points(xy_depth, world_coordinates, False, from_ndc=from_ndc, **overrides)

    def is_perspective(self) -> bool:
        return False
