"""The rasterizer's entry points: ``MeshRasterizer``, ``rasterize_meshes`` and their options.

``RasterizationSettings`` (PyTorch3D's names and defaults) resolves, for given cameras, to one
validated ``RasterOptions`` that travels down to the autograd function (``function.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from ..cameras.overrides import CAMERA_FIELDS, cameras_with_overrides
from ..fragments import Fragments, RasterPairs
from .clip import clip_faces, rasterize_clipped
from .function import pair_barycentrics_of, rasterize_pairs

__all__ = [
    "MeshRasterizer",
    "RasterOptions",
    "RasterizationSettings",
    "check_z_clip_value",
    "parse_image_size",
    "rasterize_face_verts",
    "rasterize_faces",
    "rasterize_meshes",
]


def parse_image_size(image_size: Any) -> tuple[int, int]:
    """``image_size`` as (H, W) (an int S means (S, S)); TypeError/ValueError if not positive ints."""
    size = (image_size, image_size) if isinstance(image_size, int) else image_size
    if not isinstance(size, (tuple, list)) or len(size) != 2 or not all(
        isinstance(s, int) and not isinstance(s, bool) for s in size
    ):
        raise TypeError(f"image_size: expected an int or an (H, W) pair of ints, got {image_size!r}")
    if size[0] <= 0 or size[1] <= 0:
        raise ValueError(f"image_size: expected positive sizes, got {image_size!r}")
    return int(size[0]), int(size[1])


def check_z_clip_value(name: str, value: object) -> float | None:
    """A clipping depth as a float: None, or finite and > 0 (TypeError/ValueError otherwise).

    A plane at or behind depth 1e-8 could not change an image (such faces are skipped).
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected None or a float view depth, got {value!r}")
    depth = float(value)
    if not math.isfinite(depth) or depth <= 0.0:
        raise ValueError(f"{name}: expected a finite view depth > 0, got {value!r}")
    return depth


def _check_int(name: str, value: object, low: int, *, optional: bool = False, error: type = ValueError) -> None:
    """ValueError unless ``value`` is an int >= ``low`` (or None if ``optional``); ``error`` if not an int."""
    expected = f"{'None or ' if optional else ''}an int >= {low}"
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(f"{name}: expected {expected}, got {value!r}")
    if value < low:
        raise ValueError(f"{name}: expected {expected}, got {value!r}")


def _check_blur(name: str, blur: object) -> float:
    """``blur_radius`` as a float: TypeError if not a number, ValueError outside [0, 2]."""
    if isinstance(blur, bool) or not isinstance(blur, (int, float)):
        raise TypeError(f"{name}: expected a float, got {blur!r}")
    if not 0.0 <= blur <= 2.0:
        raise ValueError(f"{name}: expected a squared NDC distance in [0, 2], got {blur}")
    return float(blur)


@dataclass(frozen=True)
class RasterizationSettings:
    """Options of :class:`MeshRasterizer` (PyTorch3D's names and defaults).

    The fields are the arguments of :func:`rasterize_meshes` (``faces_per_pixel`` defaults to
    1 here); None means ``cameras.is_perspective()`` for ``perspective_correct``, ``blur_radius
    > 0`` for ``clip_barycentric_coords``, a depth from the cameras for ``z_clip_value`` (see
    :meth:`resolve`).
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
        _check_blur("RasterizationSettings.blur_radius", self.blur_radius)
        _check_int("RasterizationSettings.faces_per_pixel", self.faces_per_pixel, 1)
        for name in ("bin_size", "max_faces_per_bin"):
            _check_int(f"RasterizationSettings.{name}", getattr(self, name), 0, optional=True)
        for name in ("perspective_correct", "clip_barycentric_coords", "cull_backfaces"):
            value, optional = getattr(self, name), name != "cull_backfaces"
            if not isinstance(value, bool) and not (optional and value is None):
                expected = "None or a bool" if optional else "a bool"
                raise TypeError(f"RasterizationSettings.{name}: expected {expected}, got {value!r}")
        depth = check_z_clip_value("RasterizationSettings.z_clip_value", self.z_clip_value)
        object.__setattr__(self, "z_clip_value", depth)

    def resolve(self, cameras: Any) -> RasterOptions:
        """The options for ``cameras``, with PyTorch3D's rules for the None defaults.

        ``z_clip_value`` None, with perspective-correct barycentrics and cameras that have a
        ``get_znear()``, is half the batch's smallest ``znear`` (None if not positive).
        """
        perspective, clip = self.perspective_correct, self.clip_barycentric_coords
        perspective = bool(cameras.is_perspective()) if perspective is None else perspective
        clip = self.blur_radius > 0.0 if clip is None else clip
        depth = self.z_clip_value
        if depth is None and perspective:
            znear = cameras.get_znear() if hasattr(cameras, "get_znear") else None
            if znear is not None:
                half = float(torch.as_tensor(znear).min()) / 2.0
                depth = half if half > 0.0 else None
        return RasterOptions(
            self.image_size, self.blur_radius, self.faces_per_pixel, perspective, clip, self.cull_backfaces, depth
        )


@dataclass(frozen=True)
class RasterOptions:
    """Resolved rasterizer options, validated once (the arguments of :func:`rasterize_meshes`).

    ``defer_barycentrics``: a speed hint for consumers that read only ``dists``; the
    barycentrics are recomputed bit for bit when first read.
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
        object.__setattr__(self, "blur_radius", _check_blur("blur_radius", self.blur_radius))
        _check_int("faces_per_pixel", self.faces_per_pixel, 1, error=TypeError)
        object.__setattr__(self, "z_clip_value", check_z_clip_value("z_clip_value", self.z_clip_value))
        for name in ("perspective_correct", "clip_barycentric_coords", "cull_backfaces", "defer_barycentrics"):
            object.__setattr__(self, name, bool(getattr(self, name)))


