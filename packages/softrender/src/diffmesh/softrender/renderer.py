"""``MeshRenderer``: a rasterizer and a shader composed."""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from .blending import BlendParams

__all__ = ["MeshRenderer"]


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
    ) -> torch.Tensor:
        """Render a batch of meshes.

        Args:
            meshes_world: Meshes of batch N in world coordinates.
            cameras: overrides the rasterizer's and the shader's cameras.
            lights, materials, blend_params: override the shader's.

        Returns:
            (N, H, W, 4) float RGBA images.
        """
        if not getattr(self.shader, "reads_barycentrics", True) and _takes_defer(self.rasterizer):
            fragments = self.rasterizer(meshes_world, cameras=cameras, defer_barycentrics=True)
        else:
            fragments = self.rasterizer(meshes_world, cameras=cameras)
        if cameras is None and getattr(self.shader, "cameras", None) is None:
            cameras = getattr(self.rasterizer, "cameras", None)  # one camera for both stages
        return self.shader(
            fragments, meshes_world, cameras=cameras, lights=lights, materials=materials, blend_params=blend_params
        )
