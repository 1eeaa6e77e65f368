"""``MeshRenderer`` and ``MeshRendererWithFragments``: a rasterizer and a shader composed."""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from .blending import BlendParams
from .cameras.overrides import cameras_with_overrides
from .fragments import Fragments

__all__ = ["MeshRenderer", "MeshRendererWithFragments"]

Param = torch.Tensor | float | tuple | None  # a per-call camera parameter override


def _takes_defer(rasterizer: nn.Module) -> bool:
    """Whether ``rasterizer.forward`` accepts a ``defer_barycentrics`` keyword."""
    params = inspect.signature(rasterizer.forward).parameters.values()
    return any(p.name == "defer_barycentrics" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


class MeshRenderer(nn.Module):
    """Render meshes: ``shader(rasterizer(meshes), meshes)``.

    A shader whose ``reads_barycentrics`` attribute is False (``SoftSilhouetteShader``)
    reads only distances and depth order: when the rasterizer's ``forward`` accepts a
    ``defer_barycentrics`` keyword (``MeshRasterizer``'s does, see its ``forward``), it is
    called with ``defer_barycentrics=True`` and computes barycentrics only if they are read.
    The images are the same either way.

    Args:
        rasterizer: a :class:`~diffmesh.softrender.raster.MeshRasterizer`.
        shader: one of the shaders (e.g. :class:`SoftPhongShader`).
    """

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
    ) -> torch.Tensor:
        """Render a batch of meshes.

        Args:
            meshes_world: Meshes of batch N in world coordinates.
            cameras: overrides the rasterizer's and the shader's cameras.
            lights, materials, blend_params: override the shader's.
            R, T, K, fov, znear, zfar, aspect_ratio, degrees, min_x, max_x, min_y, max_y,
                scale_xyz, focal_length, principal_point: camera parameters for this call
                (PyTorch3D's ``renderer(meshes, R=R, T=T)``), of one camera's shape or
                batched ``(N, ...)``; they reach the rasterizer's projection and the
                shader's camera (differentiable). The stored cameras are unchanged. A
                parameter the camera class does not have raises TypeError.

        Returns:
            (N, H, W, C + 1) float images: RGBA for RGB colours ((N, H, W, 1) for the depth
            shaders).
        """
        fields = {
            "R": R, "T": T, "K": K, "fov": fov, "znear": znear, "zfar": zfar, "aspect_ratio": aspect_ratio,
            "min_x": min_x, "max_x": max_x, "min_y": min_y, "max_y": max_y, "scale_xyz": scale_xyz,
            "focal_length": focal_length, "principal_point": principal_point,
        }
        return self._render(meshes_world, cameras, lights, materials, blend_params, degrees, fields)[0]

    def _render(
        self,
        meshes_world: Any,
        cameras: Any,
        lights: Any,
        materials: Any,
        blend_params: BlendParams | None,
        degrees: bool | None,
        fields: dict[str, Param],
    ) -> tuple[torch.Tensor, Fragments]:
        """(images, fragments) of a call with its overrides."""
        if degrees is not None or any(v is not None for v in fields.values()):
            own = getattr(self.shader, "cameras", None)
            base = cameras if cameras is not None else getattr(self.rasterizer, "cameras", None)
            if base is None:
                raise ValueError("cameras: camera overrides (R=, T=, ...) need cameras (at construction or per call)")
            overridden = cameras_with_overrides(base, degrees=degrees, **fields)
            if cameras is None and own is not None and own is not base:  # the shader has its own
                shader_cameras = cameras_with_overrides(own, degrees=degrees, **fields)
            else:
                shader_cameras = overridden
            fragments = self._rasterize(meshes_world, overridden)
        else:
            fragments = self._rasterize(meshes_world, cameras)
            shader_cameras = cameras
            if cameras is None and getattr(self.shader, "cameras", None) is None:
                shader_cameras = getattr(self.rasterizer, "cameras", None)  # one camera for both stages
        images = self.shader(
            fragments, meshes_world, cameras=shader_cameras, lights=lights, materials=materials,
            blend_params=blend_params,
        )
        return images, fragments

    def _rasterize(self, meshes_world: Any, cameras: Any) -> Fragments:
        if not getattr(self.shader, "reads_barycentrics", True) and _takes_defer(self.rasterizer):
            return self.rasterizer(meshes_world, cameras=cameras, defer_barycentrics=True)
        return self.rasterizer(meshes_world, cameras=cameras)


class MeshRendererWithFragments(MeshRenderer):
    """:class:`MeshRenderer` that also returns the fragments (PyTorch3D's class).

    Args:
        rasterizer: a :class:`~diffmesh.softrender.raster.MeshRasterizer`.
        shader: one of the shaders.
    """

    def forward(  # type: ignore[override]
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
    ) -> tuple[torch.Tensor, Fragments]:
        """Render a batch of meshes; arguments as :meth:`MeshRenderer.forward`.

        Returns:
            (images, fragments): the images as :meth:`MeshRenderer.forward` gives them and
            the rasterizer's :class:`Fragments` ((N, H, W, K) fields).
        """
        fields = {
            "R": R, "T": T, "K": K, "fov": fov, "znear": znear, "zfar": zfar, "aspect_ratio": aspect_ratio,
            "min_x": min_x, "max_x": max_x, "min_y": min_y, "max_y": max_y, "scale_xyz": scale_xyz,
            "focal_length": focal_length, "principal_point": principal_point,
        }
        return self._render(meshes_world, cameras, lights, materials, blend_params, degrees, fields)
