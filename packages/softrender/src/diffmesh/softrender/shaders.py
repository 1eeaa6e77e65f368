"""Shaders: the visible pairs and their blend weights, their colours, the blend.

Each shader's ``forward(fragments, meshes, *, cameras=None, lights=None, materials=None,
blend_params=None)`` reads as three steps on the rasterizer's sparse pairs: which pairs are
visible and how much each weighs (no autograd), sample textures and shade those pairs, blend.
Per-call keyword arguments override the objects given at construction.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .blending import BlendParams, blend_weights, hard_blend, silhouette_blend, softmax_blend
from .fragments import Fragments, RasterPairs, pairs_of_fragments
from .lights import PointLights
from .materials import Materials
from .shading import Scene, flat_pairs, gouraud_pairs, phong_pairs

__all__ = [
    "HardFlatShader",
    "HardGouraudShader",
    "HardPhongShader",
    "SoftGouraudShader",
    "SoftPhongShader",
    "SoftSilhouetteShader",
]


def _pairs(fragments: Fragments) -> RasterPairs:
    """The fragments' sparse pairs (built from the dense fields when they have none)."""
    if isinstance(fragments, Fragments) and fragments.pairs is not None:
        return fragments.pairs
    return pairs_of_fragments(fragments)[0]


def _blend_params(blend_params: Any) -> BlendParams:
    if not isinstance(blend_params, BlendParams):
        raise TypeError(f"blend_params: expected BlendParams, got {type(blend_params).__name__}")
    return blend_params


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

    def _scene(self, cameras: Any, lights: Any, materials: Any, blend_params: Any) -> tuple[Scene, BlendParams]:
        """The scene and blend parameters of a call: the arguments, else the shader's own."""
        cameras = self.cameras if cameras is None else cameras
        if cameras is None:
            raise ValueError(f"cameras: {type(self).__name__} needs cameras (at construction or per call), got None")
        lights = self.lights if lights is None else lights
        materials = self.materials if materials is None else materials
        return Scene(lights, cameras, materials), _blend_params(self.blend_params if blend_params is None else blend_params)


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
        scene, blend = self._scene(cameras, lights, materials, blend_params)
        pairs = _pairs(fragments)
        weights = blend_weights(pairs, blend, *_clip_planes(scene.cameras))  # 1. visible pairs, weights
        colors = phong_pairs(meshes, pairs, weights.needed, scene)  # 2. textures and shading of those
        return softmax_blend(pairs, weights, colors, blend)  # 3. blend


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
        scene, blend = self._scene(cameras, lights, materials, blend_params)
        pairs = _pairs(fragments)
        nearest = pairs.nearest().nonzero().squeeze(1)  # 1. visible pairs: each pixel's nearest
        colors = phong_pairs(meshes, pairs, nearest, scene)  # 2. textures and shading of those
        return hard_blend(pairs, nearest, colors, blend)  # 3. blend


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
        scene, blend = self._scene(cameras, lights, materials, blend_params)
        pairs = _pairs(fragments)
        nearest = pairs.nearest().nonzero().squeeze(1)  # 1. visible pairs: each pixel's nearest
        colors = flat_pairs(meshes, pairs, nearest, scene)  # 2. textures and shading of those
        return hard_blend(pairs, nearest, colors, blend)  # 3. blend


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
        scene, blend = self._scene(cameras, lights, materials, blend_params)
        pairs = _pairs(fragments)
        weights = blend_weights(pairs, blend, *_clip_planes(scene.cameras))  # 1. visible pairs, weights
        colors = gouraud_pairs(meshes, pairs, weights.needed, scene)  # 2. lit vertex colours of those
        return softmax_blend(pairs, weights, colors, blend)  # 3. blend


class HardGouraudShader(_ShaderBase):
    """Lighting at the vertices (TexturesVertex colours), interpolated; nearest face only."""

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
        scene, blend = self._scene(cameras, lights, materials, blend_params)
        pairs = _pairs(fragments)
        nearest = pairs.nearest().nonzero().squeeze(1)  # 1. visible pairs: each pixel's nearest
        colors = gouraud_pairs(meshes, pairs, nearest, scene)  # 2. lit vertex colours of those
        return hard_blend(pairs, nearest, colors, blend)  # 3. blend


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
        blend = _blend_params(self.blend_params if blend_params is None else blend_params)
        return silhouette_blend(_pairs(fragments), blend)
