"""Per-face texture atlases from an OBJ file's materials (PyTorch3D's
``load_obj(create_texture_atlas=True)``), in the layout of
:class:`diffmesh.meshcore.TexturesAtlas`."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["TEXTURE_WRAPS", "make_texture_atlas"]

TEXTURE_WRAPS = ("repeat", "clamp", None)
_CHUNK_FACES = 16384  # faces sampled per grid_sample call: bounds the temporary grid


def _cell_barycentrics(size: int, device: torch.device) -> torch.Tensor:
    """(R, R, 3) barycentrics of the centroid of each cell's sub-triangle.

    The layout of TexturesAtlas (see its module docstring): cell (row i, column j) with
    i + j < R is the lower triangle of the square at (i, j) in the (w0, w1) plane; the
    other cells hold the upper triangles of the squares at (R-1-i, R-1-j).
    """
    r = torch.arange(size, dtype=torch.float32, device=device)
    i, j = torch.meshgrid(r, r, indexing="ij")
    lower = (i + j) < size
    w0 = torch.where(lower, (j + 1.0 / 3.0) / size, (size - 1 - j + 2.0 / 3.0) / size)
    w1 = torch.where(lower, (i + 1.0 / 3.0) / size, (size - 1 - i + 2.0 / 3.0) / size)
    return torch.stack([w0, w1, 1.0 - w0 - w1], dim=-1)


def _sample_image(image: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of ``image`` (H, W, C) at ``uv`` (P, 2), u = 0 / 1 the centres of
    the first / last column, v = 0 the bottom row; zeros outside (PyTorch3D's atlas
    sampling: grid_sample with align_corners=True and zero padding)."""
    grid = torch.stack([2.0 * uv[:, 0] - 1.0, 1.0 - 2.0 * uv[:, 1]], dim=-1)
    out = F.grid_sample(
        image.permute(2, 0, 1)[None],
        grid[None, :, None],
        mode="bilinear",
        padding_mode="zeros",
        align_corners=True,
    )
    return out[0, :, :, 0].T  # (P, C)


def make_texture_atlas(
    material_colors: dict[str, dict[str, torch.Tensor]],
    texture_images: dict[str, torch.Tensor],
    faces_materials: torch.Tensor,
    faces_uvs: torch.Tensor,
    verts_uvs: torch.Tensor | None,
    size: int,
    wrap: str | None,
) -> torch.Tensor:
    """An ``(F, R, R, 3)`` atlas: each face's material image sampled over the face.

    A face starts white; a face whose material has a ``diffuse_color`` takes that colour;
    a face whose material has a texture image (and whose three corners have ``vt``
    coordinates) takes the image sampled at the centroid of each cell's sub-triangle,
    its UV interpolated from the face's corner UVs (the image replaces the colour, as in
    PyTorch3D and SoftRasterizer).

    Args:
        material_colors: ``{name: {"diffuse_color": (3,), ...}}``; material ``k`` is the
            k-th key (the order of ``faces_materials``).
        texture_images: ``{name: (H, W, 3) float}``.
        faces_materials: ``(F,)`` long material index of each face, -1 for none.
        faces_uvs: ``(F, 3)`` long indices into ``verts_uvs``, -1 for a corner without one.
        verts_uvs: ``(T, 2)`` float, or None when the file has no ``vt``.
        size: ``R``, the atlas resolution.
        wrap: ``"repeat"`` (UVs outside [0, 1] keep their fractional part: GL_REPEAT),
            ``"clamp"`` (clamped to [0, 1]) or None (left as they are; outside reads
            black).

    Returns:
        ``(F, R, R, 3)`` float32 on ``faces_uvs``' device.
    """
    device = faces_uvs.device
    names = list(material_colors)
    white = torch.ones(3, dtype=torch.float32, device=device)
    table = torch.stack(
        [material_colors[n].get("diffuse_color", white).to(device, torch.float32) for n in names]
        + [white]
    )  # (K + 1, 3): the last row for faces without a material
    material = torch.where(faces_materials < 0, len(names), faces_materials)
    num_faces = faces_uvs.shape[0]
    atlas = table[material][:, None, None, :].expand(num_faces, size, size, 3).clone()
    if verts_uvs is None or verts_uvs.shape[0] == 0 or not texture_images:
        return atlas
    has_uvs = (faces_uvs >= 0).all(dim=1)
    corner_uvs = verts_uvs.to(device, torch.float32)[faces_uvs.clamp(min=0)]  # (F, 3, 2)
    if wrap == "repeat":  # values in [0, 1] (1.0 included) are kept as they are
        outside = (corner_uvs < 0.0) | (corner_uvs > 1.0)
        corner_uvs = torch.where(outside, torch.remainder(corner_uvs, 1.0), corner_uvs)
    elif wrap == "clamp":
        corner_uvs = corner_uvs.clamp(0.0, 1.0)
    bary = _cell_barycentrics(size, device).view(1, size * size, 3, 1)
    for k, name in enumerate(names):  # one iteration per material
        image = texture_images.get(name)
        if image is None:
            continue
        image = image[..., :3].to(device, torch.float32)
        faces = torch.nonzero((material == k) & has_uvs).flatten()
        for start in range(0, faces.shape[0], _CHUNK_FACES):  # bounded temporaries
            chunk = faces[start : start + _CHUNK_FACES]
            uv = (corner_uvs[chunk][:, None] * bary).sum(dim=2)  # (Fc, R * R, 2)
            texels = _sample_image(image, uv.reshape(-1, 2))
            atlas[chunk] = texels.view(chunk.shape[0], size, size, 3)
    return atlas
