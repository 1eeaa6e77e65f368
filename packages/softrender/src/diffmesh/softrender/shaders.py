"""The shaders, and the shading of (pixel, face) pairs they run.

A shader's forward is three steps: the visible pairs and their blend weights (no
autograd, ``blending``), textures and shading of those pairs (``phong_pairs``,
``flat_pairs``, ``gouraud_pairs``), the blend. The dense public ``phong_shading``,
``flat_shading``, ``gouraud_shading`` gather fragments to pairs and call the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .blending import BlendParams, blend_weights, hard_blend, silhouette_blend, softmax_blend
from .fragments import (
    Fragments,
    RasterPairs,
    interpolate_vertex_groups,
    interpolate_vertex_pairs,
    pair_rows,
    pairs_of_fragments,
)
from .lighting import PointLights
from .materials import Materials

__all__ = [
    "HardFlatShader", "HardGouraudShader", "HardPhongShader", "SoftGouraudShader", "SoftPhongShader",
    "SoftSilhouetteShader", "apply_lighting", "flat_pairs", "flat_shading", "gouraud_pairs", "gouraud_shading",
    "phong_pairs", "phong_shading", "sample_textures",
]


def _select(name: str, batched: Any, index: torch.Tensor, count: int) -> Any:
    """``batched[index]`` (a per-point gather) unless it has a single element (broadcasts)."""
    if len(batched) == 1:
        return batched
    if len(batched) != count:
        raise ValueError(f"{name}: expected batch size 1 or {count} (the number of meshes), got {len(batched)}")
    return batched[index]


def apply_lighting(
    points: torch.Tensor, normals: torch.Tensor, image_idx: torch.Tensor, num_images: int, lights: Any,
    cameras: Any, materials: Any,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ambient, diffuse, specular), each broadcastable to (P, 3), at (P, 3) world ``points``
    with ``normals`` (any length) of the images ``image_idx`` (P,); lights (with a
    ``lighting`` method), cameras and materials of batch 1 or ``num_images``."""
    lights_p = _select("lights", lights, image_idx, num_images)
    materials_p = _select("materials", materials, image_idx, num_images)
    centers = cameras.get_camera_center().to(points.dtype)
    camera_position = centers[0] if centers.shape[0] == 1 else _select("cameras", centers, image_idx, num_images)
    diffuse, specular = lights_p.lighting(normals, points, camera_position, materials_p.shininess)
    ambient = materials_p.ambient_color * lights_p.ambient_color
    return ambient, materials_p.diffuse_color * diffuse, materials_p.specular_color * specular


@dataclass(frozen=True)
class Scene:
    """What shading reads besides the mesh: ``lights``, ``cameras``, ``materials``."""

    lights: Any
    cameras: Any
    materials: Any


def _lit(
    texels: torch.Tensor, points: torch.Tensor, normals: torch.Tensor, image_idx: torch.Tensor, num_images: int,
    scene: Scene,
) -> torch.Tensor:
    """``(ambient + diffuse) * texels + specular`` (P, C) of :func:`apply_lighting` in ``scene``;
    C != 3 takes grey lighting only (equal RGB components)."""
    lighting = apply_lighting(points, normals, image_idx, num_images, scene.lights, scene.cameras, scene.materials)
    if texels.shape[-1] != 3:
        if any(bool((term != term[..., :1]).any()) for term in lighting):
            raise ValueError(
                f"lights, materials: colours of {texels.shape[-1]} channels (not RGB) can be lit only by grey "
                "lights and materials (equal RGB components, as the defaults); got coloured ones"
            )
        lighting = tuple(term[..., :1] for term in lighting)
    ambient, diffuse, specular = lighting
    return (ambient + diffuse) * texels + specular


def sample_textures(meshes: Any, pairs: RasterPairs, idx: torch.Tensor) -> torch.Tensor:
    """Texture colours (len(idx), C) of the pairs ``idx``; white (3 channels) without a texture."""
    textures = meshes.textures
    if textures is None:
        return pairs.bary.new_ones(idx.shape[0], 3)
    face, bary = pairs.face.index_select(0, idx), pairs.bary.index_select(0, idx)
    if hasattr(textures, "verts_features_packed"):  # vertex colours: the pairs' interpolation
        corners = meshes.faces_packed().index_select(0, face)
        return interpolate_vertex_pairs(corners, bary, textures.verts_features_packed())
    return textures.sample_at(face, bary, meshes.faces_packed())


def phong_pairs(
    meshes: Any, pairs: RasterPairs, idx: torch.Tensor, scene: Scene, texels: torch.Tensor | None = None
) -> torch.Tensor:
    """(Q, C) Phong colours of the pairs ``idx`` (Q,): positions, normals (and vertex
    colours when ``texels`` (Q, C) is None) interpolated in one pass, then lit."""
    bary = pairs.bary.index_select(0, idx)
    corners = meshes.faces_packed().index_select(0, pairs.face.index_select(0, idx))
    parts = [meshes.verts_packed(), meshes.verts_normals_packed()]
    if texels is None and hasattr(meshes.textures, "verts_features_packed"):  # vertex colours, in the same pass
        parts.append(meshes.textures.verts_features_packed())
    points, normals, *colors = interpolate_vertex_groups(corners, bary, *parts)
    if texels is None:
        texels = colors[0] if colors else sample_textures(meshes, pairs, idx)
    return _lit(texels, points, normals, pairs.image_index(idx), pairs.num_images, scene)


