"""Turning list or padded :class:`~diffmesh.meshcore.Pointclouds` inputs into packed
tensors and a face-less :class:`~diffmesh.meshcore.Topology` (counts and index maps)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .topology import Topology
from .validation import describe

__all__ = ["cloud_layout", "pack_aux", "pack_points"]


def cloud_layout(num_points: Tensor) -> Topology:
    """The counts and packed/padded index maps of clouds of ``num_points[i]`` points: a
    Topology with no faces (``num_verts_*`` / ``verts_*`` count points)."""
    faces = torch.zeros(0, 3, dtype=torch.long, device=num_points.device)
    return Topology(faces, num_points, torch.zeros_like(num_points))


def _is_empty_1d(t: Tensor) -> bool:
    return t.dim() == 1 and t.numel() == 0


def pack_points(points: object) -> tuple[Tensor, Topology]:
    """Packed ``(sum(P_i), 3)`` points and their layout, from a list of ``(P_i, 3)``
    tensors (``torch.tensor([])`` for an empty cloud) or a padded ``(N, P, 3)`` tensor."""
    if isinstance(points, Tensor):
        if not points.is_floating_point():
            raise TypeError(f"Pointclouds: points must be a float tensor, got {describe(points)}")
        if points.dim() != 3 or points.shape[2] != 3:
            raise ValueError(
                f"Pointclouds: points must have shape (N, P, 3), got {describe(points)}"
            )
        n, p = points.shape[0], points.shape[1]
        counts = torch.full((n,), p, dtype=torch.long, device=points.device)
        packed = points.reshape(n * p, 3)
    elif isinstance(points, (list, tuple)):
        items = list(points)
        for i, t in enumerate(items):
            if not isinstance(t, Tensor):
                raise TypeError(
                    f"Pointclouds: points[{i}] must be a torch.Tensor, got {describe(t)}"
                )
            if t.device != items[0].device:
                raise ValueError(
                    f"Pointclouds: points[{i}] is on {t.device} but points[0] is on {items[0].device}"
                )
            if not _is_empty_1d(t) and (t.dim() != 2 or t.shape[1] != 3):
                raise ValueError(
                    f"Pointclouds: points[{i}] must have shape (P, 3) or be empty, got {describe(t)}"
                )
        dtypes = {t.dtype for t in items if not _is_empty_1d(t)}
        dtype = dtypes.pop() if len(dtypes) == 1 else torch.get_default_dtype()
        if dtypes or not dtype.is_floating_point:
            found = sorted(str(t.dtype) for t in items)
            raise TypeError(f"Pointclouds: points must be float tensors of one dtype, got {found}")
        device = items[0].device if items else torch.device("cpu")
        items = [t.new_zeros(0, 3, dtype=dtype) if _is_empty_1d(t) else t for t in items]
        counts = torch.tensor([len(t) for t in items], dtype=torch.long, device=device)
        packed = torch.cat(items, 0) if items else torch.zeros(0, 3, dtype=dtype, device=device)
    else:
        raise TypeError(
            f"Pointclouds: points must be a list of (P, 3) tensors or an (N, P, 3) tensor, "
            f"got {describe(points)}"
        )
    bad = ~torch.isfinite(packed).all(dim=1)
    layout = cloud_layout(counts)
    if bool(bad.any()):
        cloud = int(layout.verts_packed_to_mesh_idx[int(torch.nonzero(bad)[0, 0])])
        raise ValueError(f"Pointclouds: points[{cloud}] has non-finite (NaN or inf) coordinates")
    return packed, layout


def pack_aux(
    aux: Sequence[Tensor | None] | Tensor | None,
    layout: Topology,
    device: torch.device,
    name: str,
    channels: int | None,
) -> Tensor | None:
    """Packed ``(sum(P_i), C)`` normals or features (None if not given).

    Args:
        aux: None, a list of ``N`` tensors ``(P_i, C)`` (None or ``torch.tensor([])``
            allowed for an empty cloud), or a padded ``(N, max(P_i), C)`` tensor.
        layout: the points' layout.
        device: the points' device.
        name: ``"normals"`` or ``"features"`` for messages.
        channels: required ``C`` (3 for normals) or None.
    """
    if aux is None:
        return None
    n, counts = layout.num_meshes, layout.num_verts_list
    if isinstance(aux, Tensor):
        if aux.dim() != 3 or aux.shape[:2] != (n, layout.max_verts):
            raise ValueError(
                f"Pointclouds: {name} must have shape ({n}, {layout.max_verts}, C) to match "
                f"the points, got {describe(aux)}"
            )
        if aux.device != device:
            raise ValueError(f"Pointclouds: {name} are on {aux.device} but points on {device}")
        packed = aux.reshape(-1, aux.shape[2]).index_select(0, layout.verts_padded_index)
    elif isinstance(aux, (list, tuple)):
        if len(aux) != n:
            raise ValueError(f"Pointclouds: {name} has {len(aux)} clouds but points has {n}")
        widths = set()
        for i, t in enumerate(aux):
            if t is None or (isinstance(t, Tensor) and _is_empty_1d(t) and counts[i] == 0):
                if counts[i] != 0:
                    raise ValueError(
                        f"Pointclouds: {name}[{i}] is None but points[{i}] is not empty"
                    )
                continue
            if not isinstance(t, Tensor):
                raise TypeError(
                    f"Pointclouds: {name}[{i}] must be a torch.Tensor, got {describe(t)}"
                )
            if t.dim() != 2 or t.shape[0] != counts[i]:
                raise ValueError(
                    f"Pointclouds: {name}[{i}] must have shape ({counts[i]}, C), got {describe(t)}"
                )
            if t.device != device:
                raise ValueError(
                    f"Pointclouds: {name}[{i}] is on {t.device} but points on {device}"
                )
            widths.add((t.shape[1], t.dtype))
        if not widths:
            return None  # as PyTorch3D: nothing but empty clouds carries no channels
        if len(widths) > 1:
            raise ValueError(
                f"Pointclouds: {name} must all have one number of channels and dtype, "
                f"got {sorted((c, str(d)) for c, d in widths)}"
            )
        width, dtype = widths.pop()
        parts = [
            t
            if isinstance(t, Tensor) and t.dim() == 2
            else torch.zeros(0, width, dtype=dtype, device=device)
            for t in aux
        ]
        packed = torch.cat(parts, 0)
    else:
        raise TypeError(
            f"Pointclouds: {name} must be None, a list of tensors or a padded tensor, "
            f"got {describe(aux)}"
        )
    if channels is not None and packed.shape[1] != channels:
        raise ValueError(
            f"Pointclouds: {name} must have {channels} channels, got {packed.shape[1]}"
        )
    return packed
