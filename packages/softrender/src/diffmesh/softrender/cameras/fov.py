"""OpenGL-style cameras defined by a field of view or a view box, projecting to NDC.

Both map view depth z in [znear, zfar] to NDC depth in [0, 1] (PyTorch3D's
convention, not OpenGL's [-1, 1]) and keep a right-handed frame throughout.
"""

from __future__ import annotations

import functools
import math

import torch
from diffmesh.meshcore.transforms import Transform3d

from .base import DEFAULT_R, DEFAULT_T, CamerasBase, require, stack_rows

__all__ = ["FoVOrthographicCameras", "FoVPerspectiveCameras"]


def _per_camera(cameras: CamerasBase, value: float | torch.Tensor) -> torch.Tensor:
    """A number or a (1,)/(N,) tensor as ``(N,)`` in the cameras' dtype and device."""
    return torch.as_tensor(value, dtype=cameras.dtype, device=cameras.device).expand(len(cameras))


def fov_perspective_matrix(
    znear: torch.Tensor, zfar: torch.Tensor, fov: torch.Tensor, aspect_ratio: torch.Tensor, degrees: bool
) -> torch.Tensor:
    """PyTorch3D's FoV perspective projection, (N, 4, 4) row-vector matrices, from (N,)
    ``znear``, ``zfar``, vertical ``fov`` and ``aspect_ratio`` (width / height).

    With ``t = tan(fov / 2)``: ``x_ndc = x / (z t a)``, ``y_ndc = y / (z t)``,
    ``z_ndc = zf (z - zn) / ((zf - zn) z)`` (0 at znear, 1 at zfar). PyTorch3D's operation
    order, so the matrices agree bit for bit.
    """
    fov_rad = (math.pi / 180.0) * fov if degrees else fov
    max_y = torch.tan(fov_rad / 2) * znear
    max_x = max_y * aspect_ratio
    zeros, ones = torch.zeros_like(znear), torch.ones_like(znear)
    depth = zfar - znear
    return stack_rows(
        [2.0 * znear / (max_x + max_x), zeros, zeros, zeros],
        [zeros, 2.0 * znear / (max_y + max_y), zeros, zeros],
        [zeros, zeros, zfar / depth, ones],
        [zeros, zeros, -(zfar * znear) / depth, zeros],
    )


def fov_orthographic_matrix(
    znear: torch.Tensor, zfar: torch.Tensor, max_x: torch.Tensor, min_x: torch.Tensor, max_y: torch.Tensor,
    min_y: torch.Tensor, scale_xyz: torch.Tensor,
) -> torch.Tensor:
    """PyTorch3D's FoV orthographic projection, (N, 4, 4) row-vector matrices, from (N,)
    view-box bounds and (N, 3) ``scale_xyz``: ``x_ndc = (2 s_x x - (max_x + min_x)) /
    (max_x - min_x)``, likewise y, ``z_ndc = (s_z z - znear) / (zfar - znear)``."""
    zeros, ones = torch.zeros_like(znear), torch.ones_like(znear)
    width, height, depth = max_x - min_x, max_y - min_y, zfar - znear
    sx, sy, sz = scale_xyz.unbind(1)
    return stack_rows(
        [(2.0 / width) * sx, zeros, zeros, zeros],
        [zeros, (2.0 / height) * sy, zeros, zeros],
        [zeros, zeros, (1.0 / depth) * sz, zeros],
        [-(max_x + min_x) / width, -(max_y + min_y) / height, -znear / depth, ones],
    )