def flat_pairs(
    meshes: Any, pairs: RasterPairs, idx: torch.Tensor, scene: Scene, texels: torch.Tensor | None = None
) -> torch.Tensor:
    """(Q, C) flat shading of the pairs ``idx``: face normal, lit at the face centroid."""
    face = pairs.face.index_select(0, idx)
    points = meshes.verts_packed()[meshes.faces_packed()].mean(dim=1).index_select(0, face)
    normals = meshes.faces_normals_packed().index_select(0, face)
    if texels is None:
        texels = sample_textures(meshes, pairs, idx)
    return _lit(texels, points, normals, pairs.image_index(idx), pairs.num_images, scene)


def gouraud_pairs(meshes: Any, pairs: RasterPairs, idx: torch.Tensor, scene: Scene) -> torch.Tensor:
    """(Q, C) Gouraud shading of the pairs ``idx``: vertices lit, their colours interpolated."""
    textures = meshes.textures
    if not hasattr(textures, "verts_features_packed"):
        raise ValueError(f"meshes.textures: Gouraud shading needs TexturesVertex, got {type(textures).__name__}")
    vertex_colors = _lit(
        textures.verts_features_packed(), meshes.verts_packed(), meshes.verts_normals_packed(),
        meshes.verts_packed_to_mesh_idx(), len(meshes), scene,
    )
    corners = meshes.faces_packed().index_select(0, pairs.face.index_select(0, idx))
    return interpolate_vertex_pairs(corners, pairs.bary.index_select(0, idx), vertex_colors)


def _dense_view(meshes: Any, fragments: Fragments, scene: Scene, shade: Any, texels: torch.Tensor | None) -> torch.Tensor:
    """``shade`` on every pair of ``fragments``, scattered to (N, H, W, K, 3) (0 where no face)."""
    pairs, slots = pairs_of_fragments(fragments)
    idx = torch.arange(pairs.pix.shape[0], device=pairs.pix.device)
    if texels is None:
        colors = shade(meshes, pairs, idx, scene)
    else:
        colors = shade(meshes, pairs, idx, scene, pair_rows("texels", texels, pairs, slots))
    k = pairs.faces_per_pixel
    out = colors.new_zeros(pairs.num_pixels * k, colors.shape[1]).index_put((slots,), colors)
    return out.view(pairs.num_images, *pairs.image_size, k, colors.shape[1])


def phong_shading(
    meshes: Any, fragments: Fragments, lights: Any, cameras: Any, materials: Any, texels: torch.Tensor
) -> torch.Tensor:
    """(N, H, W, K, C) per-pixel Phong ``(ambient + diffuse) * texels + specular`` (0 where
    no face), ``texels`` (N, H, W, K, C); positions and normals interpolated per pixel."""
    return _dense_view(meshes, fragments, Scene(lights, cameras, materials), phong_pairs, texels)


def flat_shading(
    meshes: Any, fragments: Fragments, lights: Any, cameras: Any, materials: Any, texels: torch.Tensor
) -> torch.Tensor:
    """Flat shading (face normals, lit at face centroids), as :func:`phong_shading`."""
    return _dense_view(meshes, fragments, Scene(lights, cameras, materials), flat_pairs, texels)


def gouraud_shading(meshes: Any, fragments: Fragments, lights: Any, cameras: Any, materials: Any) -> torch.Tensor:
    """(N, H, W, K, C) Gouraud shading: vertices (TexturesVertex) lit, colours interpolated."""
    return _dense_view(meshes, fragments, Scene(lights, cameras, materials), gouraud_pairs, None)


# 0.1 compatibility only (``diffmesh.softrender._phong_pairs``): same colours, one path.


@dataclass(frozen=True)
class PhongScene(Scene):
    """A single-light, single-material scene with nothing that needs a gradient."""

    num_images: int


def fast_phong_scene(lights: Any, cameras: Any, materials: Any, num_images: int, dtype: torch.dtype) -> PhongScene | None:
    """The scene when it is one point or directional light and one material of ``dtype``,
    cameras of batch 1 or ``num_images``, and no tensor needing a gradient; else None."""
    light = getattr(lights, "location", getattr(lights, "direction", None))
    if light is None:
        return None
    colors = ("ambient_color", "diffuse_color", "specular_color")
    params = [light, *(getattr(lights, n) for n in colors), *(getattr(materials, n) for n in colors)]
    if any(p.requires_grad or p.shape[0] != 1 or p.dtype != dtype for p in params):
        return None
    if materials.shininess.requires_grad or materials.shininess.shape[0] != 1:
        return None
    centers = cameras.get_camera_center()
    if centers.requires_grad or centers.shape[0] not in (1, num_images):
        return None
    return PhongScene(lights, cameras, materials, num_images)


