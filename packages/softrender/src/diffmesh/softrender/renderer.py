"""``MeshRenderer``: a rasterizer and a shader composed."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .blending import BlendParams
from .raster import MeshRasterizer

__all__ = ["MeshRenderer"]


class MeshRenderer(nn.Module):
    """Render meshes: ``shader(rasterizer(meshes), meshes)``.

    A shader whose ``reads_barycentrics`` attribute is False (``SoftSilhouetteShader``)
    gets fragments whose barycentrics are computed only if read (a :class:`MeshRasterizer`,
    not a subclass that overrides ``forward``, is asked to defer them); the images are the
    same.

    Args:
        rasterizer: a :class:`MeshRasterizer`.
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
        # Only MeshRasterizer's own forward is known to take the hint (a subclass may not).
        if type(self.rasterizer).forward is MeshRasterizer.forward and not getattr(
            self.shader, "reads_barycentrics", True
        ):
            # the shader reads only distances (and depth order): skip storing barycentrics
            fragments = self.rasterizer(meshes_world, cameras=cameras, defer_barycentrics=True)
        else:
            fragments = self.rasterizer(meshes_world, cameras=cameras)
        if cameras is None and getattr(self.shader, "cameras", None) is None:
            cameras = getattr(self.rasterizer, "cameras", None)  # one camera for both stages
        return self.shader(
            fragments, meshes_world, cameras=cameras, lights=lights, materials=materials, blend_params=blend_params
        )
