"""Shaders: sample textures, shade, blend — on the rasterizer's sparse pairs.

Each shader's ``forward(fragments, meshes, *, cameras=None, lights=None, materials=None,
blend_params=None)`` reads as three steps; per-call keyword arguments override the
objects given at construction. Only pairs whose blend weight matters are shaded.
"""

from __future__ import annotations

from typing import Any

import torch
from diffmesh.meshcore import TexturesVertex
from torch import nn

from .blending import BlendParams, hard_blend_pairs, silhouette_pairs, softmax_blend_pairs
from .fragments import Fragments, RasterPairs
from .interpolate import interpolate_vertex_pairs
from .lights import PointLights
from .materials import Materials
from .shading import _pairs_of, flat_pairs, gouraud_pairs, gouraud_vertex_colors, phong_pairs

__all__ = [
    "HardFlatShader",
    "HardPhongShader",
    "SoftGouraudShader",
    "SoftPhongShader",
    "SoftSilhouetteShader",
]


def _texels(meshes: Any, pairs: RasterPairs, idx: torch.Tensor) -> torch.Tensor:
    """Texture colours (len(idx), 3) of pairs ``idx`` (white when the mesh has no texture)."""
    textures = meshes.textures
    if textures is None:
        return pairs.bary.new_ones(idx.shape[0], 3)
    face, bary = pairs.face.index_select(0, idx), pairs.bary.index_select(0, idx)
    if isinstance(textures, TexturesVertex):  # the same interpolation, with a cheaper backward
        corners = meshes.faces_packed().index_select(0, face)
        return interpolate_vertex_pairs(corners, bary, textures.verts_features_packed())
    return textures.sample_at(face, bary, meshes.faces_packed())


def _vertex_colors(meshes: Any) -> torch.Tensor | None:
    """(sum V, C) vertex colours when the mesh has TexturesVertex, else None."""
    textures = meshes.textures
    return textures.verts_features_packed() if isinstance(textures, TexturesVertex) else None


def _clip_planes(cameras: Any) -> tuple[Any, Any]:
    """(znear, zfar) of the cameras, PyTorch3D's 1 and 100 when they have none."""
    return getattr(cameras, "znear", 1.0), getattr(cameras, "zfar", 100.0)


class _ShaderBase(nn.Module):
    """Holds the scene objects; resolves per-call overrides."""

    def __init__(
        self,
        device: torch.device | str = "cpu",
        cameras: Any = None,
        lights: Any = None,
        materials: Any = None,
        blend_params: BlendParams | None = None,
    ) -> None:
        super().__init__()
        self.lights = lights if lights is not None else PointLights(device=device)
        self.materials = materials if materials is not None else Materials(device=device)
        self.cameras = cameras
        if blend_params is not None and not isinstance(blend_params, BlendParams):
            raise TypeError(f"blend_params: expected BlendParams, got {type(blend_params).__name__}")
        self.blend_params = blend_params if blend_params is not None else BlendParams()

    def _scene(
        self, fragments: Fragments, meshes: Any, cameras: Any, lights: Any, materials: Any, blend_params: Any
    ) -> tuple[RasterPairs, Any, Any, Any, BlendParams]:
        cameras = self.cameras if cameras is None else cameras
        if cameras is None:
            raise ValueError(f"cameras: {type(self).__name__} needs cameras (at construction or per call), got None")
        blend_params = self.blend_params if blend_params is None else blend_params
        if not isinstance(blend_params, BlendParams):
            raise TypeError(f"blend_params: expected BlendParams, got {type(blend_params).__name__}")
        lights = self.lights if lights is None else lights
        materials = self.materials if materials is None else materials
        return _pairs_of(fragments), cameras, lights, materials, blend_params


def _phong_colors(meshes: Any, pairs: Any, lights: Any, cameras: Any, materials: Any) -> Any:
    """The per-pair Phong colour function the blends call on the pairs they keep."""
    vertex_colors = _vertex_colors(meshes)

    def colors(idx: torch.Tensor) -> torch.Tensor:
        texels = None if vertex_colors is not None else _texels(meshes, pairs, idx)
        return phong_pairs(meshes, pairs, idx, texels, lights, cameras, materials, vertex_colors=vertex_colors)

    return colors


