"""Cameras from a focal length and principal point (SfM convention): perspective here,
orthographic in ``orthographic.py``, both on ``PinholeCameras``.

In NDC (``in_ndc=True``) (px, py) are NDC (+X left, +Y up). In screen space
(``in_ndc=False``, for photographs) focal length and principal point are pixels, the
principal point in image coordinates (+x right, +y down, origin top-left) and
``image_size`` is required: a point on the optical axis lands on pixel (px, py).
"""

from __future__ import annotations

import torch
from diffmesh.meshcore.transforms import Transform3d

from .base import CamerasBase, ImageSize, get_screen_to_ndc_transform
from .batched import _as_tensor, broadcast_batch

__all__ = ["PerspectiveCameras", "PinholeCameras", "init_pinhole", "pinhole_intrinsics", "pinhole_ndc_transform",
           "refuse_with_K"]

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


def init_pinhole(
    cameras: CamerasBase, focal_length: object, principal_point: object, R: object, T: object, K: object,
    device: torch.device | str, in_ndc: bool, image_size: ImageSize | None,
) -> None:
    """Validate and register the parameters shared by Perspective/OrthographicCameras."""
    if not isinstance(in_ndc, bool):
        raise TypeError(f"in_ndc must be a bool, got {type(in_ndc).__name__}")
    if not in_ndc and image_size is None:
        raise ValueError("image_size=(height, width) is required when in_ndc=False")
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    cameras._set_params(device, {
        "focal_length": (_focal_length_n2(focal_length, device), (2,)), "principal_point": (principal_point, (2,)),
        "R": (R, cameras._R_SPEC), "T": (T, cameras._T_SPEC), "K": (K, cameras._K_SPEC),
        "image_size": (image_size, (2,)),
    }, integer=("image_size",))
    cameras._in_ndc = in_ndc
    focal = cameras.focal_length.detach()
    if not bool(torch.isfinite(focal).all()) or bool((focal <= 0).any()):
        raise ValueError(f"focal_length must be finite and > 0, got {focal.cpu().tolist()}")
    if not bool(torch.isfinite(cameras.principal_point.detach()).all()):
        raise ValueError("principal_point must be finite")
    if cameras.image_size is not None and bool((cameras.image_size < 1).any()):
        raise ValueError(f"image_size must be >= 1 pixel, got {cameras.image_size.tolist()}")


def pinhole_intrinsics(
    cameras: CamerasBase, focal_length: object, principal_point: object
) -> tuple[torch.Tensor, ...]:
    """``(fx, fy, px, py)``, each ``(B,)``, with per-call overrides substituted."""
    focal, point = cameras.focal_length, cameras.principal_point
    if focal_length is not None:
        focal = cameras._override("focal_length", _focal_length_n2(focal_length, cameras.device), (2,))
    if principal_point is not None:
        point = cameras._override("principal_point", principal_point, (2,))
    focal, point = broadcast_batch({"focal_length": focal, "principal_point": point})
    return (*focal.unbind(1), *point.unbind(1))


def pinhole_ndc_transform(
    cameras: CamerasBase, principal_point: torch.Tensor, image_size: ImageSize | None
) -> Transform3d:
    """Screen-space projection -> NDC for ``principal_point`` (B, 2) in image coordinates
    (+x right; projected points are +X left): x shifted by ``-2 px`` (y by ``-2 py``), then
    ``x_ndc = (x + W/2) / s``, ``s = min(H, W) / 2``."""
    size = image_size if image_size is not None else cameras.get_image_size()
    eye = torch.eye(4, dtype=principal_point.dtype, device=principal_point.device)
    n = len(principal_point)
    last_row = torch.cat([-2.0 * principal_point, eye[3, 2:].expand(n, 2)], dim=1)
    shift = torch.cat([eye[:3].expand(n, 3, 4), last_row[:, None]], dim=1)
    to_ndc = get_screen_to_ndc_transform(cameras, with_xyflip=False, image_size=size)
    return Transform3d(shift).compose(to_ndc)


def refuse_with_K(cameras: CamerasBase, K: object, focal_length: object, principal_point: object) -> None:
    if (K is not None or cameras.K is not None) and (focal_length is not None or principal_point is not None):
        raise ValueError(
            "focal_length and principal_point cannot be overridden for cameras whose "
            "projection is given by K; pass K alone"
        )


