"""``Meshes.submeshes``: meshes made of chosen faces of each mesh of a batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from .packing import pack_checked_lists
from .textures.vertex import TexturesVertex
from .validation import describe

if TYPE_CHECKING:
    from .meshes import Meshes

__all__ = ["select_submeshes"]


def _face_ids(ids: object, num_faces: int, where: str) -> Tensor:
    """Check one submesh's face indices: 1-D integer, in ``[0, num_faces)``."""
    if not isinstance(ids, Tensor):
        raise TypeError(f"Meshes.submeshes: {where} must be a long tensor, got {describe(ids)}")
    if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
        raise TypeError(f"Meshes.submeshes: {where} must be a long tensor, got {describe(ids)}")
    if ids.dim() != 1:
        raise ValueError(f"Meshes.submeshes: {where} must be 1-D, got {describe(ids)}")
    if ids.numel() > 0 and (int(ids.min()) < 0 or int(ids.max()) >= num_faces):
        raise ValueError(
            f"Meshes.submeshes: {where} holds face indices outside [0, {num_faces}): "
            f"min {int(ids.min())}, max {int(ids.max())}"
        )
    return ids.long()


def select_submeshes(
    meshes: Meshes, face_indices: Sequence[Sequence[Tensor]] | Sequence[Tensor] | Tensor
) -> Meshes:
    """See :meth:`~diffmesh.meshcore.Meshes.submeshes`."""
    textures = meshes.textures
    if textures is not None and not isinstance(textures, TexturesVertex):
        raise ValueError(
            "Meshes.submeshes: only meshes without textures or with TexturesVertex can be "
            f"split into submeshes, got {type(textures).__name__}"
        )
    n = len(meshes)
    if not isinstance(face_indices, (Tensor, list, tuple)) or len(face_indices) != n:
        raise ValueError(
            f"Meshes.submeshes: face_indices must hold one entry per mesh ({n}), "
            f"got {describe(face_indices)}"
        )
    topology = meshes.topology
    sizes = list(topology.num_verts_list)
    verts = torch.split(meshes.verts_packed(), sizes)
    features = None if textures is None else torch.split(textures.verts_features_packed(), sizes)
    sub_verts, sub_faces, sub_features = [], [], []
    for m in range(n):  # one step per submesh: the loop runs over the batch
        faces = topology.faces_list[m]
        for k, ids in enumerate(face_indices[m]):
            chosen = faces.index_select(
                0, _face_ids(ids, faces.shape[0], f"face_indices[{m}][{k}]")
            )
            used, renumbered = torch.unique(chosen, sorted=True, return_inverse=True)
            sub_verts.append(verts[m].index_select(0, used))
            sub_faces.append(renumbered.view(-1, 3))
            if features is not None:
                sub_features.append(features[m].index_select(0, used))
    verts_packed, new_topology = pack_checked_lists(
        sub_verts, sub_faces, meshes.device, meshes.dtype
    )
    new_textures = None
    if features is not None:
        counts = [v.shape[0] for v in sub_verts]
        packed = torch.cat([textures.verts_features_packed()[:0], *sub_features], 0)
        new_textures = TexturesVertex._from_packed(packed, counts)
    return type(meshes)._from_parts(verts_packed, new_topology, new_textures)
