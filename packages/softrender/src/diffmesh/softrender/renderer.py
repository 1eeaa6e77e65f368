"""``MeshRenderer`` and ``MeshRendererWithFragments``: a rasterizer and a shader composed."""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from .blending import BlendParams
from .cameras.overrides import CAMERA_FIELDS, cameras_with_overrides
from .fragments import Fragments

__all__ = ["MeshRenderer", "MeshRendererWithFragments"]

Param = torch.Tensor | float | tuple | None  # a per-call camera parameter override


class MeshRenderer(nn.Module):
    """Render meshes: ``shader(rasterizer(meshes), meshes)``.

    For a shader whose ``reads_barycentrics`` is False (``SoftSilhouetteShader``) a
    rasterizer whose ``forward`` takes ``defer_barycentrics`` is asked to defer them (the
    same images, barycentrics computed only if read).
    """

    _with_fragments = False

    def __init__(self, rasterizer: nn.Module, shader: nn.Module) -> None:
        super().__init__()
        self.rasterizer = rasterizer
        self.shader = shader

    def forward(
        self,
        meshes_world: Any,
        *,
        cameras: Any = None,
        lights: Any = None,
        materials: Any = None,
        blend_params: BlendParams | None = None,
        R: Param = None,
        T: Param = None,
        K: Param = None,
        fov: Param = None,
        znear: Param = None,
        zfar: Param = None,
        aspect_ratio: Param = None,
        degrees: bool | None = None,
        min_x: Param = None,
        max_x: Param = None,
        min_y: Param = None,
        max_y: Param = None,
        scale_xyz: Param = None,
        focal_length: Param = None,
        principal_point: Param = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Fragments]:
        """(N, H, W, C + 1) images of Meshes of batch N in world coordinates (RGBA for RGB
        colours; (N, H, W, 1) for the depth shaders).

        Args:
            cameras: overrides the rasterizer's and the shader's cameras.
            lights, materials, blend_params: override the shader's.
            R, T, K, fov, ...: camera parameters for this call (PyTorch3D's
                ``renderer(meshes, R=R, T=T)``), one camera's shape or ``(N, ...)``; they
                reach the projection and the shader's camera (differentiable); the stored
                cameras are unchanged; one the camera class lacks raises TypeError.
        """
        fields = {name: value for name, value in locals().items() if name in CAMERA_FIELDS}
        base = cameras if cameras is not None else getattr(self.rasterizer, "cameras", None)
        if base is None and (degrees is not None or any(v is not None for v in fields.values())):
            raise ValueError("cameras: camera overrides (R=, T=, ...) need cameras (at construction or per call)")
        raster_cameras = shader_cameras = cameras_with_overrides(base, degrees=degrees, **fields)
        own = getattr(self.shader, "cameras", None)
        if cameras is None and own is not None and own is not base:  # the shader has its own
            shader_cameras = cameras_with_overrides(own, degrees=degrees, **fields)
        fragments = self._rasterize(meshes_world, raster_cameras)
        images = self.shader(
            fragments, meshes_world, cameras=shader_cameras, lights=lights, materials=materials,
            blend_params=blend_params,
        )
        return (images, fragments) if self._with_fragments else images

    def _rasterize(self, meshes_world: Any, cameras: Any) -> Fragments:
        if not getattr(self.shader, "reads_barycentrics", True):  # defer if ``rasterizer.forward`` can
            params = inspect.signature(self.rasterizer.forward).parameters.values()
            if any(p.name == "defer_barycentrics" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
                return self.rasterizer(meshes_world, cameras=cameras, defer_barycentrics=True)
        return self.rasterizer(meshes_world, cameras=cameras)


class MeshRendererWithFragments(MeshRenderer):
    """:class:`MeshRenderer` whose ``forward`` returns ``(images, fragments)`` (PyTorch3D's class)."""

    _with_fragments = True
