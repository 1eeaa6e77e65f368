"""Orthographic cameras from a focal length (scale) and principal point (SfM convention).

In NDC (``in_ndc=True``) the projection is ``x_ndc = fx X + px``, ``y_ndc = fy Y + py``,
``z = Z`` (PyTorch3D's ``OrthographicCameras``). In screen space (``in_ndc=False``)
focal length and principal point are in pixels, the principal point in image
coordinates (+x right, +y down) and ``image_size`` is required.
"""

from __future__ import annotations

import torch
from diffmesh.meshcore.transforms import Transform3d

from .base import CamerasBase, ImageSize
from .perspective import init_pinhole, pinhole_intrinsics, pinhole_ndc_transform, refuse_with_K

__all__ = ["OrthographicCameras"]

_EYE = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
_ZERO = (0.0, 0.0, 0.0)


class OrthographicCameras(CamerasBase):
    """Orthographic cameras with a focal length (scale) and a principal point.

    Args:
        focal_length: scalar, ``(N,)``, ``(N, 1)`` (fx = fy) or ``(N, 2)`` (fx, fy);
            > 0. NDC units per world unit if ``in_ndc``, else pixels per world unit.
        principal_point: ``(N, 2)`` or ``(2,)``; NDC if ``in_ndc``, else pixels in
            image coordinates (+x right, +y down).
        R: ``(N, 3, 3)`` or ``(3, 3)`` world -> view rotation (row vectors).
        T: ``(N, 3)`` or ``(3,)`` world -> view translation.
        K: optional ``(N, 4, 4)`` or ``(4, 4)`` column-vector calibration matrix
            used instead of focal_length / principal_point (PyTorch3D's K).
        device: device for the parameters.
        in_ndc: whether the intrinsics are given in NDC (True) or in pixels.
        image_size: (H, W) pixels, ``(N, 2)`` or ``(2,)``; needed when
            ``in_ndc=False``, optional default for ``transform_points_screen``.

    Raises:
        ValueError: bad shapes, batch sizes that cannot broadcast, a non-positive or
            non-finite focal length, image_size < 1, or ``in_ndc=False`` without
            ``image_size``.
    """

    _STATIC_FIELDS = ("_in_ndc",)
    focal_length: torch.Tensor
    principal_point: torch.Tensor

    def __init__(
        self,
        focal_length: float | torch.Tensor | tuple = 1.0,
        principal_point: torch.Tensor | tuple = ((0.0, 0.0),),
        R: torch.Tensor | tuple = (_EYE,),
        T: torch.Tensor | tuple = (_ZERO,),
        K: torch.Tensor | None = None,
        device: torch.device | str = "cpu",
        in_ndc: bool = True,
        image_size: ImageSize | None = None,
    ) -> None:
        super().__init__()
        init_pinhole(self, focal_length, principal_point, R, T, K, device, in_ndc, image_size)

    def get_projection_transform(
        self,
        *,
        focal_length: float | torch.Tensor | tuple | None = None,
        principal_point: torch.Tensor | tuple | None = None,
        K: torch.Tensor | None = None,
    ) -> Transform3d:
        """View -> NDC (or -> screen units when ``in_ndc=False``).

        Column-vector matrix ``[[fx, 0, 0, px], [0, fy, 0, py], [0, 0, 1, 0],
        [0, 0, 0, 1]]``: ``(fx X + px, fy Y + py, Z)``, no divide. The arguments
        override the stored values for this call; a ``K`` (given here or at
        construction) is used instead and excludes the other two.

        Returns:
            Transform3d of batch N (or the overrides' batch).
        """
        refuse_with_K(self, K, focal_length, principal_point)
        projection = self._override_K(K)
        if projection is not None:
            return projection
        fx, fy, px, py = pinhole_intrinsics(self, focal_length, principal_point)
        zeros, ones = torch.zeros_like(fx), torch.ones_like(fx)
        rows = [
            torch.stack([fx, zeros, zeros, zeros], dim=1),
            torch.stack([zeros, fy, zeros, zeros], dim=1),
            torch.stack([zeros, zeros, ones, zeros], dim=1),
            torch.stack([px, py, zeros, ones], dim=1),
        ]
        return Transform3d(torch.stack(rows, dim=1))

    def get_principal_point(self, **overrides: object) -> torch.Tensor:
        """``(N, 2)`` principal points, read from the projection (a custom K is honoured).

        Args:
            **overrides: as for ``get_projection_transform``.
        """
        return self.get_projection_transform(**overrides).get_matrix()[:, 3, :2]

    def get_ndc_camera_transform(
        self, *, image_size: ImageSize | None = None, **overrides: object
    ) -> Transform3d:
        """Projection space -> NDC (identity in NDC; see ``pinhole_ndc_transform``).

        Args:
            image_size: (H, W); defaults to the camera's own.
            **overrides: as for ``get_projection_transform``.
        """
        if self.in_ndc():
            return Transform3d(dtype=self.dtype, device=self.device)
        return pinhole_ndc_transform(self, self.get_principal_point(**overrides), image_size)

    def unproject_points(
        self,
        xy_depth: torch.Tensor,
        world_coordinates: bool = True,
        from_ndc: bool = False,
        **overrides: object,
    ) -> torch.Tensor:
        """Inverse of ``transform_points`` (PyTorch3D's argument order).

        Args:
            xy_depth: ``(P, 3)`` or ``(N, P, 3)`` float: x, y in the camera's
                projection space (NDC with ``from_ndc``) and the view-space depth.
            world_coordinates: return world points (else view-space points).
            from_ndc: x, y are in NDC even for a screen-space camera.
            **overrides: ``R``, ``T`` and projection parameters for this call.
        """
        return super().unproject_points(
            xy_depth, world_coordinates, False, from_ndc=from_ndc, **overrides
        )

    def is_perspective(self) -> bool:
        return False

    def in_ndc(self) -> bool:
        return self._in_ndc
