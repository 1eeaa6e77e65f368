"""``MeshRasterizer``: world-space meshes through a camera to fragments."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch import nn

from ..cameras.overrides import cameras_with_overrides
from ..fragments import Fragments
from .rasterize import rasterize_faces
from .settings import RasterizationSettings

__all__ = ["MeshRasterizer"]


def _check_meshes(meshes: Any) -> None:
    for name in ("verts_padded", "verts_packed", "faces_packed", "faces_packed_to_mesh_idx"):
        if not hasattr(meshes, name):
            raise TypeError(f"meshes: expected a Meshes object, got {type(meshes).__name__}")


class MeshRasterizer(nn.Module):
    """Project world-space meshes with a camera and rasterize them.

    Vertices go world -> view (``X R + T``) -> NDC through the camera; NDC z is replaced by
    the view-space depth, as PyTorch3D does, so ``zbuf`` holds view depths.

    Args:
        cameras: the default camera batch (1 or N cameras).
        raster_settings: the default :class:`RasterizationSettings`.
    """

    def __init__(self, cameras: Any = None, raster_settings: RasterizationSettings | None = None) -> None:
        super().__init__()
        if raster_settings is None:
            raster_settings = RasterizationSettings()
        if not isinstance(raster_settings, RasterizationSettings):
            raise TypeError(
                f"raster_settings: expected RasterizationSettings, got {type(raster_settings).__name__}"
            )
        self.cameras = cameras
        self.raster_settings = raster_settings

    def transform(self, meshes_world: Any, *, cameras: Any = None) -> torch.Tensor:
        """Packed vertices in NDC x, y with view-space z.

        Args:
            meshes_world: Meshes of batch N in world coordinates.
            cameras: overrides the default cameras.

        Returns:
            (sum V_n, 3) float.
        """
        _check_meshes(meshes_world)
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
        mesh_idx = meshes_world.verts_packed_to_mesh_idx()
        local = torch.arange(mesh_idx.shape[0], device=mesh_idx.device)
        local = local - meshes_world.mesh_to_verts_packed_first_idx()[mesh_idx]
        return verts_ndc[mesh_idx, local]

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
        """Rasterize ``meshes_world``.

        Args:
            meshes_world: Meshes of batch N in world coordinates.
            cameras: overrides the default cameras.
            raster_settings: overrides the default settings.
            defer_barycentrics: compute the barycentric coordinates only when first read, a
                speed hint for consumers that read only ``dists`` (``MeshRenderer`` passes
                it for a shader whose ``reads_barycentrics`` is False; see
                :class:`RasterOptions`). The fragments are the same either way.
            R, T, K, fov, znear, zfar, aspect_ratio, degrees, min_x, max_x, min_y, max_y,
                scale_xyz, focal_length, principal_point: camera parameters for this call
                (PyTorch3D's ``rasterizer(meshes, R=R, T=T)``; see
                :func:`~diffmesh.softrender.cameras.overrides.cameras_with_overrides`).

        Returns:
            Fragments with (N, H, W, K) fields (built lazily from sparse pairs).
        """
        settings = self.raster_settings if raster_settings is None else raster_settings
        if not isinstance(settings, RasterizationSettings):
            raise TypeError(f"raster_settings: expected RasterizationSettings, got {type(settings).__name__}")
        cameras = self.cameras if cameras is None else cameras
        fields = {"R": R, "T": T, "K": K, "fov": fov, "znear": znear, "zfar": zfar, "aspect_ratio": aspect_ratio,
                  "min_x": min_x, "max_x": max_x, "min_y": min_y, "max_y": max_y, "scale_xyz": scale_xyz,
                  "focal_length": focal_length, "principal_point": principal_point}
        if degrees is not None or any(value is not None for value in fields.values()):
            if cameras is None:
                raise ValueError("cameras: camera overrides (R=, T=, ...) need cameras (at construction or per call)")
            cameras = cameras_with_overrides(cameras, degrees=degrees, **fields)
        verts_ndc = self.transform(meshes_world, cameras=cameras)
        options = replace(settings.resolve(cameras), defer_barycentrics=defer_barycentrics)
        faces = meshes_world.faces_packed()
        face_verts = verts_ndc.index_select(0, faces.reshape(-1)).view(-1, 3, 3)  # faster than verts_ndc[faces]
        return rasterize_faces(face_verts, meshes_world.faces_packed_to_mesh_idx(), len(meshes_world), options)
