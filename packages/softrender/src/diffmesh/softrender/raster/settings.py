"""The rasterizer's options: the public ``RasterizationSettings`` and the resolved ``RasterOptions``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["RasterOptions", "RasterizationSettings", "check_z_clip_value", "parse_image_size"]

def parse_image_size(image_size: Any) -> tuple[int, int]:
    """``image_size`` as (H, W): an int S means (S, S).

    Raises:
        TypeError, ValueError: not a positive int or a pair of positive ints.
    """
    if isinstance(image_size, bool):
        raise TypeError(f"image_size: expected an int or an (H, W) pair of ints, got {image_size!r}")
    if isinstance(image_size, int):
        size = (image_size, image_size)
    elif isinstance(image_size, (tuple, list)) and len(image_size) == 2:
        if not all(isinstance(s, int) and not isinstance(s, bool) for s in image_size):
            raise TypeError(f"image_size: expected an (H, W) pair of ints, got {image_size!r}")
        size = (int(image_size[0]), int(image_size[1]))
    else:
        raise TypeError(f"image_size: expected an int or an (H, W) pair of ints, got {image_size!r}")
    if size[0] <= 0 or size[1] <= 0:
        raise ValueError(f"image_size: expected positive sizes, got {image_size!r}")
    return size

def check_z_clip_value(name: str, value: object) -> float | None:
    """Validate a clipping depth: None, or a finite number > 0.

    Depths at or below 0 are rejected: the rasterizer skips every face reaching below view
    depth 1e-8 anyway, so such a plane could never change an image, and the perspective
    un-projection divides by it.

    Returns:
        The value as a float (or None).

    Raises:
        TypeError: not None and not a real number.
        ValueError: not finite or not > 0.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected None or a float view depth, got {value!r}")
    depth = float(value)
    if not math.isfinite(depth) or depth <= 0.0:
        raise ValueError(f"{name}: expected a finite view depth > 0, got {value!r}")
    return depth


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
            (PyTorch3D's default, see :meth:`resolve`); otherwise faces
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

    def resolve(self, cameras: Any) -> RasterOptions:
        """The options for ``cameras``: PyTorch3D's rules for the None defaults.

        ``perspective_correct`` None means ``cameras.is_perspective()``;
        ``clip_barycentric_coords`` None means ``blur_radius > 0``; ``z_clip_value`` None
        with perspective-correct barycentrics and cameras that have a near plane
        (``get_znear()`` not None: the FoV cameras) means half the smallest ``znear`` of the
        batch (no clipping when that is not positive: faces reaching below view depth 1e-8
        are skipped anyway), otherwise no clipping.
        """
        perspective = self.perspective_correct
        if perspective is None:
            perspective = bool(cameras.is_perspective())
        clip = self.clip_barycentric_coords
        if clip is None:
            clip = self.blur_radius > 0.0
        depth = self.z_clip_value
        if depth is None and perspective:
            znear = cameras.get_znear() if hasattr(cameras, "get_znear") else None
            if znear is not None:
                half = float(torch.as_tensor(znear).min()) / 2.0
                depth = half if half > 0.0 else None
        return RasterOptions(
            image_size=self.image_size,
            blur_radius=float(self.blur_radius),
            faces_per_pixel=self.faces_per_pixel,
            perspective_correct=perspective,
            clip_barycentric_coords=clip,
            cull_backfaces=self.cull_backfaces,
            z_clip_value=depth,
        )


@dataclass(frozen=True)
class RasterOptions:
    """Resolved rasterizer options, validated once (the arguments of ``rasterize_meshes``).

    Attributes:
        image_size: (H, W) in pixels (an int S given is stored as (S, S)).
        blur_radius: squared NDC distance in [0, 2] within which a face touches a pixel.
        faces_per_pixel: K >= 1.
        perspective_correct: perspective-correct barycentrics.
        clip_barycentric_coords: clip barycentrics to [0, 1] and renormalise.
        cull_backfaces: skip clockwise (back-facing) faces.
        z_clip_value: None, or the view depth > 0 to clip faces at.
        defer_barycentrics: a speed hint for consumers that read only ``dists``: the
            barycentrics are recomputed, bit for bit, when first read (same results).

    Raises:
        TypeError, ValueError: an option of the wrong type or out of range, named.
    """

    image_size: tuple[int, int] = (256, 256)
    blur_radius: float = 0.0
    faces_per_pixel: int = 8
    perspective_correct: bool = False
    clip_barycentric_coords: bool = False
    cull_backfaces: bool = False
    z_clip_value: float | None = None
    defer_barycentrics: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_size", parse_image_size(self.image_size))
        blur, k = self.blur_radius, self.faces_per_pixel
        if isinstance(blur, bool) or not isinstance(blur, (int, float)):
            raise TypeError(f"blur_radius: expected a float, got {type(blur).__name__}")
        if not 0.0 <= float(blur) <= 2.0:
            raise ValueError(f"blur_radius: expected a squared NDC distance in [0, 2], got {blur}")
        if isinstance(k, bool) or not isinstance(k, int):
            raise TypeError(f"faces_per_pixel: expected an int, got {type(k).__name__}")
        if k < 1:
            raise ValueError(f"faces_per_pixel: expected at least 1, got {k}")
        object.__setattr__(self, "blur_radius", float(blur))
        object.__setattr__(self, "z_clip_value", check_z_clip_value("z_clip_value", self.z_clip_value))
        for name in ("perspective_correct", "clip_barycentric_coords", "cull_backfaces", "defer_barycentrics"):
            object.__setattr__(self, name, bool(getattr(self, name)))
