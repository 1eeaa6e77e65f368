"""OpenGL-style cameras defined by a field of view or a view box, projecting to NDC.

Both map view depth z in [znear, zfar] to NDC depth in [0, 1] (PyTorch3D's
convention, not OpenGL's [-1, 1]) and keep a right-handed frame throughout.
"""

from __future__ import annotations

import math

import torch
from diffmesh.meshcore.transforms import Transform3d

from .base import CamerasBase

__all__ = ["FoVOrthographicCameras", "FoVPerspectiveCameras"]

_EYE = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
_ZERO = (0.0, 0.0, 0.0)


def _check_finite(**tensors: torch.Tensor) -> None:
    for name, tensor in tensors.items():
        if not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"{name} must be finite, got {tensor.detach().cpu().tolist()}")


def _check_near_far(znear: torch.Tensor, zfar: torch.Tensor, positive_near: bool) -> None:
    _check_finite(znear=znear, zfar=zfar)
    if positive_near and bool((znear <= 0).any()):
        raise ValueError(f"znear must be > 0, got {znear.detach().cpu().tolist()}")
    if bool((znear >= zfar).any()):
        raise ValueError(
            f"znear must be < zfar, got znear={znear.detach().cpu().tolist()} "
            f"and zfar={zfar.detach().cpu().tolist()}"
        )


def _refuse_params_with_K(cameras: CamerasBase, K: object, given: dict[str, object]) -> None:
    """ValueError when a parameter override would be ignored because K is set."""
    if K is None and cameras.K is None:
        return
    ignored = sorted(name for name, value in given.items() if value is not None)
    if ignored:
        raise ValueError(
            f"{', '.join(ignored)} cannot be overridden for cameras whose projection is "
            "given by K; pass K alone"
        )


def _rows(*rows: list[torch.Tensor]) -> torch.Tensor:
    """Stack per-camera scalars ``(N,)`` into ``(N, len(rows), len(row))``."""
    return torch.stack([torch.stack(row, dim=1) for row in rows], dim=1)


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
    return _rows(
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
    return _rows(
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
        R: torch.Tensor | tuple = (_EYE,),
        T: torch.Tensor | tuple = (_ZERO,),
        K: torch.Tensor | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__()
        self._set_params(device, {
            "znear": (znear, ()), "zfar": (zfar, ()), "aspect_ratio": (aspect_ratio, ()), "fov": (fov, ()),
            "R": (R, self._R_SPEC), "T": (T, self._T_SPEC), "K": (K, self._K_SPEC),
        })
        self.degrees = bool(degrees)
        _check_near_far(self.znear, self.zfar, positive_near=True)
        _check_finite(aspect_ratio=self.aspect_ratio, fov=self.fov)
        if bool((self.aspect_ratio <= 0).any()):
            raise ValueError(
                f"aspect_ratio must be > 0, got {self.aspect_ratio.detach().cpu().tolist()}"
            )
        limit = 180.0 if self.degrees else math.pi
        if bool(((self.fov <= 0) | (self.fov >= limit)).any()):
            unit = "degrees" if self.degrees else "radians"
            raise ValueError(
                f"fov must be in (0, {limit:g}) {unit}, got {self.fov.detach().cpu().tolist()}"
            )

    def compute_projection_matrix(
        self, znear: float | torch.Tensor, zfar: float | torch.Tensor, fov: float | torch.Tensor,
        aspect_ratio: float | torch.Tensor, degrees: bool,
    ) -> torch.Tensor:
        """PyTorch3D's K: (N, 4, 4) column-vector projections (arguments broadcast to (N,))."""
        args = [self._per_camera(v) for v in (znear, zfar, fov, aspect_ratio)]
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
        given = {"znear": znear, "zfar": zfar, "aspect_ratio": aspect_ratio, "fov": fov}
        _refuse_params_with_K(self, K, {**given, "degrees": degrees})
        projection = self._override_K(K)
        if projection is not None:
            return projection
        znear_t, zfar_t, aspect_t, fov_t = self._projection_params(given, dict.fromkeys(given, ()))
        degrees = self.degrees if degrees is None else degrees
        return Transform3d(fov_perspective_matrix(znear_t, zfar_t, fov_t, aspect_t, degrees))

    def is_perspective(self) -> bool:
        return True

    def get_znear(self) -> torch.Tensor:
        """``(N,)`` near clipping distances."""
        return self.znear


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
        R: torch.Tensor | tuple = (_EYE,),
        T: torch.Tensor | tuple = (_ZERO,),
        K: torch.Tensor | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__()
        self._set_params(device, {
            "znear": (znear, ()), "zfar": (zfar, ()), "max_y": (max_y, ()), "min_y": (min_y, ()),
            "max_x": (max_x, ()), "min_x": (min_x, ()), "scale_xyz": (scale_xyz, (3,)),
            "R": (R, self._R_SPEC), "T": (T, self._T_SPEC), "K": (K, self._K_SPEC),
        })
        _check_near_far(self.znear, self.zfar, positive_near=False)
        _check_finite(max_x=self.max_x, min_x=self.min_x, max_y=self.max_y, min_y=self.min_y)
        for low, high in (("min_x", "max_x"), ("min_y", "max_y")):
            lo, hi = getattr(self, low), getattr(self, high)
            if bool((lo >= hi).any()):
                raise ValueError(
                    f"{high} must be > {low}, got {high}={hi.detach().cpu().tolist()} "
                    f"and {low}={lo.detach().cpu().tolist()}"
                )

    def compute_projection_matrix(
        self, znear: float | torch.Tensor, zfar: float | torch.Tensor, max_x: float | torch.Tensor,
        min_x: float | torch.Tensor, max_y: float | torch.Tensor, min_y: float | torch.Tensor,
        scale_xyz: torch.Tensor,
    ) -> torch.Tensor:
        """PyTorch3D's K: (N, 4, 4) column-vector projections (``scale_xyz`` (N, 3) or (3,))."""
        args = [self._per_camera(v) for v in (znear, zfar, max_x, min_x, max_y, min_y)]
        scale = torch.as_tensor(scale_xyz, dtype=self.dtype, device=self.device)
        return fov_orthographic_matrix(*args, scale.expand(len(self), 3)).transpose(1, 2)

    def get_projection_transform(
        self, *, znear: float | torch.Tensor | None = None, zfar: float | torch.Tensor | None = None,
        max_y: float | torch.Tensor | None = None, min_y: float | torch.Tensor | None = None,
        max_x: float | torch.Tensor | None = None, min_x: float | torch.Tensor | None = None,
        scale_xyz: torch.Tensor | tuple | None = None, K: torch.Tensor | None = None,
    ) -> Transform3d:
        """View -> NDC (``fov_orthographic_matrix``, or ``K``); overrides as for FoVPerspectiveCameras."""
        given = {"znear": znear, "zfar": zfar, "max_x": max_x, "min_x": min_x, "max_y": max_y, "min_y": min_y,
                 "scale_xyz": scale_xyz}
        _refuse_params_with_K(self, K, given)
        projection = self._override_K(K)
        if projection is not None:
            return projection
        shapes = {name: ((3,) if name == "scale_xyz" else ()) for name in given}
        return Transform3d(fov_orthographic_matrix(*self._projection_params(given, shapes)))

    def is_perspective(self) -> bool:
        return False

    def get_znear(self) -> torch.Tensor:
        """``(N,)`` near planes."""
        return self.znear
