"""``IO``: load and save meshes and point clouds choosing the format from the file extension."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from diffmesh.meshcore import Meshes, Pointclouds, TexturesUV, TexturesVertex

from ._devices import as_device
from .glb_io import load_glb, save_glb
from .obj_load import load_objs_as_meshes
from .obj_save import save_obj
from .off_io import read_off, save_off
from .ply_load import load_ply_data
from .ply_save import save_ply
from .pointcloud_io import load_pointcloud, save_pointcloud

__all__ = ["IO"]

MESH_FORMATS = (".obj", ".ply", ".off", ".glb")
POINTCLOUD_FORMATS = (".ply", ".xyz", ".pts", ".txt")


def _suffix(path: object, formats: tuple[str, ...], what: str, enabled: bool) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    suffix = Path(path).suffix.lower()
    if not enabled or suffix not in formats:
        known = ", ".join(formats) if enabled else "none (include_default_formats=False)"
        raise ValueError(f"no {what} format for {str(path)!r}: known extensions are {known}")
    return suffix


def _single(data: object, kind: type | None, what: str) -> None:
    if kind is not None and not isinstance(data, kind):
        raise TypeError(f"data must be {kind.__name__}, got {type(data).__name__}")
    if len(data) != 1:  # type: ignore[arg-type]
        raise ValueError(f"data must hold exactly one {what} to save, got {len(data)}")  # type: ignore[arg-type]


class IO:
    """Load and save meshes and point clouds by extension (PyTorch3D's ``pytorch3d.io.IO``).

    Meshes: ``.obj`` (with MTL textures or ``v x y z r g b`` colours), ``.ply``, ``.off``,
    ``.glb``. Point clouds: ``.ply``, ``.xyz``, ``.pts``, ``.txt``. Vertex colours become
    ``TexturesVertex`` on loading, and ``TexturesVertex`` is written as vertex colours.

    Args:
        include_default_formats: False gives an IO that knows no format (PyTorch3D's
            registry of extra formats is not implemented).
        path_manager: must be None (iopath is not a dependency).
    """

    def __init__(self, include_default_formats: bool = True, path_manager: object = None) -> None:
        if path_manager is not None:
            raise ValueError(
                "path_manager is not supported (iopath is not a dependency): pass None"
            )
        self._enabled = bool(include_default_formats)

    def load_mesh(
        self,
        path: str | os.PathLike[str],
        include_textures: bool = True,
        device: str | torch.device = "cpu",
    ) -> Meshes:
        """Load one mesh as a Meshes of length 1.

        Args:
            path: a ``.obj``, ``.ply``, ``.off`` or ``.glb`` file.
            include_textures: OBJ textures (TexturesUV) or vertex colours (TexturesVertex)
                are loaded; False gives ``textures=None``.
            device: where the mesh lives.

        Raises:
            ValueError: an unknown extension, or a malformed file (naming file and place).
        """
        suffix = _suffix(path, MESH_FORMATS, "mesh", self._enabled)
        device = as_device(device)
        if suffix == ".obj":
            return load_objs_as_meshes([path], device=device, load_textures=include_textures)
        if suffix == ".ply":
            ply = load_ply_data(path, device=device)
            verts, faces, colors = ply.verts, ply.faces, ply.verts_colors
        elif suffix == ".off":
            verts, faces, colors = read_off(path, device=device)
        else:
            verts, faces, _, colors = load_glb(path, device=device)
        textures = None
        if include_textures and colors is not None:
            textures = TexturesVertex([colors])
        return Meshes([verts], [faces], textures=textures)

    def save_mesh(
        self,
        data: Meshes,
        path: str | os.PathLike[str],
        binary: bool = True,
        include_textures: bool = True,
        *,
        decimal_places: int | None = None,
        colors_as_uint8: bool = True,
    ) -> None:
        """Save a Meshes of length 1, atomically.

        Args:
            data: the mesh.
            path: a ``.obj``, ``.ply``, ``.off`` or ``.glb`` file.
            binary: PLY only: binary little endian (True) or ascii; OBJ and OFF are text and
                GLB binary whatever it says.
            include_textures: write ``TexturesVertex`` as vertex colours (OBJ ``v x y z r g
                b``, PLY ``red green blue``, OFF ``COFF``, GLB ``COLOR_0``) and ``TexturesUV``
                (OBJ only) as MTL + PNG.
            decimal_places: OBJ, OFF and ascii PLY: digits after the decimal point (None: 9
                significant digits, float32 reads back exactly).
            colors_as_uint8: PLY only: colours as ``uchar`` (True) or ``float``.

        Raises:
            TypeError: data is not a Meshes.
            ValueError: an unknown extension, a batch of several meshes, TexturesUV for a
                format other than OBJ, or vertex features that are not 3 colour channels.
        """
        suffix = _suffix(path, MESH_FORMATS, "mesh", self._enabled)
        _single(data, Meshes, "mesh")
        verts, faces = data.verts_list()[0], data.faces_list()[0]
        colors = uv = None
        textures = data.textures if include_textures else None
        if isinstance(textures, TexturesVertex):
            colors = textures.verts_features_list()[0]
            if colors.shape[1] != 3:
                raise ValueError(
                    f"TexturesVertex must have 3 channels to save, got {colors.shape[1]}"
                )
        elif isinstance(textures, TexturesUV):
            if suffix != ".obj":
                raise ValueError(
                    f"TexturesUV can only be saved to .obj, not {suffix}; pass "
                    "include_textures=False to save the geometry alone"
                )
            uv = textures
        if suffix == ".obj":
            kwargs: dict[str, Any] = {"verts_colors": colors}
            if uv is not None:
                kwargs = {"verts_uvs": uv.verts_uvs_list()[0], "faces_uvs": uv.faces_uvs_list()[0],
                          "texture_map": uv.maps_list()[0]}  # fmt: skip
            save_obj(path, verts, faces, decimal_places, **kwargs)
        elif suffix == ".ply":
            save_ply(path, verts, faces, ascii=not binary, decimal_places=decimal_places,
                     verts_colors=colors, colors_as_uint8=colors_as_uint8)  # fmt: skip
        elif suffix == ".off":
            save_off(path, verts, faces, decimal_places, verts_colors=colors)
        else:
            save_glb(path, verts, faces, verts_normals=data.verts_normals_list()[0],
                     verts_colors=colors)  # fmt: skip

    def load_pointcloud(
        self, path: str | os.PathLike[str], device: str | torch.device = "cpu"
    ) -> Any:
        """Load a point cloud as ``diffmesh.meshcore.Pointclouds`` of length 1.

        Args:
            path: a ``.ply`` (vertices; faces ignored), ``.xyz``, ``.pts`` or ``.txt`` file.
            device: where the point cloud lives.

        Raises:
            ValueError: an unknown extension or a malformed file.
        """
        _suffix(path, POINTCLOUD_FORMATS, "point cloud", self._enabled)
        points, normals, colors = load_pointcloud(path, device=device)
        return Pointclouds(
            points=[points],
            normals=None if normals is None else [normals],
            features=None if colors is None else [colors],
        )

    def save_pointcloud(
        self,
        data: Any,
        path: str | os.PathLike[str],
        binary: bool = True,
        *,
        decimal_places: int | None = None,
    ) -> None:
        """Save a point cloud of length 1 (points, normals, 3-channel features as colours).

        Args:
            data: a ``Pointclouds`` (anything with ``points_list``, ``normals_list`` and
                ``features_list``).
            path: a ``.ply``, ``.xyz``, ``.pts`` or ``.txt`` file.
            binary: PLY only: binary little endian or ascii.
            decimal_places: text only: digits after the decimal point.

        Raises:
            ValueError: an unknown extension, several clouds, features for a text format or
                features that are not 3 colour channels.
        """
        _suffix(path, POINTCLOUD_FORMATS, "point cloud", self._enabled)
        _single(data, None, "point cloud")
        points = data.points_list()[0]
        normals = data.normals_list()
        features = data.features_list()
        colors = None if features is None else features[0]
        if colors is not None and colors.shape[1] != 3:
            raise ValueError(
                f"point cloud features must be 3 colour channels, got {colors.shape[1]}"
            )
        save_pointcloud(path, points, None if normals is None else normals[0], colors,
                        ascii=not binary, decimal_places=decimal_places)  # fmt: skip