class FoVPerspectiveCameras(CamerasBase):
    """Perspective cameras defined by a vertical field of view (OpenGL-style).

    Parameters are given for N cameras or one (``(N,)`` buffers): ``znear`` > 0, ``zfar`` >
    znear, ``aspect_ratio`` (width / height), ``fov`` in (0, 180) degrees or (0, pi)
    radians (``degrees``); ``R``, ``T`` world -> view; ``K`` an optional (N, 4, 4)
    column-vector projection used instead (PyTorch3D's). ValueError on bad values.
    """

    _STATIC_FIELDS = ("degrees",)
    znear: torch.Tensor
    zfar: torch.Tensor
    aspect_ratio: torch.Tensor
    fov: torch.Tensor

    def __init__(
        self,
        znear: float | torch.Tensor = 1.0,
        zfar: float | torch.Tensor = 100.0,
        aspect_ratio: float | torch.Tensor = 1.0,
        fov: float | torch.Tensor = 60.0,
        degrees: bool = True,
        R: torch.Tensor | tuple = DEFAULT_R,
        T: torch.Tensor | tuple = DEFAULT_T,
        K: torch.Tensor | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__()
        self._register(
            device, znear=znear, zfar=zfar, aspect_ratio=aspect_ratio, fov=fov, R=R, T=T, K=K
        )
        self.degrees = bool(degrees)
        limit, unit = (180.0, "degrees") if self.degrees else (math.pi, "radians")
        require(self.znear > 0, "znear must be > 0", znear=self.znear)
        require(self.znear < self.zfar, "znear must be < zfar", znear=self.znear, zfar=self.zfar)
        require(self.aspect_ratio > 0, "aspect_ratio must be > 0", aspect_ratio=self.aspect_ratio)
        fov_ok = (self.fov > 0) & (self.fov < limit)
        require(fov_ok, f"fov must be in (0, {limit:g}) {unit}", fov=self.fov)

    def compute_projection_matrix(
        self, znear: float | torch.Tensor, zfar: float | torch.Tensor, fov: float | torch.Tensor,
        aspect_ratio: float | torch.Tensor, degrees: bool,
    ) -> torch.Tensor:
        """PyTorch3D's K: (N, 4, 4) column-vector projections (arguments broadcast to (N,))."""
        args = [_per_camera(self, v) for v in (znear, zfar, fov, aspect_ratio)]
        return fov_perspective_matrix(*args, degrees).transpose(1, 2)

    def get_projection_transform(
        self, *, znear: float | torch.Tensor | None = None, zfar: float | torch.Tensor | None = None,
        aspect_ratio: float | torch.Tensor | None = None, fov: float | torch.Tensor | None = None,
        degrees: bool | None = None, K: torch.Tensor | None = None,
    ) -> Transform3d:
        """View -> NDC (``fov_perspective_matrix``, or ``K``), batch N or the overrides'.

        Arguments override the stored values for this call (a number, or batch N or 1); a
        ``K`` (here or at construction) with another override raises ValueError (PyTorch3D
        silently ignores the other one).
        """
        given = {"znear": znear, "zfar": zfar, "fov": fov, "aspect_ratio": aspect_ratio}
        unit = self.degrees if degrees is None else degrees
        build = functools.partial(fov_perspective_matrix, degrees=unit)
        return self._projection(K, {**given, "degrees": degrees}, build)

    def is_perspective(self) -> bool:
        return True


class FoVOrthographicCameras(CamerasBase):
    """Orthographic cameras defined by a view box (OpenGL-style): ``znear`` (may be negative)
    < ``zfar``, ``min_y`` < ``max_y`` (top), ``min_x`` < ``max_x`` (+X, left), ``scale_xyz``
    (N, 3) or (3,); ``R``, ``T``, ``K`` as :class:`FoVPerspectiveCameras`."""

    znear: torch.Tensor
    zfar: torch.Tensor
    max_y: torch.Tensor
    min_y: torch.Tensor
    max_x: torch.Tensor
    min_x: torch.Tensor
    scale_xyz: torch.Tensor

    def __init__(
        self,
        znear: float | torch.Tensor = 1.0,
        zfar: float | torch.Tensor = 100.0,
        max_y: float | torch.Tensor = 1.0,
        min_y: float | torch.Tensor = -1.0,
        max_x: float | torch.Tensor = 1.0,
        min_x: float | torch.Tensor = -1.0,
        scale_xyz: torch.Tensor | tuple = ((1.0, 1.0, 1.0),),
        R: torch.Tensor | tuple = DEFAULT_R,
        T: torch.Tensor | tuple = DEFAULT_T,
        K: torch.Tensor | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__()
        self._register(
            device, znear=znear, zfar=zfar, max_y=max_y, min_y=min_y, max_x=max_x, min_x=min_x,
            scale_xyz=scale_xyz, R=R, T=T, K=K,
        )
        require(self.znear < self.zfar, "znear must be < zfar", znear=self.znear, zfar=self.zfar)
        require(self.min_x < self.max_x, "max_x must be > min_x", max_x=self.max_x, min_x=self.min_x)
        require(self.min_y < self.max_y, "max_y must be > min_y", max_y=self.max_y, min_y=self.min_y)

    def compute_projection_matrix(
        self, znear: float | torch.Tensor, zfar: float | torch.Tensor, max_x: float | torch.Tensor,
        min_x: float | torch.Tensor, max_y: float | torch.Tensor, min_y: float | torch.Tensor,
        scale_xyz: torch.Tensor,
    ) -> torch.Tensor:
        """PyTorch3D's K: (N, 4, 4) column-vector projections (``scale_xyz`` (N, 3) or (3,))."""
        args = [_per_camera(self, v) for v in (znear, zfar, max_x, min_x, max_y, min_y)]
        scale = torch.as_tensor(scale_xyz, dtype=self.dtype, device=self.device)
        return fov_orthographic_matrix(*args, scale.expand(len(self), 3)).transpose(1, 2)

    def get_projection_transform(
        self, *, znear: float | torch.Tensor | None = None, zfar: float | torch.Tensor | None = None,
        max_y: float | torch.Tensor | None = None, min_y: float | torch.Tensor | None = None,
        max_x: float | torch.Tensor | None = None, min_x: float | torch.Tensor | None = None,
        scale_xyz: torch.Tensor | tuple | None = None, K: torch.Tensor | None = None,
    ) -> Transform3d:
        """View -> NDC (``fov_orthographic_matrix``, or ``K``); overrides as for FoVPerspectiveCameras."""
        given = dict(
            znear=znear, zfar=zfar, max_x=max_x, min_x=min_x, max_y=max_y, min_y=min_y,
            scale_xyz=scale_xyz,
        )
        return self._projection(K, given, fov_orthographic_matrix)

    def is_perspective(self) -> bool:
        return False