def _version(t: torch.Tensor) -> int | None:
    """The in-place version counter of ``t``; None for inference tensors (they have none)."""
    return None if t.is_inference() else t._version


class _DeferredBarycentrics:
    """Deferred pairs' barycentrics, computed on first read, with a graph exactly when the
    rasterization had one. A class, not a closure, so that fragments pickle and detach."""

    def __init__(self, face_verts: torch.Tensor, *args: Any) -> None:
        """``args``: the other arguments of :func:`pair_barycentrics_of` (pix, face, image_size,
        perspective_correct, clip_barycentric_coords)."""
        self.grad_enabled = torch.is_grad_enabled()
        self.face_verts = face_verts if self.grad_enabled else face_verts.detach()
        self.version = _version(face_verts)
        self.args = args

    def __call__(self) -> torch.Tensor:
        if _version(self.face_verts) != self.version:
            raise RuntimeError(
                "bary_coords: face_verts was modified in place after rasterization (e.g. by an "
                "optimizer step) and before the deferred barycentrics were first read; read them "
                "before changing the vertices, or rasterize again"
            )
        with torch.set_grad_enabled(self.grad_enabled):
            return pair_barycentrics_of(self.face_verts, *self.args)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["version"] = _version(self.face_verts) == self.version  # whether still valid
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        # unpickled tensors start a new version count: take it, or stay stale
        self.version = _version(self.face_verts) if state["version"] else -1

    def detach(self) -> _DeferredBarycentrics:
        """The same barycentrics, without a graph."""
        with torch.no_grad():
            out = _DeferredBarycentrics(self.face_verts.detach(), *self.args)
        out.version = self.version  # a detached tensor shares the version counter
        return out


def rasterize_face_verts(
    face_verts: torch.Tensor,
    face_to_mesh: torch.Tensor,
    num_meshes: int,
    image_size: Any = 256,
    blur_radius: float = 0.0,
    faces_per_pixel: int = 8,
    perspective_correct: bool = False,
    clip_barycentric_coords: bool = False,
    cull_backfaces: bool = False,
    z_clip_value: float | None = None,
    *,
    defer_barycentrics: bool = False,
) -> Fragments:
    """Rasterize packed faces given as vertex triples (the core of :func:`rasterize_meshes`).

    Args:
        face_verts: (F, 3, 3) float packed face vertices: NDC x, NDC y, view-space z.
        face_to_mesh: (F,) long mesh (image) index of each face, in [0, num_meshes).
        num_meshes: N, the number of images.
        defer_barycentrics: see :class:`RasterOptions` (also deferred: a gradient through
            ``zbuf`` recomputes them). Other arguments as :func:`rasterize_meshes`.
    """
    options = RasterOptions(image_size, blur_radius, faces_per_pixel, perspective_correct, clip_barycentric_coords,
                            cull_backfaces, z_clip_value, defer_barycentrics)
    return rasterize_faces(face_verts, face_to_mesh, num_meshes, options)