def phong_colors(
    points: torch.Tensor, normals: torch.Tensor, texels: torch.Tensor, image_idx: torch.Tensor | None, scene: PhongScene
) -> torch.Tensor:
    """``(ambient + diffuse) * texels + specular`` (P, 3) at points of images ``image_idx``
    (None: all of image 0, for a camera batch of 1)."""
    if image_idx is None:
        image_idx = torch.zeros(points.shape[0], dtype=torch.long, device=points.device)
    return _lit(texels, points, normals, image_idx, scene.num_images, scene)


def _pairs(fragments: Fragments) -> RasterPairs:
    """The fragments' sparse pairs (built from the dense fields when they have none)."""
    if isinstance(fragments, Fragments) and fragments.pairs is not None:
        return fragments.pairs
    return pairs_of_fragments(fragments)[0]


def _blend_params(blend_params: Any, default: BlendParams | None = None) -> BlendParams:
    """``blend_params``, else ``default``, else ``BlendParams()``; TypeError if not BlendParams."""
    if blend_params is None:
        return BlendParams() if default is None else default
    if not isinstance(blend_params, BlendParams):
        raise TypeError(f"blend_params: expected BlendParams, got {type(blend_params).__name__}")
    return blend_params


class _ShaderBase(nn.Module):
    """A lit shader: the scene objects, per-call overrides, and the three steps of ``forward``
    (``_soft``: softmax blend of the pairs worth colouring, else each pixel's nearest face;
    ``_shade``: the pairs' shading)."""

    _soft: bool
    _shade: Any

    def __init__(
        self, device: torch.device | str = "cpu", cameras: Any = None, lights: Any = None, materials: Any = None,
        blend_params: BlendParams | None = None,
    ) -> None:
        super().__init__()
        self.lights = lights if lights is not None else PointLights(device=device)
        self.materials = materials if materials is not None else Materials(device=device)
        self.cameras = cameras
        self.blend_params = _blend_params(blend_params)

    def forward(
        self, fragments: Fragments, meshes: Any, *, cameras: Any = None, lights: Any = None, materials: Any = None,
        blend_params: BlendParams | None = None,
    ) -> torch.Tensor:
        cameras = self.cameras if cameras is None else cameras
        if cameras is None:
            raise ValueError(f"cameras: {type(self).__name__} needs cameras (at construction or per call), got None")
        scene = Scene(self.lights if lights is None else lights, cameras, self.materials if materials is None else materials)
        blend = _blend_params(blend_params, self.blend_params)
        pairs = _pairs(fragments)
        if self._soft:
            znear, zfar = getattr(cameras, "znear", 1.0), getattr(cameras, "zfar", 100.0)  # PyTorch3D's defaults
            weights = blend_weights(pairs, blend, znear, zfar)  # 1. visible pairs, weights
            colors = self._shade(meshes, pairs, weights.needed, scene)  # 2. textures and shading of those
            return softmax_blend(pairs, weights, colors, blend)  # 3. blend
        nearest = pairs.nearest().nonzero().squeeze(1)  # 1. visible pairs: each pixel's nearest
        colors = self._shade(meshes, pairs, nearest, scene)  # 2. textures and shading of those
        return hard_blend(pairs, nearest, colors, blend)  # 3. blend


class SoftPhongShader(_ShaderBase):
    """Phong lighting per pixel, softmax blending. Returns (N, H, W, C + 1) RGBA."""

    _soft, _shade = True, staticmethod(phong_pairs)


class HardPhongShader(_ShaderBase):
    """Phong lighting per pixel, nearest face only (hard edges). Returns (N, H, W, C + 1)."""

    _soft, _shade = False, staticmethod(phong_pairs)


class HardFlatShader(_ShaderBase):
    """Flat (per-face) lighting, nearest face only. Returns (N, H, W, C + 1)."""

    _soft, _shade = False, staticmethod(flat_pairs)


class SoftGouraudShader(_ShaderBase):
    """Lighting at the vertices (TexturesVertex colours), interpolated; softmax blending."""

    _soft, _shade = True, staticmethod(gouraud_pairs)


class HardGouraudShader(_ShaderBase):
    """Lighting at the vertices (TexturesVertex colours), interpolated; nearest face only."""

    _soft, _shade = False, staticmethod(gouraud_pairs)


class SoftSilhouetteShader(nn.Module):
    """Silhouette: RGB 1, alpha = 1 - prod_k (1 - sigmoid(-dists_k / sigma)) (``blend_params``).

    ``reads_barycentrics`` False: only ``dists`` are read (``MeshRenderer`` lets the
    rasterizer defer the barycentrics).
    """

    reads_barycentrics = False

    def __init__(self, blend_params: BlendParams | None = None) -> None:
        super().__init__()
        self.blend_params = _blend_params(blend_params)

    def forward(
        self, fragments: Fragments, meshes: Any = None, *, cameras: Any = None, lights: Any = None,
        materials: Any = None, blend_params: BlendParams | None = None,
    ) -> torch.Tensor:
        """(N, H, W, 4) RGBA; cameras, lights and materials are accepted and unused."""
        blend = _blend_params(blend_params, self.blend_params)
        return silhouette_blend(_pairs(fragments), blend)
