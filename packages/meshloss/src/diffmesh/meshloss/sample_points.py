"""Uniform random sampling of points on the surfaces of a batch of meshes."""

from __future__ import annotations

import torch
from diffmesh.meshcore import Meshes
from torch import Tensor

__all__ = ["sample_points_from_meshes"]


def _face_choice(meshes: Meshes, valid: Tensor, num_samples: int,
                 generator: torch.Generator | None) -> Tensor:
    """Packed face index of every sample, chosen with probability proportional to area.

    Returns:
        ``(N_valid, S)`` long indices into ``faces_packed``.
    """
    topology = meshes.topology
    num_faces = meshes.num_faces_per_mesh()
    with torch.no_grad():
        areas = meshes.faces_areas_packed()
        padded = areas.new_zeros(topology.num_meshes * topology.max_faces)
        padded[topology.faces_padded_index] = areas
        padded = padded.view(topology.num_meshes, topology.max_faces)[valid]
        # A mesh whose faces all have zero area samples its faces uniformly.
        flat = padded.sum(1) <= 0
        if bool(flat.any()):
            in_mesh = torch.arange(topology.max_faces, device=areas.device) < num_faces[valid, None]
            padded = torch.where(flat[:, None] & in_mesh, 1.0, padded)
        if padded.dtype not in (torch.float32, torch.float64):
            padded = padded.float()
        choice = torch.multinomial(padded, num_samples, replacement=True, generator=generator)
        return choice + meshes.mesh_to_faces_packed_first_idx()[valid, None]


class _Barycentric(torch.autograd.Function):
    """``points[s] = sum_k bary[s, k] verts[corners[s, k]]`` with a one-pass backward
    (``grad_verts[corners[s, k]] += bary[s, k] grad[s]``, one index_add on planes)."""

    @staticmethod
    def forward(ctx, verts: Tensor, corners: Tensor, bary: Tensor) -> Tensor:  # type: ignore[override]
        face_verts = verts.index_select(0, corners.view(-1)).view(-1, 3, 3)  # (S, corner, xyz)
        points = face_verts[:, 0] * bary[:, 0:1]
        points.addcmul_(face_verts[:, 1], bary[:, 1:2]).addcmul_(face_verts[:, 2], bary[:, 2:3])
        ctx.save_for_backward(corners, bary)
        ctx.num_verts = verts.shape[0]
        return points

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:  # type: ignore[override]
        corners, bary = ctx.saved_tensors
        # On (xyz, S * 3) component planes: index_add along dim 1 is several times faster
        # than adding (S * 3) rows of 3.
        per_corner = grad.t().contiguous().unsqueeze(2) * bary.unsqueeze(0)  # (xyz, S, corner)
        grad_verts = grad.new_zeros((3, ctx.num_verts)).index_add_(
            1, corners.view(-1), per_corner.reshape(3, -1))
        return grad_verts.t(), None, None


def sample_points_from_meshes(
    meshes: Meshes,
    num_samples: int = 10000,
    return_normals: bool = False,
    return_textures: bool = False,
    *,
    generator: torch.Generator | None = None,
) -> Tensor | tuple[Tensor, ...]:
    """Sample points uniformly on the surface of each mesh of a batch.

    Faces are drawn with probability proportional to their area (no gradient flows through
    this choice; a mesh whose faces all have zero area draws them uniformly), then a point
    inside the face with uniform barycentrics ``w0 = 1 - sqrt(u)``, ``w1 = sqrt(u) (1 - v)``,
    ``w2 = sqrt(u) v`` for ``u, v ~ U[0, 1)``:
    ``p = w0 v0 + w1 v1 + w2 v2``, differentiable w.r.t. the vertex positions. The random
    draws come in PyTorch3D's order (faces, then ``torch.rand(2, N_valid, S)``).

    Args:
        meshes: a batch of N meshes.
        num_samples: S, points per mesh (>= 0).
        return_normals: also return the unit normals of the sampled faces.
        return_textures: also return the texture values at the samples
            (``meshes.textures`` must be set).
        generator: random number generator for reproducible samples (None: torch's global one).

    Returns:
        ``samples (N, S, 3)``, then ``normals (N, S, 3)`` if ``return_normals``, then
        ``textures (N, S, C)`` if ``return_textures``: a tensor when only samples are asked
        for, otherwise a tuple in that order. Rows of empty meshes (no faces) are zeros.

    Raises:
        TypeError: ``meshes`` is not a Meshes, or ``num_samples`` not an int.
        ValueError: ``num_samples < 0``, or ``return_textures`` without textures.

    Example:
        >>> from diffmesh.meshio import ico_sphere
        >>> points, normals = sample_points_from_meshes(ico_sphere(2), 1000, return_normals=True)
        >>> points.shape
        torch.Size([1, 1000, 3])
    """
    if not isinstance(meshes, Meshes):
        raise TypeError(f"meshes must be a Meshes, got {type(meshes).__name__}")
    if isinstance(num_samples, bool) or not isinstance(num_samples, int):
        raise TypeError(f"num_samples must be an int, got {type(num_samples).__name__}")
    if num_samples < 0:
        raise ValueError(f"num_samples must be >= 0, got {num_samples}")
    if return_textures and meshes.textures is None:
        raise ValueError("return_textures=True needs meshes with textures, got meshes.textures=None")

    verts = meshes.verts_packed()
    n = len(meshes)
    valid = meshes.valid
    num_valid = int(valid.sum())
    samples = verts.new_zeros((n, num_samples, 3))
    normals = verts.new_zeros((n, num_samples, 3)) if return_normals else None
    textures = None
    if num_valid == 0 or num_samples == 0:
        if return_textures:
            channels = meshes.sample_textures(
                torch.full((1,), -1, dtype=torch.int64, device=verts.device),
                verts.new_zeros((1, 3))).shape[-1]
            textures = verts.new_zeros((n, num_samples, channels))
        return _pack(samples, normals, textures)

    face_idx = _face_choice(meshes, valid, num_samples, generator)  # (Nv, S)
    uv = torch.rand((2, num_valid, num_samples), generator=generator, dtype=verts.dtype,
                    device=verts.device)
    sqrt_u = uv[0].sqrt()
    bary = torch.stack([1.0 - sqrt_u, sqrt_u * (1.0 - uv[1]), sqrt_u * uv[1]], dim=-1)  # (Nv, S, 3)

    corners = meshes.faces_packed().index_select(0, face_idx.view(-1))  # (Nv * S, 3)
    points = _Barycentric.apply(verts, corners, bary.view(-1, 3)).view(num_valid, num_samples, 3)
    all_valid = num_valid == n
    samples = points if all_valid else samples.index_put((valid,), points)
    if normals is not None:
        chosen = meshes.faces_normals_packed().index_select(0, face_idx.reshape(-1))
        chosen = chosen.view(num_valid, num_samples, 3)
        normals = chosen if all_valid else normals.index_put((valid,), chosen)
    if return_textures:
        values = meshes.sample_textures(face_idx, bary)  # (Nv, S, C)
        textures = values if all_valid else values.new_zeros((n, *values.shape[1:])).index_put(
            (valid,), values)
    return _pack(samples, normals, textures)


def _pack(samples: Tensor, normals: Tensor | None, textures: Tensor | None
          ) -> Tensor | tuple[Tensor, ...]:
    out = tuple(t for t in (samples, normals, textures) if t is not None)
    return out[0] if len(out) == 1 else out
