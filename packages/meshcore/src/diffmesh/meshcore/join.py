"""Joining Meshes: into one larger batch, or all meshes of a batch into one scene."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .meshes import Meshes
from .textures.base import TexturesBase
from .topology import Topology

__all__ = ["join_meshes_as_batch", "join_meshes_as_scene"]


def _check_meshes_list(meshes: object, name: str) -> list[Meshes]:
    if isinstance(meshes, Meshes):
        return [meshes]
    if not isinstance(meshes, (list, tuple)):
        raise TypeError(
            f"{name}: meshes must be a Meshes or a list of Meshes, got {type(meshes).__name__}"
        )
    if not meshes:
        raise ValueError(f"{name}: meshes is an empty list; give at least one Meshes")
    for i, m in enumerate(meshes):
        if not isinstance(m, Meshes):
            raise TypeError(f"{name}: meshes[{i}] must be a Meshes, got {type(m).__name__}")
        if m.device != meshes[0].device:
            raise ValueError(
                f"{name}: meshes[{i}] is on {m.device} but meshes[0] is on {meshes[0].device}"
            )
        if m.dtype != meshes[0].dtype:
            raise TypeError(
                f"{name}: meshes[{i}] has dtype {m.dtype} but meshes[0] has {meshes[0].dtype}"
            )
    return list(meshes)


def _join_textures(meshes: list[Meshes], name: str) -> TexturesBase | None:
    textures = [m.textures for m in meshes]
    if all(t is None for t in textures):
        return None
    kinds = [type(t).__name__ if t is not None else None for t in textures]
    for i, kind in enumerate(kinds):
        if kind is None or kind != kinds[0]:
            raise ValueError(
                f"{name}: meshes[{i}] has textures of type {kind} but meshes[0] has "
                f"{kinds[0]}; all meshes must have textures of one type (or pass "
                "include_textures=False)"
            )
    first, *rest = (t for t in textures if t is not None)
    return first.join_batch(rest)


def join_meshes_as_batch(meshes: Sequence[Meshes], include_textures: bool = True) -> Meshes:
    """Concatenate several Meshes batches into one batch.

    Args:
        meshes: a list of Meshes (all on one device, one dtype).
        include_textures: join the textures too (all Meshes must then have textures
            of the same type, or all none).

    Returns:
        A Meshes of ``sum(len(m))`` meshes, in order; gradients flow back to each input's
        vertices and textures.
    """
    parts = _check_meshes_list(meshes, "join_meshes_as_batch")
    verts_packed = torch.cat([m.verts_packed() for m in parts], 0)
    offsets = torch.tensor([m.verts_packed().shape[0] for m in parts], device=verts_packed.device)
    offsets = torch.cumsum(offsets, 0) - offsets
    faces_packed = torch.cat([m.faces_packed() + offsets[i] for i, m in enumerate(parts)], 0)
    topology = Topology(
        faces_packed,
        torch.cat([m.num_verts_per_mesh() for m in parts]),
        torch.cat([m.num_faces_per_mesh() for m in parts]),
    )
    textures = _join_textures(parts, "join_meshes_as_batch") if include_textures else None
    return Meshes._from_parts(verts_packed, topology, textures)


def join_meshes_as_scene(
    meshes: Meshes | Sequence[Meshes], include_textures: bool = True
) -> Meshes:
    """Join every mesh of a batch (or of a list of batches) into a single mesh.

    Args:
        meshes: a Meshes or a list of Meshes.
        include_textures: join the textures too. TexturesVertex features are
            concatenated; TexturesUV maps are laid side by side in one atlas (see
            :meth:`TexturesUV.join_scene`).

    Returns:
        A Meshes with one mesh whose vertices are the input's packed vertices and
        whose faces are its packed faces.
    """
    parts = _check_meshes_list(meshes, "join_meshes_as_scene")
    batch = parts[0] if len(parts) == 1 else join_meshes_as_batch(parts, include_textures)
    verts = batch.verts_packed()
    faces = batch.faces_packed()
    device = verts.device
    topology = Topology(
        faces,
        torch.tensor([verts.shape[0]], dtype=torch.long, device=device),
        torch.tensor([faces.shape[0]], dtype=torch.long, device=device),
    )
    textures = None
    if include_textures and batch.textures is not None and len(batch) > 0:
        textures = batch.textures.join_scene()
    return Meshes._from_parts(verts, topology, textures)
