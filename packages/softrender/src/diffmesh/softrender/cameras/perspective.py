"""Cameras from a focal length and principal point (SfM convention), in NDC or, for
photographs, in pixels: perspective here, orthographic in ``orthographic.py``; the functions
here hold the code both call."""

from __future__ import annotations

import torch
from diffmesh.meshcore.transforms import Transform3d

from .base import (
    DEFAULT_R,
    DEFAULT_T,
    CamerasBase,
    ImageSize,
    focal_length_n2,
    get_screen_to_ndc_transform,
    require,
    stack_rows,
)

__all__ = ["PerspectiveCameras", "init_pinhole", "pinhole_ndc_transform", "pinhole_projection"]


def init_pinhole(
    cameras: CamerasBase, focal_length: object, principal_point: object, R: object, T: object, K: object,
    device: torch.device | str, in_ndc: bool, image_size: ImageSize | None,
) -> None:
    """Validate and register the parameters of Perspective/OrthographicCameras."""
    if not isinstance(in_ndc, bool):
        raise TypeError(f"in_ndc must be a bool, got {type(in_ndc).__name__}")
    if not in_ndc and image_size is None:
        raise ValueError("image_size=(height, width) is required when in_ndc=False")
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    focal_length = focal_length_n2(focal_length, device)
    cameras._register(
        device, focal_length=focal_length, principal_point=principal_point, R=R, T=T, K=K,
        image_size=image_size,
    )
    cameras._in_ndc = in_ndc
    require(cameras.focal_length > 0, "focal_length must be > 0", focal_length=cameras.focal_length)
    if cameras.image_size is not None:
        require(cameras.image_size >= 1, "image_size must be >= 1 pixel", image_size=cameras.image_size)


def pinhole_projection(
    cameras: CamerasBase, focal_length: object, principal_point: object, K: object
) -> Transform3d:
    """View -> NDC (screen units when ``in_ndc=False``) of Perspective/OrthographicCameras, batch
    N or the overrides'.

    Column-vector matrix: perspective ``[[fx, 0, px, 0], [0, fy, py, 0], [0, 0, 0, 1],
    [0, 0, 1, 0]]`` (after the divide: ``(fx X/Z + px, fy Y/Z + py, 1/Z)``), orthographic
    ``[[fx, 0, 0, px], [0, fy, 0, py], [0, 0, 1, 0], [0, 0, 0, 1]]``. The arguments override
    the stored values for this call; a ``K`` (here or at construction) excludes them.
    """

    def matrix(focal: torch.Tensor, point: torch.Tensor) -> torch.Tensor:
        (fx, fy), (px, py) = focal.unbind(1), point.unbind(1)
        zeros, ones = torch.zeros_like(fx), torch.ones_like(fx)
        shift, depth = [px, py, zeros, ones], [zeros, zeros, ones, zeros]
        last = (shift, depth) if cameras.is_perspective() else (depth, shift)
        return stack_rows([fx, zeros, zeros, zeros], [zeros, fy, zeros, zeros], *last)

    given = {"focal_length": focal_length, "principal_point": principal_point}
    return cameras._projection(K, given, matrix)


def pinhole_ndc_transform(
    cameras: CamerasBase, image_size: ImageSize | None, overrides: dict[str, object]
) -> Transform3d:
    """Projection space -> NDC: identity in NDC; in screen space, for the principal point (B, 2)
    in image coordinates (+x right; projected points are +X left) read from the projection (so
    a custom ``K`` is honoured; ``overrides`` as ``get_projection_transform``), x shifted by
    ``-2 px`` (y by ``-2 py``), then ``x_ndc = (x + W/2) / s``, ``s = min(H, W) / 2``."""
    if cameras.in_ndc():
        return Transform3d(dtype=cameras.dtype, device=cameras.device)
    principal_point = cameras.get_principal_point(**overrides)
    size = image_size if image_size is not None else cameras.get_image_size()
    shift = torch.eye(4, dtype=principal_point.dtype, device=principal_point.device)
    shift = shift.repeat(len(principal_point), 1, 1)
    shift[:, 3, :2] = -2.0 * principal_point  # the row-vector translation
    to_ndc = get_screen_to_ndc_transform(cameras, with_xyflip=False, image_size=size)
    return Transform3d(shift).compose(to_ndc)


class PerspectiveCameras(CamerasBase):
    """Perspective cameras: ``x_ndc = fx X / Z + px``, ``y_ndc = fy Y / Z + py``, ``z = 1 / Z``.

    Args:
        focal_length: scalar, ``(N,)``, ``(N, 1)`` (fx = fy) or ``(N, 2)``; > 0. NDC units
            if ``in_ndc``, else pixels.
        principal_point: ``(N, 2)`` or ``(2,)``; NDC (+X left, +Y up) if ``in_ndc``, else
            pixels in image coordinates (+x right, +y down, origin top-left): a point on the
            optical axis lands on pixel (px, py).
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
        """``(N, 2)`` principal points in the camera's units, read from the projection (so a
        custom ``K`` is honoured); ``overrides`` as ``get_projection_transform``."""
        return self.get_projection_transform(**overrides).get_matrix()[:, 2, :2]

    def get_ndc_camera_transform(self, *, image_size: ImageSize | None = None, **overrides: object) -> Transform3d:
        """Projection space -> NDC (see ``pinhole_ndc_transform``)."""
        return pinhole_ndc_transform(self, image_size, overrides)

    def unproject_points(
        self, xy_depth: torch.Tensor, world_coordinates: bool = True, from_ndc: bool = False, **overrides: object
    ) -> torch.Tensor:
        """Inverse of ``transform_points`` for ``xy_depth`` (P, 3) or (N, P, 3): x, y in the
        projection space (NDC with ``from_ndc``), view depth (PyTorch3D's argument order)."""
        return super().unproject_points(xy_depth, world_coordinates, False, from_ndc=from_ndc, **overrides)

    def is_perspective(self) -> bool:
        return True
