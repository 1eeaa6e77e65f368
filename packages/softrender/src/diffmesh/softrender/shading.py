"""Phong, Gouraud and flat shading, evaluated per rasterized (pixel, face) pair.

The ``*_pairs`` functions shade a subset ``idx`` of the sparse pairs (the shaders only ask
for pairs whose blend weight matters). The public ``phong_shading``, ``gouraud_shading``
and ``flat_shading`` keep PyTorch3D's signatures and return dense (N, H, W, K, 3) colours.
"""

from __future__ import annotations

from typing import Any

import torch

from ._phong_pairs import fast_phong_scene, phong_colors
from .fragments import Fragments, RasterPairs
from .interpolate import interpolate_vertex_groups, interpolate_vertex_pairs

__all__ = ["flat_shading", "gouraud_shading", "phong_shading"]


def _select(batched: Any, index: torch.Tensor, count: int) -> Any:
    """``batched[index]`` (a per-pair gather) unless it has a single element (broadcasts)."""
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
        lights, cameras, materials: the scene.

    Returns:
        (ambient, diffuse, specular), each broadcastable to (P, 3).
    """
    lights_p = _select(lights, image_idx, num_images)
    materials_p = _select(materials, image_idx, num_images)
    centers = cameras.get_camera_center().to(points.dtype)
    if centers.shape[0] == 1:
        camera_position = centers.expand(points.shape[0], 3)
    elif centers.shape[0] == num_images:
        camera_position = centers[image_idx]
    else:
        raise ValueError(
            f"cameras: expected batch size 1 or {num_images} (the number of meshes), got {centers.shape[0]}"
        )
    diffuse = lights_p.diffuse(normals=normals, points=points)
    specular = lights_p.specular(
        normals=normals, points=points, camera_position=camera_position, shininess=materials_p.shininess
    )
    ambient = materials_p.ambient_color * lights_p.ambient_color
    return ambient, materials_p.diffuse_color * diffuse, materials_p.specular_color * specular


def phong_pairs(
    meshes: Any,
    pairs: RasterPairs,
    idx: torch.Tensor,
    texels: torch.Tensor | None,
    lights: Any,
    cameras: Any,
    materials: Any,
    *,
    vertex_colors: torch.Tensor | None = None,
) -> torch.Tensor:
    """Phong shading (normals and positions interpolated per pixel) of pairs ``idx``: (len(idx), 3).

    ``texels`` (len(idx), 3) are the surface colours; alternatively ``vertex_colors``
    (sum V, 3) are interpolated together with the positions and normals (one gather).
    """
    bary = pairs.bary.index_select(0, idx)
    corners = meshes.faces_packed().index_select(0, pairs.face.index_select(0, idx))
    parts = [meshes.verts_packed(), meshes.verts_normals_packed()]
    if vertex_colors is not None:
        parts.append(vertex_colors[:, :3])
    points, normals, *colors = interpolate_vertex_groups(corners, bary, *parts)
    if colors:
        texels = colors[0]
    if texels is None:
        raise ValueError("phong_pairs: expected texels or vertex_colors, got neither")
    scene = fast_phong_scene(lights, cameras, materials, pairs.num_images, points.dtype)
    if scene is not None:  # one fused function (same values; see _phong_pairs)
        image_idx = None if scene.camera.shape[0] == 1 else pairs.image_index(idx)
        return phong_colors(points, normals, texels, image_idx, scene)
    ambient, diffuse, specular = apply_lighting(
        points, normals, pairs.image_index(idx), pairs.num_images, lights, cameras, materials
    )
    return (ambient + diffuse) * texels + specular


def flat_pairs(
    meshes: Any, pairs: RasterPairs, idx: torch.Tensor, texels: torch.Tensor, lights: Any, cameras: Any, materials: Any
) -> torch.Tensor:
    """Flat shading (one normal and position per face) of pairs ``idx``: (len(idx), 3)."""
    face = pairs.face.index_select(0, idx)
    faces = meshes.faces_packed()
    points = meshes.verts_packed()[faces].mean(dim=1).index_select(0, face)
    normals = meshes.faces_normals_packed().index_select(0, face)
    ambient, diffuse, specular = apply_lighting(
        points, normals, pairs.image_index(idx), pairs.num_images, lights, cameras, materials
    )
    return (ambient + diffuse) * texels + specular


def gouraud_vertex_colors(meshes: Any, lights: Any, cameras: Any, materials: Any) -> torch.Tensor:
    """Per-vertex lit colours (sum V, 3) from TexturesVertex features (Gouraud shading)."""
    textures = meshes.textures
    if textures is None or not hasattr(textures, "verts_features_packed"):
        raise ValueError(
            f"meshes.textures: Gouraud shading needs TexturesVertex, got {type(textures).__name__}"
        )
    verts = meshes.verts_packed()
    ambient, diffuse, specular = apply_lighting(
        verts, meshes.verts_normals_packed(), meshes.verts_packed_to_mesh_idx(), len(meshes),
        lights, cameras, materials,
    )
    return textures.verts_features_packed()[:, :3] * (ambient + diffuse) + specular


def gouraud_pairs(meshes: Any, pairs: RasterPairs, idx: torch.Tensor, vertex_colors: torch.Tensor) -> torch.Tensor:
    """Interpolate Gouraud vertex colours at pairs ``idx``: (len(idx), 3)."""
    corners = meshes.faces_packed().index_select(0, pairs.face.index_select(0, idx))
    return interpolate_vertex_pairs(corners, pairs.bary.index_select(0, idx), vertex_colors)


def _dense(colors: torch.Tensor, pairs: RasterPairs) -> torch.Tensor:
    """Scatter per-pair colours (P, C) into (N, H, W, K, C), zeros where no face."""
    order, slot = pairs.slots()
    height, width = pairs.image_size
    k = pairs.faces_per_pixel
    out = colors.new_zeros(pairs.num_pixels * k, colors.shape[1])
    out = out.index_put((pairs.pix[order] * k + slot,), colors[order])
    return out.view(pairs.num_images, height, width, k, colors.shape[1])


def _pairs_of(fragments: Fragments) -> RasterPairs:
    if not isinstance(fragments, Fragments):
        raise TypeError(f"fragments: expected Fragments, got {type(fragments).__name__}")
    if fragments.pairs is not None:
        return fragments.pairs
    p2f = fragments.pix_to_face
    n, height, width, k = p2f.shape
    flat = p2f.reshape(-1)
    keep = (flat >= 0).nonzero().squeeze(1)
    pix = torch.div(keep, k, rounding_mode="floor")
    return RasterPairs(
        pix, flat[keep], fragments.bary_coords.reshape(-1, 3)[keep], fragments.zbuf.reshape(-1)[keep],
        fragments.dists.reshape(-1)[keep], n, (height, width), k,
    )


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
    pairs = _pairs_of(fragments)
    idx = torch.arange(pairs.pix.shape[0], device=pairs.pix.device)
    tex = _texels_of_pairs(texels, pairs)
    return _dense(phong_pairs(meshes, pairs, idx, tex, lights, cameras, materials), pairs)


def flat_shading(
    meshes: Any, fragments: Fragments, lights: Any, cameras: Any, materials: Any, texels: torch.Tensor
) -> torch.Tensor:
    """Per-face (flat) shading with face normals and face centroids.

    Args and Returns as :func:`phong_shading`.
    """
    pairs = _pairs_of(fragments)
    idx = torch.arange(pairs.pix.shape[0], device=pairs.pix.device)
    tex = _texels_of_pairs(texels, pairs)
    return _dense(flat_pairs(meshes, pairs, idx, tex, lights, cameras, materials), pairs)


def gouraud_shading(meshes: Any, fragments: Fragments, lights: Any, cameras: Any, materials: Any) -> torch.Tensor:
    """Gouraud shading: light the vertices (TexturesVertex colours), interpolate the colours.

    Returns:
        (N, H, W, K, 3) float colours (0 where no face).
    """
    pairs = _pairs_of(fragments)
    idx = torch.arange(pairs.pix.shape[0], device=pairs.pix.device)
    vertex_colors = gouraud_vertex_colors(meshes, lights, cameras, materials)
    return _dense(gouraud_pairs(meshes, pairs, idx, vertex_colors), pairs)


def _texels_of_pairs(texels: torch.Tensor, pairs: RasterPairs) -> torch.Tensor:
    """Gather dense (N, H, W, K, C) texels to the pairs (P, C)."""
    shape = (pairs.num_images, *pairs.image_size, pairs.faces_per_pixel)
    if not torch.is_tensor(texels) or tuple(texels.shape[:4]) != shape:
        got = tuple(texels.shape) if torch.is_tensor(texels) else type(texels).__name__
        raise ValueError(f"texels: expected shape {(*shape, 'C')}, got {got}")
    order, slot = pairs.slots()
    flat = texels.reshape(-1, texels.shape[-1])
    out = flat.new_zeros(pairs.pix.shape[0], texels.shape[-1])
    out[order] = flat[pairs.pix[order] * pairs.faces_per_pixel + slot]
    return out
