"""Checking and normalizing the inputs of :class:`TexturesUV` (maps, uvs, map ids)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import _describe

__all__ = ["faces_uvs_list", "maps_ids_list", "maps_tensor", "pad_rows", "verts_uvs_list"]

_INTS = (torch.int32, torch.int64)


def _resize(m: Tensor, h: int, w: int, dtype: torch.dtype) -> Tensor:
    """``(..., H', W', C)`` -> ``(..., h, w, C)`` bilinearly (unchanged when equal)."""
    m = m.to(dtype)
    if m.shape[-3:-1] == (h, w):
        return m
    lead = m.shape[:-3]
    x = m.reshape(-1, *m.shape[-3:]).permute(0, 3, 1, 2)
    x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    return x.permute(0, 2, 3, 1).reshape(*lead, h, w, m.shape[-1])


def maps_tensor(maps: Tensor | Sequence[Tensor], multi: bool) -> Tensor:
    """The maps as one padded tensor.

    Args:
        maps: without ``multi``, ``(N, H, W, C)`` or ``N`` tensors ``(H_n, W_n, C)``;
            with ``multi`` (``maps_ids`` given), ``(N, M, H, W, C)`` or ``N`` tensors
            ``(M_n, H_n, W_n, C)``.
        multi: whether every mesh has a stack of maps.

    Returns:
        ``(N, H, W, C)`` or ``(N, M, H, W, C)``: list maps resized bilinearly to the
        largest ``H, W``; stacks of fewer than ``max(M_n)`` maps padded with zero maps.
    """
    ndim = 5 if multi else 4
    shape = "(N, M, H, W, C)" if multi else "(N, H, W, C)"
    item = "(M, H, W, C)" if multi else "(H, W, C)"
    if isinstance(maps, Tensor):
        if not maps.is_floating_point():
            raise TypeError(f"TexturesUV: maps must be a float tensor, got {_describe(maps)}")
        if maps.dim() != ndim or maps.shape[-3] == 0 or maps.shape[-2] == 0:
            raise ValueError(
                f"TexturesUV: maps must have shape {shape} with H, W >= 1"
                + (" (maps_ids is given)" if multi else "")
                + f", got {tuple(maps.shape)}"
            )
        return maps
    if not isinstance(maps, (list, tuple)):
        raise TypeError(
            f"TexturesUV: maps must be an {shape} tensor or a list of {item} tensors, "
            f"got {_describe(maps)}"
        )
    if not maps:
        raise ValueError("TexturesUV: maps is an empty list; give at least one map")
    for i, m in enumerate(maps):
        if not isinstance(m, Tensor) or not m.is_floating_point():
            raise TypeError(f"TexturesUV: maps[{i}] must be a float tensor, got {_describe(m)}")
        if m.dim() != ndim - 1 or m.shape[-3] == 0 or m.shape[-2] == 0:
            raise ValueError(
                f"TexturesUV: maps[{i}] must have shape {item}"
                + (" (maps_ids is given)" if multi else "")
                + f", got {tuple(m.shape)}"
            )
        if m.shape[-1] != maps[0].shape[-1] or m.device != maps[0].device:
            raise ValueError(
                f"TexturesUV: maps[{i}] is {_describe(m)} on {m.device} but maps[0] is "
                f"{_describe(maps[0])} on {maps[0].device}; channels and device must match"
            )
    h = max(m.shape[-3] for m in maps)
    w = max(m.shape[-2] for m in maps)
    dtype = maps[0].dtype
    resized = [_resize(m, h, w, dtype) for m in maps]
    if multi:
        count = max(m.shape[0] for m in maps)
        resized = [F.pad(m, (0, 0, 0, 0, 0, 0, 0, count - m.shape[0])) for m in resized]
    return torch.stack(resized, 0)


def faces_uvs_list(faces_uvs: Tensor | Sequence[Tensor]) -> list[Tensor]:
    """``N`` long tensors ``(F_n, 3)``; a padded ``(N, F, 3)`` tensor loses its all-``-1``
    rows."""
    if isinstance(faces_uvs, Tensor):
        if faces_uvs.dtype not in _INTS:
            raise TypeError(
                f"TexturesUV: faces_uvs must be a long tensor, got {_describe(faces_uvs)}"
            )
        if faces_uvs.dim() != 3 or faces_uvs.shape[2] != 3:
            raise ValueError(
                f"TexturesUV: faces_uvs must have shape (N, F, 3), got {tuple(faces_uvs.shape)}"
            )
        keep = ~(faces_uvs == -1).all(dim=2)
        counts = keep.sum(dim=1).tolist()
        return [faces_uvs[i, :c].long() for i, c in enumerate(counts)]
    if not isinstance(faces_uvs, (list, tuple)):
        raise TypeError(
            f"TexturesUV: faces_uvs must be a tensor or a list, got {_describe(faces_uvs)}"
        )
    out = []
    for i, f in enumerate(faces_uvs):
        if not isinstance(f, Tensor) or f.dtype not in _INTS:
            raise TypeError(f"TexturesUV: faces_uvs[{i}] must be a long tensor, got {_describe(f)}")
        if f.dim() != 2 or f.shape[1] != 3:
            raise ValueError(
                f"TexturesUV: faces_uvs[{i}] must have shape (F, 3), got {tuple(f.shape)}"
            )
        out.append(f.long())
    return out


def verts_uvs_list(verts_uvs: Tensor | Sequence[Tensor]) -> list[Tensor]:
    """``N`` float tensors ``(T_n, 2)``."""
    if isinstance(verts_uvs, Tensor):
        if not verts_uvs.is_floating_point():
            raise TypeError(
                f"TexturesUV: verts_uvs must be a float tensor, got {_describe(verts_uvs)}"
            )
        if verts_uvs.dim() != 3 or verts_uvs.shape[2] != 2:
            raise ValueError(
                f"TexturesUV: verts_uvs must have shape (N, T, 2), got {tuple(verts_uvs.shape)}"
            )
        return list(verts_uvs.unbind(0))
    if not isinstance(verts_uvs, (list, tuple)):
        raise TypeError(
            f"TexturesUV: verts_uvs must be a tensor or a list, got {_describe(verts_uvs)}"
        )
    for i, v in enumerate(verts_uvs):
        if not isinstance(v, Tensor) or not v.is_floating_point():
            raise TypeError(
                f"TexturesUV: verts_uvs[{i}] must be a float tensor, got {_describe(v)}"
            )
        if v.dim() != 2 or v.shape[1] != 2:
            raise ValueError(
                f"TexturesUV: verts_uvs[{i}] must have shape (T, 2), got {tuple(v.shape)}"
            )
    return list(verts_uvs)


def maps_ids_list(maps_ids: Tensor | Sequence[Tensor], num_faces: Sequence[int]) -> list[Tensor]:
    """``N`` long tensors ``(F_n,)``; a padded ``(N, F)`` tensor is cut to ``num_faces``."""
    if isinstance(maps_ids, Tensor):
        if maps_ids.dtype not in _INTS:
            raise TypeError(
                f"TexturesUV: maps_ids must be a long tensor, got {_describe(maps_ids)}"
            )
        if maps_ids.dim() != 2 or maps_ids.shape[0] != len(num_faces):
            raise ValueError(
                f"TexturesUV: maps_ids must have shape (N, F) with N = {len(num_faces)}, got "
                f"{tuple(maps_ids.shape)}"
            )
        if any(f > maps_ids.shape[1] for f in num_faces):
            raise ValueError(
                f"TexturesUV: maps_ids has {maps_ids.shape[1]} columns but faces_uvs has "
                f"{list(num_faces)} faces per mesh"
            )
        return [maps_ids[i, :f].long() for i, f in enumerate(num_faces)]
    if not isinstance(maps_ids, (list, tuple)):
        raise TypeError(
            f"TexturesUV: maps_ids must be a tensor or a list, got {_describe(maps_ids)}"
        )
    if len(maps_ids) != len(num_faces):
        raise ValueError(
            f"TexturesUV: maps_ids has {len(maps_ids)} entries but faces_uvs has {len(num_faces)}"
        )
    out = []
    for i, (ids, f) in enumerate(zip(maps_ids, num_faces, strict=True)):
        if not isinstance(ids, Tensor) or ids.dtype not in _INTS:
            raise TypeError(
                f"TexturesUV: maps_ids[{i}] must be a long tensor, got {_describe(ids)}"
            )
        if ids.shape != (f,):
            raise ValueError(
                f"TexturesUV: maps_ids[{i}] must have shape ({f},) (one id per face of "
                f"faces_uvs[{i}]), got {tuple(ids.shape)}"
            )
        out.append(ids.long())
    return out


def pad_rows(
    items: list[Tensor], fill: float, dtype: torch.dtype, device: torch.device, tail: tuple
) -> Tensor:
    """``(N, max rows, *tail)`` from ``N`` tensors ``(rows_n, *tail)``, padded with ``fill``."""
    rows = max((t.shape[0] for t in items), default=0)
    out = torch.full((len(items), rows, *tail), fill, dtype=dtype, device=device)
    for i, t in enumerate(items):  # one copy per mesh, not per element
        out[i, : t.shape[0]] = t
    return out
