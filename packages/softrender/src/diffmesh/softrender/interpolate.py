"""Interpolating per-face-corner attributes with barycentric coordinates."""

from __future__ import annotations

import torch

__all__ = ["interpolate_face_attributes", "interpolate_pairs", "interpolate_vertex_pairs"]


def interpolate_face_attributes(
    pix_to_face: torch.Tensor, barycentric_coords: torch.Tensor, face_attributes: torch.Tensor
) -> torch.Tensor:
    """Interpolate per-face-corner attributes at every rasterized (pixel, face) slot.

    ``out[n, y, x, k] = sum_i bary[n, y, x, k, i] * face_attributes[pix_to_face[n, y, x, k], i]``,
    and 0 where ``pix_to_face`` is -1.

    Args:
        pix_to_face: (N, H, W, K) long packed face ids, -1 for none.
        barycentric_coords: (N, H, W, K, 3) float.
        face_attributes: (F, 3, D) float values at each face's three corners.

    Returns:
        (N, H, W, K, D) float, differentiable w.r.t. ``barycentric_coords`` and
        ``face_attributes``.
    """
    if not torch.is_tensor(pix_to_face) or pix_to_face.dtype not in (torch.long, torch.int):
        raise TypeError("pix_to_face: expected an integer (N, H, W, K) tensor")
    if not torch.is_tensor(face_attributes) or face_attributes.dim() != 3 or face_attributes.shape[1] != 3:
        got = tuple(face_attributes.shape) if torch.is_tensor(face_attributes) else type(face_attributes).__name__
        raise ValueError(f"face_attributes: expected shape (F, 3, D), got {got}")
    if not torch.is_tensor(barycentric_coords) or tuple(barycentric_coords.shape) != (*pix_to_face.shape, 3):
        got = tuple(barycentric_coords.shape) if torch.is_tensor(barycentric_coords) else None
        raise ValueError(f"barycentric_coords: expected shape {(*pix_to_face.shape, 3)}, got {got}")
    mask = pix_to_face >= 0
    flat = pix_to_face.reshape(-1)
    idx = flat.clamp(min=0)
    bary = barycentric_coords.reshape(-1, 3)
    out = interpolate_pairs(idx, bary, face_attributes)
    out = out * mask.reshape(-1, 1).to(out.dtype)
    return out.view(*pix_to_face.shape, face_attributes.shape[2])


def interpolate_pairs(face: torch.Tensor, bary: torch.Tensor, face_attributes: torch.Tensor) -> torch.Tensor:
    """Interpolate ``face_attributes`` (F, 3, D) at pairs with faces (P,) and barycentrics (P, 3).

    Returns:
        (P, D) float ``sum_i bary[:, i] * face_attributes[face, i]``.
    """
    if face.shape[0] == 0:
        return face_attributes.new_zeros(0, face_attributes.shape[2])
    vals = face_attributes.index_select(0, face)  # (P, 3, D); backward is an index_add
    return (bary.to(vals.dtype)[:, :, None] * vals).sum(dim=1)


def interpolate_vertex_pairs(corners: torch.Tensor, bary: torch.Tensor, vert_attributes: torch.Tensor) -> torch.Tensor:
    """Interpolate per-vertex values (V, D) at pairs with corner vertex ids (P, 3) and barycentrics (P, 3).

    Returns:
        (P, D) float ``sum_i bary[:, i] * vert_attributes[corners[:, i]]``.
    """
    vals = vert_attributes.index_select(0, corners.reshape(-1)).view(corners.shape[0], 3, -1)
    return (bary.to(vals.dtype)[:, :, None] * vals).sum(dim=1)