class PinholeCameras(CamerasBase):
    """Cameras with a focal length and a principal point (the base of Perspective- and
    OrthographicCameras).

    Args:
        focal_length: scalar, ``(N,)``, ``(N, 1)`` (fx = fy) or ``(N, 2)``; > 0. NDC units
            if ``in_ndc``, else pixels.
        principal_point: ``(N, 2)`` or ``(2,)``; NDC if ``in_ndc``, else pixels in image
            coordinates (+x right, +y down).
        R, T: ``(N, 3, 3)`` / ``(N, 3)`` (or unbatched) world -> view (row vectors).
        K: optional ``(N, 4, 4)`` or ``(4, 4)`` column-vector calibration matrix used instead
            of focal_length / principal_point (PyTorch3D's K).
        in_ndc: whether the intrinsics are NDC (True) or pixels.
        image_size: (H, W) pixels, ``(N, 2)`` or ``(2,)``; needed when ``in_ndc=False``.

    Raises:
        ValueError: bad shapes or batch sizes, a non-positive or non-finite focal length,
            image_size < 1, or ``in_ndc=False`` without ``image_size``.
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
        self, *, focal_length: float | torch.Tensor | tuple | None = None,
        principal_point: torch.Tensor | tuple | None = None, K: torch.Tensor | None = None,
    ) -> Transform3d:
        """View -> NDC (screen units when ``in_ndc=False``), batch N or the overrides'.

        Column-vector matrix: perspective ``[[fx, 0, px, 0], [0, fy, py, 0], [0, 0, 0, 1],
        [0, 0, 1, 0]]`` (after the divide: ``(fx X/Z + px, fy Y/Z + py, 1/Z)``), orthographic
        ``[[fx, 0, 0, px], [0, fy, 0, py], [0, 0, 1, 0], [0, 0, 0, 1]]``. The arguments
        override the stored values; a ``K`` (here or at construction) excludes them.
        """
        refuse_with_K(self, K, focal_length, principal_point)
        projection = self._override_K(K)
        if projection is not None:
            return projection
        fx, fy, px, py = pinhole_intrinsics(self, focal_length, principal_point)
        zeros, ones = torch.zeros_like(fx), torch.ones_like(fx)
        point, depth = torch.stack([px, py, zeros, ones], dim=1), torch.stack([zeros, zeros, ones, zeros], dim=1)
        rows = [
            torch.stack([fx, zeros, zeros, zeros], dim=1),
            torch.stack([zeros, fy, zeros, zeros], dim=1),
            *((point, depth) if self.is_perspective() else (depth, point)),
        ]
        return Transform3d(torch.stack(rows, dim=1))

    def get_principal_point(self, **overrides: object) -> torch.Tensor:
        """``(N, 2)`` principal points in the camera's units, read from the projection (so a
        custom ``K`` is honoured); ``overrides`` as ``get_projection_transform``."""
        return self.get_projection_transform(**overrides).get_matrix()[:, 2 if self.is_perspective() else 3, :2]

    def get_ndc_camera_transform(self, *, image_size: ImageSize | None = None, **overrides: object) -> Transform3d:
        """Projection space -> NDC (identity in NDC; see ``pinhole_ndc_transform``)."""
        if self.in_ndc():
            return Transform3d(dtype=self.dtype, device=self.device)
        return pinhole_ndc_transform(self, self.get_principal_point(**overrides), image_size)

    def unproject_points(
        self, xy_depth: torch.Tensor, world_coordinates: bool = True, from_ndc: bool = False, **overrides: object
    ) -> torch.Tensor:
        """Inverse of ``transform_points`` for ``xy_depth`` (P, 3) or (N, P, 3): x, y in the
        projection space (NDC with ``from_ndc``), view depth (PyTorch3D's argument order)."""
        return super().unproject_points(xy_depth, world_coordinates, False, from_ndc=from_ndc, **overrides)

    def in_ndc(self) -> bool:
        return self._in_ndc


class PerspectiveCameras(PinholeCameras):
    """Perspective cameras: ``x_ndc = fx X / Z + px``, ``y_ndc = fy Y / Z + py``, ``z = 1 / Z``
    (arguments as :class:`PinholeCameras`)."""

    def is_perspective(self) -> bool:
        return True
