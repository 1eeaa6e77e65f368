"""``RasterizationSettings``: the rasterizer's options, validated once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ._clip import check_z_clip_value
from .rasterize_meshes import parse_image_size

__all__ = ["RasterizationSettings", "resolve_z_clip_value"]


def _optional_bool(name: str, value: object) -> None:
    if value is not None and not isinstance(value, bool):
        raise TypeError(f"RasterizationSettings.{name}: expected None or a bool, got {value!r}")


@dataclass(frozen=True)
class RasterizationSettings:
    """Options of :class:`MeshRasterizer` (PyTorch3D's names and defaults).

    Attributes:
        image_size: S for an (S, S) image, or (H, W).
        blur_radius: squared NDC distance in [0, 2] within which a face touches a pixel
            outside it (0: hard edges).
        faces_per_pixel: K, the nearest faces kept per pixel.
        bin_size: accepted for compatibility; a hint with no effect (no binning).
        max_faces_per_bin: accepted for compatibility; no effect.
        perspective_correct: None means ``cameras.is_perspective()``.
        clip_barycentric_coords: None means ``blur_radius > 0``.
        cull_backfaces: skip faces whose projected winding is clockwise.
        z_clip_value: None, or a view depth > 0 at which faces are clipped before
            rasterization (see :func:`rasterize_meshes`). None with perspective-correct
            barycentrics means ``znear / 2`` of the cameras that have a ``znear``
            (PyTorch3D's default, see :func:`resolve_z_clip_value`); otherwise faces
            reaching below view depth 1e-8 are skipped whole.
    """

    image_size: int | tuple[int, int] = 256
    blur_radius: float = 0.0
    faces_per_pixel: int = 1
    bin_size: int | None = None
    max_faces_per_bin: int | None = None
    perspective_correct: bool | None = None
    clip_barycentric_coords: bool | None = None
    cull_backfaces: bool = False
    z_clip_value: float | None = None

    def __post_init__(self) -> None:
        size = parse_image_size(self.image_size)
        if not isinstance(self.image_size, int):
            object.__setattr__(self, "image_size", size)
        blur = self.blur_radius
        if isinstance(blur, bool) or not isinstance(blur, (int, float)):
            raise TypeError(f"RasterizationSettings.blur_radius: expected a float, got {blur!r}")
        if not 0.0 <= blur <= 2.0:
            raise ValueError(f"RasterizationSettings.blur_radius: expected a value in [0, 2], got {blur}")
        k = self.faces_per_pixel
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"RasterizationSettings.faces_per_pixel: expected an int >= 1, got {k!r}")
        for name in ("bin_size", "max_faces_per_bin"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"RasterizationSettings.{name}: expected None or an int >= 0, got {value!r}")
        _optional_bool("perspective_correct", self.perspective_correct)
        _optional_bool("clip_barycentric_coords", self.clip_barycentric_coords)
        if not isinstance(self.cull_backfaces, bool):
            raise TypeError(f"RasterizationSettings.cull_backfaces: expected a bool, got {self.cull_backfaces!r}")
        depth = check_z_clip_value("RasterizationSettings.z_clip_value", self.z_clip_value)
        object.__setattr__(self, "z_clip_value", depth)


def resolve_z_clip_value(z_clip_value: float | None, cameras: Any, perspective_correct: bool) -> float | None:
    """The clipping depth ``MeshRasterizer`` uses, PyTorch3D's rule.

    An explicit ``z_clip_value`` is used as it is. Otherwise, with perspective-correct
    barycentrics and cameras that have a near plane (``get_znear()`` not None: the FoV
    cameras), faces are clipped at half the smallest ``znear`` of the batch; else not at
    all. A non-positive ``znear / 2`` also means no clipping (it could not change an image:
    faces reaching below view depth 1e-8 are skipped anyway).

    Args:
        z_clip_value: the settings' value (None or a depth > 0).
        cameras: the camera batch.
        perspective_correct: the resolved ``perspective_correct`` setting.

    Returns:
        The view depth to clip at, or None.
    """
    if z_clip_value is not None:
        return float(z_clip_value)
    if not perspective_correct:
        return None
    znear = cameras.get_znear() if hasattr(cameras, "get_znear") else None
    if znear is None:
        return None
    half = float(torch.as_tensor(znear).min()) / 2.0
    return half if half > 0.0 else None
