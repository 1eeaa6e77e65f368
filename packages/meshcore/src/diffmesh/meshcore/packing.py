"""Turning list or padded ``Meshes`` inputs into packed vertices and a Topology."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .topology import Topology, segment_ids
from .validation import (
    check_face_indices,
    check_faces_tensor,
    check_same_dtype_device,
    check_verts_tensor,
)

__all__ = ["pack_checked_lists", "pack_lists", "pack_padded"]


def pack_lists(verts: Sequence[Tensor], faces: Sequence[Tensor]) -> tuple[Tensor, Topology]:
    if len(verts) != len(faces):
        raise ValueError(
            f"Meshes: verts has {len(verts)} meshes but faces has {len(faces)}; they must match"
        )
    verts, faces = _expand_empty(verts, faces)
    verts = [check_verts_tensor(v, f"verts[{i}]", 2) for i, v in enumerate(verts)]
    faces = [check_faces_tensor(f, f"faces[{i}]", 2) for i, f in enumerate(faces)]
    check_same_dtype_device(verts, "verts")
    check_same_dtype_device(faces, "faces")
    if verts and faces and faces[0].device != verts[0].device:
        raise ValueError(
            f"Meshes: faces are on {faces[0].device} but verts are on {verts[0].device}"
        )
    device = verts[0].device if verts else torch.device("cpu")
    dtype = verts[0].dtype if verts else torch.get_default_dtype()
    nv = torch.tensor([v.shape[0] for v in verts], dtype=torch.long, device=device)
    nf = torch.tensor([f.shape[0] for f in faces], dtype=torch.long, device=device)
    verts_packed = torch.cat(verts, 0) if verts else torch.zeros(0, 3, dtype=dtype, device=device)
    faces_local = (
        torch.cat(faces, 0) if faces else torch.zeros(0, 3, dtype=torch.long, device=device)
    )
    return verts_packed, topology_from_local(faces_local, nv, nf)


def _is_empty_1d(t: object) -> bool:
    return isinstance(t, Tensor) and t.dim() == 1 and t.numel() == 0


def _expand_empty(
    verts: Sequence[Tensor], faces: Sequence[Tensor]
) -> tuple[list[Tensor], list[Tensor]]:
    """Replace PyTorch3D's empty-mesh idiom ``torch.tensor([])`` (shape ``(0,)``) by
    ``(0, 3)`` tensors: verts of the other meshes' float dtype, faces long."""
    dtypes = [v.dtype for v in verts if isinstance(v, Tensor) and not _is_empty_1d(v)]
    dtype = dtypes[0] if dtypes else torch.get_default_dtype()
    verts = [v.new_zeros(0, 3, dtype=dtype) if _is_empty_1d(v) else v for v in verts]
    faces = [f.new_zeros(0, 3, dtype=torch.long) if _is_empty_1d(f) else f for f in faces]
    return verts, faces


def pack_padded(verts: Tensor, faces: Tensor) -> tuple[Tensor, Topology]:
    check_verts_tensor(verts, "verts", 3)
    faces = check_faces_tensor(faces, "faces", 3)
    if verts.shape[0] != faces.shape[0]:
        raise ValueError(
            f"Meshes: verts has batch size {verts.shape[0]} but faces has {faces.shape[0]}"
        )
    if faces.device != verts.device:
        raise ValueError(f"Meshes: faces are on {faces.device} but verts are on {verts.device}")
    n, v = verts.shape[0], verts.shape[1]
    valid = ~(faces == -1).all(dim=2)
    if bool((valid[:, 1:] & ~valid[:, :-1]).any()):
        mesh = int(torch.nonzero((valid[:, 1:] & ~valid[:, :-1]).any(dim=1))[0, 0])
        raise ValueError(
            f"Meshes: faces[{mesh}] has -1 padding rows before real faces; padding must come last"
        )
    nv = torch.full((n,), v, dtype=torch.long, device=verts.device)
    nf = valid.sum(dim=1)
    return verts.reshape(-1, 3), topology_from_local(faces[valid], nv, nf)


def topology_from_local(faces_local: Tensor, nv: Tensor, nf: Tensor) -> Topology:
    """Check local face indices, offset them into packed ones, build the Topology."""
    first = torch.cumsum(nv, 0) - nv
    to_mesh = segment_ids(nf, faces_local.shape[0])
    check_face_indices(faces_local, to_mesh, nv, "faces", "verts")
    return Topology(faces_local + first[to_mesh].unsqueeze(1), nv, nf)


def pack_checked_lists(
    verts: list[Tensor], faces: Sequence[Tensor], device: torch.device, dtype: torch.dtype
) -> tuple[Tensor, Topology]:
    """Packed verts and Topology from lists already known to be valid (no value checks)."""
    nv = torch.tensor([v.shape[0] for v in verts], dtype=torch.long, device=device)
    nf = torch.tensor([f.shape[0] for f in faces], dtype=torch.long, device=device)
    first = torch.cumsum(nv, 0) - nv
    verts_packed = torch.cat(verts, 0) if verts else torch.zeros(0, 3, dtype=dtype, device=device)
    faces_packed = (
        torch.cat([f + first[i] for i, f in enumerate(faces)], 0)
        if faces
        else torch.zeros(0, 3, dtype=torch.long, device=device)
    )
    return verts_packed, Topology(faces_packed, nv, nf)
