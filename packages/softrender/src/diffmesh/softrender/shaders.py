"""The shaders and the per-pair shading they run."""

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
    pairs_of_fragments,
)
from .lighting import PointLights
from .materials import Materials

__all__ = ["HardFlatShader", "HardGouraudShader", "HardPhongShader", "SoftGouraudShader", "SoftPhongShader", "SoftSilhouetteShader", "apply_lighting", "flat_pairs", "flat_shading", "gouraud_pairs", "gouraud_shading", "phong_pairs", "phong_shading", "sample_textures"]

def _select(batched: Any, index: torch.Tensor, count: int) -> Any:
    """``batched[index]`` (a per-point gather) unless it has a single element (broadcasts)."""
    if len(batched) == 1:
        return batched
    if len(batched) != count:
        raise ValueError(
            f"{type(batched).__name__}: expected batch size 1 or {count} (the number of meshes), "
            f"got {len(batched)}"
        )
    return batched[index]


def apply_lighting(
    points: torch.Tensor,
    normals: torch.Tensor,
    image_idx: torch.Tensor,
    num_images: int,
    lights: Any,
    cameras: Any,
    materials: Any,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Phong lighting terms at points of the images ``image_idx``.

    Args:
        points: (P, 3) world positions.
        normals: (P, 3) world normals (any length; zero gives no diffuse/specular light).
        image_idx: (P,) long image (mesh) index of each point.
        num_images: N; lights, cameras and materials have batch 1 or N.
        lights: lights with a ``lighting(normals, points, camera_position, shininess)``
            method giving the coloured (diffuse, specular) terms (the light classes).
        cameras, materials: the scene.

    Returns:
        (ambient, diffuse, specular), each broadcastable to (P, 3).
    """
    lights_p = _select(lights, image_idx, num_images)
    materials_p = _select(materials, image_idx, num_images)
    centers = cameras.get_camera_center().to(points.dtype)
    if centers.shape[0] == 1:
        camera_position = centers[0]
    elif centers.shape[0] == num_images:
        camera_position = centers[image_idx]
    else:
        raise ValueError(
            f"cameras: expected batch size 1 or {num_images} (the number of meshes), got {centers.shape[0]}"
        )
    diffuse, specular = lights_p.lighting(normals, points, camera_position, materials_p.shininess)
    ambient = materials_p.ambient_color * lights_p.ambient_color
    return ambient, materials_p.diffuse_color * diffuse, materials_p.specular_color * specular


def _grey(term: torch.Tensor, channels: int) -> torch.Tensor:
    """The (..., 1) value of an RGB lighting term (..., 3) whose channels are equal."""
    if bool((term != term[..., :1]).any()):
        raise ValueError(
            f"lights, materials: colours of {channels} channels (not RGB) can be lit only by grey "
            "lights and materials (equal RGB components, as the defaults); got coloured ones"
        )
    return term[..., :1]


def _lit(texels: torch.Tensor, lighting: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """``(ambient + diffuse) * texels + specular`` (P, C).

    RGB texels (C = 3) take the RGB lighting; texels of other widths (feature channels)
    take grey lighting (one value scales every channel, ValueError for coloured lights).
    """
    ambient, diffuse, specular = lighting
    if texels.shape[-1] != 3:
        channels = texels.shape[-1]
        ambient, diffuse, specular = (_grey(term, channels) for term in lighting)
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


@dataclass(frozen=True)
class Scene:
    """What shading reads besides the mesh: ``lights``, ``cameras``, ``materials``."""

    lights: Any
    cameras: Any
    materials: Any


def phong_pairs(
    meshes: Any, pairs: RasterPairs, idx: torch.Tensor, scene: Scene, texels: torch.Tensor | None = None
) -> torch.Tensor:
    """Phong shading (positions and normals interpolated per pixel) of the pairs ``idx``.

    Args:
        meshes: Meshes in world space.
        pairs: the rasterizer's pairs; ``idx`` (Q,) long the ones to shade.
        scene: lights, cameras and materials (batch 1 or N).
        texels: (Q, C) surface colours; None samples the mesh's texture (vertex colours
            are interpolated with the positions and normals in one pass).

    Returns:
        (Q, C) float colours (C the texture's channels, 3 for RGB).
    """
    bary = pairs.bary.index_select(0, idx)
    corners = meshes.faces_packed().index_select(0, pairs.face.index_select(0, idx))
    parts = [meshes.verts_packed(), meshes.verts_normals_packed()]
    textures = meshes.textures
    vertex_colors = texels is None and textures is not None and hasattr(textures, "verts_features_packed")
    if vertex_colors:
        parts.append(textures.verts_features_packed())
    points, normals, *colors = interpolate_vertex_groups(corners, bary, *parts)
    if texels is None:
        texels = colors[0] if colors else sample_textures(meshes, pairs, idx)
    image_idx = pairs.image_index(idx)
    lighting = apply_lighting(points, normals, image_idx, pairs.num_images, scene.lights, scene.cameras, scene.materials)
    return _lit(texels, lighting)


def flat_pairs(
    meshes: Any, pairs: RasterPairs, idx: torch.Tensor, scene: Scene, texels: torch.Tensor | None = None
) -> torch.Tensor:
    """Flat shading (face normal, lit at the face centroid) of the pairs ``idx``: (Q, C).

    Args as :func:`phong_pairs` (``texels`` None: the mesh's texture at each pixel).
    """
    face = pairs.face.index_select(0, idx)
    faces = meshes.faces_packed()
    points = meshes.verts_packed()[faces].mean(dim=1).index_select(0, face)
    normals = meshes.faces_normals_packed().index_select(0, face)
    if texels is None:
        texels = sample_textures(meshes, pairs, idx)
    image_idx = pairs.image_index(idx)
    lighting = apply_lighting(points, normals, image_idx, pairs.num_images, scene.lights, scene.cameras, scene.materials)
    return _lit(texels, lighting)


def gouraud_pairs(meshes: Any, pairs: RasterPairs, idx: torch.Tensor, scene: Scene) -> torch.Tensor:
    """Gouraud shading of the pairs ``idx``: vertices lit (TexturesVertex colours), the
    colours interpolated. Args as :func:`phong_pairs`; returns (Q, C)."""
    textures = meshes.textures
    if textures is None or not hasattr(textures, "verts_features_packed"):
        raise ValueError(f"meshes.textures: Gouraud shading needs TexturesVertex, got {type(textures).__name__}")
    lighting = apply_lighting(
        meshes.verts_packed(), meshes.verts_normals_packed(), meshes.verts_packed_to_mesh_idx(), len(meshes),
        scene.lights, scene.cameras, scene.materials,
    )
    vertex_colors = _lit(textures.verts_features_packed(), lighting)
    corners = meshes.faces_packed().index_select(0, pairs.face.index_select(0, idx))
    return interpolate_vertex_pairs(corners, pairs.bary.index_select(0, idx), vertex_colors)


def _dense_view(meshes: Any, fragments: Fragments, scene: Scene, shade: Any, texels: torch.Tensor | None) -> torch.Tensor:
    """``shade`` on every pair of ``fragments``, scattered to (N, H, W, K, 3) (0 where no face)."""
    pairs, slots = pairs_of_fragments(fragments)
    k = pairs.faces_per_pixel
    shape = (pairs.num_images, *pairs.image_size, k)
    if texels is not None:
        if not torch.is_tensor(texels) or tuple(texels.shape[:4]) != shape:
            got = tuple(texels.shape) if torch.is_tensor(texels) else type(texels).__name__
            raise ValueError(f"texels: expected shape {(*shape, 'C')}, got {got}")
        texels = texels.reshape(-1, texels.shape[-1]).index_select(0, slots)
    idx = torch.arange(pairs.pix.shape[0], device=pairs.pix.device)
    colors = shade(meshes, pairs, idx, scene) if texels is None else shade(meshes, pairs, idx, scene, texels)
    out = colors.new_zeros(pairs.num_pixels * k, colors.shape[1]).index_put((slots,), colors)
    return out.view(*shape, colors.shape[1])


def phong_shading(
    meshes: Any, fragments: Fragments, lights: Any, cameras: Any, materials: Any, texels: torch.Tensor
) -> torch.Tensor:
    """Per-pixel Phong shading: ``(ambient + diffuse) * texels + specular``.

    Positions and normals are interpolated from the vertices at each pixel.

    Args:
        meshes: Meshes in world space.
        fragments: the rasterizer output.
        lights, cameras, materials: the scene (batch 1 or N).
        texels: (N, H, W, K, 3) float surface colours.

    Returns:
        (N, H, W, K, 3) float colours (0 where no face).
    """
    return _dense_view(meshes, fragments, Scene(lights, cameras, materials), phong_pairs, texels)


def flat_shading(
    meshes: Any, fragments: Fragments, lights: Any, cameras: Any, materials: Any, texels: torch.Tensor
) -> torch.Tensor:
    """Per-face (flat) shading with face normals and face centroids.

    Args and Returns as :func:`phong_shading`.
    """
    return _dense_view(meshes, fragments, Scene(lights, cameras, materials), flat_pairs, texels)


def gouraud_shading(meshes: Any, fragments: Fragments, lights: Any, cameras: Any, materials: Any) -> torch.Tensor:
    """Gouraud shading: light the vertices (TexturesVertex colours), interpolate the colours.

    Returns:
        (N, H, W, K, 3) float colours (0 where no face).
    """
    return _dense_view(meshes, fragments, Scene(lights, cameras, materials), gouraud_pairs, None)


# ------------------------------------------------------------------ 0.1 compatibility
# softrender 0.1 had a second, fused Phong implementation for constant scenes, chosen by
# ``fast_phong_scene``; 0.2 shades every scene with the one above. The two names stay
# importable (also as ``diffmesh.softrender._phong_pairs``) and compute the same colours.


@dataclass(frozen=True)
class PhongScene:
    """A single-light, single-material scene with nothing that needs a gradient."""

    lights: Any
    cameras: Any
    materials: Any
    num_images: int


def fast_phong_scene(lights: Any, cameras: Any, materials: Any, num_images: int, dtype: torch.dtype) -> PhongScene | None:
    """The scene when it is one point or directional light and one material of ``dtype``,
    cameras of batch 1 or ``num_images``, and no tensor needing a gradient; else None."""
    if not hasattr(lights, "location") and not hasattr(lights, "direction"):
        return None
    params = [getattr(lights, n) for n in ("ambient_color", "diffuse_color", "specular_color")]
    params += [lights.location if hasattr(lights, "location") else lights.direction]
    params += [getattr(materials, n) for n in ("ambient_color", "diffuse_color", "specular_color")]
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
    return _lit(texels, apply_lighting(points, normals, image_idx, scene.num_images, scene.lights, scene.cameras,
                                       scene.materials))


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