class SoftPhongShader(_ShaderBase):
    """Phong lighting per pixel, softmax blending (differentiable silhouettes and depth order).

    Returns (N, H, W, 4) RGBA.
    """

    def forward(
        self,
        fragments: Fragments,
        meshes: Any,
        *,
        cameras: Any = None,
        lights: Any = None,
        materials: Any = None,
        blend_params: BlendParams | None = None,
    ) -> torch.Tensor:
        pairs, cameras, lights, materials, blend = self._scene(
            fragments, meshes, cameras, lights, materials, blend_params
        )

        colors = _phong_colors(meshes, pairs, lights, cameras, materials)
        znear, zfar = _clip_planes(cameras)
        return softmax_blend_pairs(pairs, colors, blend, znear=znear, zfar=zfar)


class HardPhongShader(_ShaderBase):
    """Phong lighting per pixel, nearest face only (hard edges). Returns (N, H, W, 4) RGBA."""

    def forward(
        self,
        fragments: Fragments,
        meshes: Any,
        *,
        cameras: Any = None,
        lights: Any = None,
        materials: Any = None,
        blend_params: BlendParams | None = None,
    ) -> torch.Tensor:
        pairs, cameras, lights, materials, blend = self._scene(
            fragments, meshes, cameras, lights, materials, blend_params
        )

        colors = _phong_colors(meshes, pairs, lights, cameras, materials)
        return hard_blend_pairs(pairs, colors, blend)


class HardFlatShader(_ShaderBase):
    """Flat (per-face) lighting, nearest face only. Returns (N, H, W, 4) RGBA."""

    def forward(
        self,
        fragments: Fragments,
        meshes: Any,
        *,
        cameras: Any = None,
        lights: Any = None,
        materials: Any = None,
        blend_params: BlendParams | None = None,
    ) -> torch.Tensor:
        pairs, cameras, lights, materials, blend = self._scene(
            fragments, meshes, cameras, lights, materials, blend_params
        )

        def colors(idx: torch.Tensor) -> torch.Tensor:
            texels = _texels(meshes, pairs, idx)
            return flat_pairs(meshes, pairs, idx, texels, lights, cameras, materials)

        return hard_blend_pairs(pairs, colors, blend)


class SoftGouraudShader(_ShaderBase):
    """Lighting at the vertices (TexturesVertex colours), interpolated; softmax blending."""

    def forward(
        self,
        fragments: Fragments,
        meshes: Any,
        *,
        cameras: Any = None,
        lights: Any = None,
        materials: Any = None,
        blend_params: BlendParams | None = None,
    ) -> torch.Tensor:
        pairs, cameras, lights, materials, blend = self._scene(
            fragments, meshes, cameras, lights, materials, blend_params
        )
        vertex_colors = gouraud_vertex_colors(meshes, lights, cameras, materials)

        def colors(idx: torch.Tensor) -> torch.Tensor:
            return gouraud_pairs(meshes, pairs, idx, vertex_colors)

        znear, zfar = _clip_planes(cameras)
        return softmax_blend_pairs(pairs, colors, blend, znear=znear, zfar=zfar)


class SoftSilhouetteShader(nn.Module):
    """Silhouette: RGB 1, alpha = 1 - prod_k (1 - sigmoid(-dists_k / sigma)).

    Args:
        blend_params: sigma (default ``BlendParams()``).

    Attributes:
        reads_barycentrics: False: the shader reads only ``dists`` (``MeshRenderer`` lets
            the rasterizer defer the barycentric coordinates).
    """

    reads_barycentrics = False

    def __init__(self, blend_params: BlendParams | None = None) -> None:
        super().__init__()
        if blend_params is not None and not isinstance(blend_params, BlendParams):
            raise TypeError(f"blend_params: expected BlendParams, got {type(blend_params).__name__}")
        self.blend_params = blend_params if blend_params is not None else BlendParams()

    def forward(
        self,
        fragments: Fragments,
        meshes: Any = None,
        *,
        cameras: Any = None,
        lights: Any = None,
        materials: Any = None,
        blend_params: BlendParams | None = None,
    ) -> torch.Tensor:
        """(N, H, W, 4) RGBA; cameras, lights and materials are accepted and unused."""
        blend = self.blend_params if blend_params is None else blend_params
        if not isinstance(blend, BlendParams):
            raise TypeError(f"blend_params: expected BlendParams, got {type(blend).__name__}")
        return silhouette_pairs(_pairs_of(fragments), blend)