def rasterize_faces(
    face_verts: torch.Tensor, face_to_mesh: torch.Tensor, num_meshes: int, options: RasterOptions
) -> Fragments:
    """:func:`rasterize_face_verts` with its options as one :class:`RasterOptions`."""
    if not torch.is_tensor(face_verts) or face_verts.dim() != 3 or face_verts.shape[1:] != (3, 3):
        shape = tuple(face_verts.shape) if torch.is_tensor(face_verts) else type(face_verts).__name__
        raise ValueError(f"face_verts: expected an (F, 3, 3) tensor, got {shape}")
    if not face_verts.is_floating_point():
        raise TypeError(f"face_verts: expected a float tensor, got {face_verts.dtype}")
    depth, persp = options.z_clip_value, options.perspective_correct
    clipped = None if depth is None else clip_faces(face_verts, face_to_mesh, depth, persp)
    if clipped is not None:
        return Fragments(pairs=rasterize_clipped(clipped, num_meshes, options))
    bary, zbuf, dists, pix, face = rasterize_pairs(face_verts, face_to_mesh, options)
    size, k = options.image_size, options.faces_per_pixel
    bary_fn = None
    if bary is None:
        bary_fn = _DeferredBarycentrics(face_verts, pix, face, size, persp, options.clip_barycentric_coords)
    return Fragments(pairs=RasterPairs(pix, face, bary, zbuf, dists, num_meshes, size, k, bary_fn=bary_fn))


def rasterize_meshes(
    meshes: Any,
    image_size: int | tuple[int, int] = 256,
    blur_radius: float = 0.0,
    faces_per_pixel: int = 8,
    bin_size: int | None = None,
    max_faces_per_bin: int | None = None,
    perspective_correct: bool = False,
    clip_barycentric_coords: bool = False,
    cull_backfaces: bool = False,
    z_clip_value: float | None = None,
) -> Fragments:
    """Rasterize meshes whose vertices are in NDC (x, y) with view-space z, one image each.

    Pixel (0, 0) is top-left, its centre at NDC (+1, +1) (+X left, +Y up); centres are at
    ``1 - (2 i + 1) / S``; on a non-square image the longer side spans
    ``[-S_long / S_short, S_long / S_short]``. A face touches a pixel whose centre is inside
    it or within ``blur_radius`` (squared NDC distance); the K nearest by (view depth, face
    id) are kept. Faces reaching below view depth 1e-8 or with |signed area| <= 1e-8 are
    skipped. Gradients reach the vertices through ``zbuf``, ``bary_coords`` and ``dists``.

    Args:
        meshes: Meshes of batch N, verts in NDC x, y and view-space z.
        image_size: S for an (S, S) image, or (H, W).
        blur_radius: squared NDC distance in [0, 2] (0: hard edges).
        faces_per_pixel: K.
        bin_size, max_faces_per_bin: accepted for PyTorch3D compatibility; no effect.
        perspective_correct: perspective-correct barycentrics from the view-space depths.
        clip_barycentric_coords: clip barycentrics to [0, 1] and renormalise before ``zbuf``.
        cull_backfaces: skip faces whose projected winding is clockwise.
        z_clip_value: None, or a view depth c > 0 to clip faces at, PyTorch3D's rule (the
            package README, "Clipping at a depth"): fragments of a clipped face report the
            original face and barycentrics in it, ``zbuf``/``dists`` of the sub-triangle.

    Returns:
        Fragments(pix_to_face, zbuf, bary_coords, dists), (N, H, W, K) (bary_coords
        (N, H, W, K, 3)): packed face id, view depth ``sum_i bary_i z_i``, barycentrics,
        signed squared NDC distance to the nearest edge (negative inside); -1 where empty.
    """
    _check_meshes(meshes, "verts_packed", "faces_packed", "faces_packed_to_mesh_idx")
    for name, value in (("bin_size", bin_size), ("max_faces_per_bin", max_faces_per_bin)):
        _check_int(name, value, 0, optional=True)
    options = RasterOptions(image_size, blur_radius, faces_per_pixel, perspective_correct, clip_barycentric_coords,
                            cull_backfaces, z_clip_value)
    face_verts = meshes.verts_packed()[meshes.faces_packed()]
    return rasterize_faces(face_verts, meshes.faces_packed_to_mesh_idx(), len(meshes), options)


def _check_settings(settings: object) -> RasterizationSettings:
    if not isinstance(settings, RasterizationSettings):
        raise TypeError(f"raster_settings: expected RasterizationSettings, got {type(settings).__name__}")
    return settings


