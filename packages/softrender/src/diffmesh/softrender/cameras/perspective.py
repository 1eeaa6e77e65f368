"""Pinhole cameras from a focal length and principal point (multi-view geometry / SfM).

In NDC (``in_ndc=True``) the projection is ``x_ndc = fx X / Z + px``,
``y_ndc = fy Y / Z + py``, ``z = 1 / Z``, with (px, py) in NDC (+X left, +Y up).
In screen space (``in_ndc=False``, for real photographs) focal length and principal
point are in pixels, the principal point in image coordinates (+x right, +y down,
origin at the top-left corner) and ``image_size`` is required: a world point on the
optical axis lands on pixel (px, py) of ``transform_points_screen``.
"""

from __future__ import annotations

import torch

from ..transforms import Transform3d
from .base import CamerasBase, ImageSize, get_screen_to_ndc_transform
from .batched import _as_tensor

__all__ = ["PerspectiveCameras"]

_EYE = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
_ZERO = (0.0, 0.0, 0.0)


def _focal_length_n2(focal_length: object, device: torch.device | str) -> torch.Tensor:
    """Focal length as ``(N, 2)``: a scalar, ``(N,)``, ``(N, 1)`` or ``(N, 2)``."""
    focal = _as_tensor("focal_length", focal_length, torch.device(device))
    if focal.ndim == 0:
        focal = focal.reshape(1, 1)
    elif focal.ndim == 1:
        focal = focal[:, None]
    if focal.ndim != 2 or focal.shape[1] not in (1, 2):
        raise ValueError(
            f"focal_length must be a scalar, (N,), (N, 1) or (N, 2), got shape {tuple(focal.shape)}"
        )
    return focal.expand(-1, 2)


class PerspectiveCameras(CamerasBase):
    """Perspective cameras with a focal length and a principal point.

    Args:
        focal_length: scalar, ``(N,)``, ``(N, 1)`` (fx = fy) or ``(N, 2)`` (fx, fy);
            > 0. NDC units if ``in_ndc``, else pixels.
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
        if not isinstance(in_ndc, bool):
            raise TypeError(f"in_ndc must be a bool, got {type(in_ndc).__name__}")
        if not in_ndc and image_size is None:
            raise ValueError("image_size=(height, width) is required when in_ndc=False")
        if isinstance(image_size, int) and not isinstance(image_size, bool):
            image_size = (image_size, image_size)
        self._set_params(
            device,
            {
                "focal_length": (_focal_length_n2(focal_length, device), (2,)),
                "principal_point": (principal_point, (2,)),
                "R": (R, self._R_SPEC),
                "T": (T, self._T_SPEC),
                "K": (K, self._K_SPEC),
                "image_size": (image_size, (2,)),
            },
            integer=("image_size",),
        )
        self._in_ndc = in_ndc
        focal = self.focal_length.detach()
        if not bool(torch.isfinite(focal).all()) or bool((focal <= 0).any()):
            raise ValueError(f"focal_length must be finite and > 0, got {focal.cpu().tolist()}")
        if not bool(torch.isfinite(self.principal_point.detach()).all()):
            raise ValueError("principal_point must be finite")
        if self.image_size is not None and bool((self.image_size < 1).any()):
            raise ValueError(f"image_size must be >= 1 pixel, got {self.image_size.tolist()}")

    def get_projection_transform(self) -> Transform3d:
        """View -> NDC (or -> screen units when ``in_ndc=False``); batch N.

        Column-vector matrix ``[[fx, 0, px, 0], [0, fy, py, 0], [0, 0, 0, 1],
        [0, 0, 1, 0]]``: after the divide by w = Z, ``(fx X/Z + px, fy Y/Z + py, 1/Z)``.
        A ``K`` given at construction is used instead.
        """
        if self.K is not None:
            return Transform3d(self.K.transpose(1, 2))
        fx, fy = self.focal_length.unbind(1)
        px, py = self.principal_point.unbind(1)
        zeros, ones = torch.zeros_like(fx), torch.ones_like(fx)
        rows = [
            torch.stack([fx, zeros, zeros, zeros], dim=1),
            torch.stack([zeros, fy, zeros, zeros], dim=1),
            torch.stack([px, py, zeros, ones], dim=1),
            torch.stack([zeros, zeros, ones, zeros], dim=1),
        ]
        return Transform3d(torch.stack(rows, dim=1))

    def get_principal_point(self) -> torch.Tensor:
        """``(N, 2)`` principal points, in the units the camera was defined in.

        Read from the projection matrix, so a custom ``K`` is honoured.
        """
        return self.get_projection_transform().get_matrix()[:, 2, :2]

    def get_ndc_camera_transform(self, *, image_size: ImageSize | None = None) -> Transform3d:
        """Projection space -> NDC.

        Identity in NDC. In screen space the principal point is given in image
        coordinates (+x right) while projected points follow PyTorch3D's (+X left),
        so x is shifted by ``-2 px`` (y by ``-2 py``) before the pixel -> NDC
        scaling ``x_ndc = (x + W/2) / s``, ``s = min(H, W) / 2``.

        Args:
            image_size: (H, W); defaults to the camera's own.
        """
        if self.in_ndc():
            return Transform3d(dtype=self.dtype, device=self.device)
        size = image_size if image_size is not None else self.get_image_size()
        eye = torch.eye(4, dtype=self.dtype, device=self.device)
        last_row = torch.cat(
            [-2.0 * self.get_principal_point(), eye[3, 2:].expand(len(self), 2)], dim=1
        )
        shift = torch.cat([eye[:3].expand(len(self), 3, 4), last_row[:, None]], dim=1)
        to_ndc = get_screen_to_ndc_transform(self, with_xyflip=False, image_size=size)
        return Transform3d(shift).compose(to_ndc)

    def is_perspective(self) -> bool:
        return True

    def in_ndc(self) -> bool:
        return self._in_ndc