def _check_meshes(meshes: Any, *names: str) -> None:
    """TypeError naming ``meshes`` unless it has the Meshes methods ``names``."""
    if not all(hasattr(meshes, name) for name in names):
        raise TypeError(f"meshes: expected a Meshes object, got {type(meshes).__name__}")


class MeshRasterizer(nn.Module):
    """Project world-space meshes with a camera and rasterize them.

    Vertices go world -> view (``X R + T``) -> NDC; NDC z is replaced by the view depth (as
    PyTorch3D does), so ``zbuf`` holds view depths.

    Args:
        cameras: the default camera batch (1 or N cameras).
        raster_settings: the default :class:`RasterizationSettings`.
    """

    def __init__(self, cameras: Any = None, raster_settings: RasterizationSettings | None = None) -> None:
        super().__init__()
        self.cameras = cameras
        self.raster_settings = _check_settings(RasterizationSettings() if raster_settings is None else raster_settings)

    def transform(self, meshes_world: Any, *, cameras: Any = None) -> torch.Tensor:
        """(sum V_n, 3) packed vertices in NDC x, y with view-space z (``cameras`` overrides)."""
        _check_meshes(meshes_world, "verts_padded", "verts_packed", "faces_packed", "faces_packed_to_mesh_idx")
        cameras = self.cameras if cameras is None else cameras
        if cameras is None:
            raise ValueError("cameras: MeshRasterizer needs cameras (at construction or per call), got None")
        n = len(meshes_world)
        if len(cameras) not in (1, n):
            raise ValueError(f"cameras: expected batch size 1 or {n} (the number of meshes), got {len(cameras)}")
        verts = meshes_world.verts_padded()  # (N, V, 3)
        verts_view = cameras.get_world_to_view_transform().transform_points(verts)
        projection = cameras.get_projection_transform()
        if not cameras.in_ndc():
            projection = projection.compose(cameras.get_ndc_camera_transform())
        verts_ndc = projection.transform_points(verts_view)
        verts_ndc = torch.cat((verts_ndc[..., :2], verts_view[..., 2:]), dim=-1)
        if n == 1:  # the padded vertices are the packed ones
            return verts_ndc[0]
        return verts_ndc.reshape(-1, 3).index_select(0, meshes_world.verts_padded_to_packed_idx())

    def forward(
        self,
        meshes_world: Any,
        *,
        cameras: Any = None,
        raster_settings: Any = None,
        defer_barycentrics: bool = False,
        R: Any = None,
        T: Any = None,
        K: Any = None,
        fov: Any = None,
        znear: Any = None,
        zfar: Any = None,
        aspect_ratio: Any = None,
        degrees: bool | None = None,
        min_x: Any = None,
        max_x: Any = None,
        min_y: Any = None,
        max_y: Any = None,
        scale_xyz: Any = None,
        focal_length: Any = None,
        principal_point: Any = None,
    ) -> Fragments:
        """Rasterize ``meshes_world`` (batch N, world coordinates) into (N, H, W, K) Fragments.

        Args:
            cameras, raster_settings: override the defaults for this call.
            defer_barycentrics: see :class:`RasterOptions` (``MeshRenderer`` passes it for a
                shader whose ``reads_barycentrics`` is False).
            R, T, K, fov, ...: camera parameters for this call (PyTorch3D's
                ``rasterizer(meshes, R=R, T=T)``; see ``cameras.overrides``).
        """
        overrides = {name: value for name, value in locals().items() if name in CAMERA_FIELDS}
        settings = _check_settings(self.raster_settings if raster_settings is None else raster_settings)
        cameras = self.cameras if cameras is None else cameras
        if degrees is not None or any(value is not None for value in overrides.values()):
            if cameras is None:
                raise ValueError("cameras: camera overrides (R=, T=, ...) need cameras (at construction or per call)")
            cameras = cameras_with_overrides(cameras, degrees=degrees, **overrides)
        verts_ndc = self.transform(meshes_world, cameras=cameras)
        options = replace(settings.resolve(cameras), defer_barycentrics=defer_barycentrics)
        faces = meshes_world.faces_packed()
        face_verts = verts_ndc.index_select(0, faces.reshape(-1)).view(-1, 3, 3)  # faster than verts_ndc[faces]
        return rasterize_faces(face_verts, meshes_world.faces_packed_to_mesh_idx(), len(meshes_world), options)
