"""Input checks for :class:`~diffmesh.meshcore.Meshes`, with messages naming the
argument, the offending mesh, what was expected and what was given."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

_INT_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)


def describe(x: object) -> str:
    """Short description of a value for error messages."""
    if isinstance(x, Tensor):
        return f"a {x.dtype} tensor of shape {tuple(x.shape)} on {x.device}"
    return f"a {type(x).__name__}"


def check_verts_tensor(v: object, name: str, ndim: int) -> Tensor:
    """Check a floating ``(..., 3)`` tensor with ``ndim`` dimensions."""
    if not isinstance(v, Tensor):
        raise TypeError(f"Meshes: {name} must be a torch.Tensor, got {describe(v)}")
    if not v.is_floating_point():
        raise TypeError(f"Meshes: {name} must be a floating point tensor, got {describe(v)}")
    if v.dim() != ndim or v.shape[-1] != 3:
        shape = "(V, 3)" if ndim == 2 else "(N, V, 3)"
        raise ValueError(f"Meshes: {name} must have shape {shape}, got {describe(v)}")
    return v


def check_faces_tensor(f: object, name: str, ndim: int) -> Tensor:
    """Check an integer ``(..., 3)`` tensor with ``ndim`` dimensions; return it as long."""
    if not isinstance(f, Tensor):
        raise TypeError(f"Meshes: {name} must be a torch.Tensor, got {describe(f)}")
    if f.dtype not in _INT_DTYPES:
        raise TypeError(f"Meshes: {name} must be an integer (long) tensor, got {describe(f)}")
    if f.dim() != ndim or f.shape[-1] != 3:
        shape = "(F, 3)" if ndim == 2 else "(N, F, 3)"
        raise ValueError(f"Meshes: {name} must have shape {shape}, got {describe(f)}")
    return f.long()


def check_same_dtype_device(tensors: Sequence[Tensor], name: str) -> None:
    """All tensors of a list share the first one's device (and dtype if floating)."""
    if not tensors:
        return
    first = tensors[0]
    for i, t in enumerate(tensors):
        if t.device != first.device:
            raise ValueError(
                f"Meshes: {name}[{i}] is on {t.device} but {name}[0] is on {first.device}"
            )
        if first.is_floating_point() and t.dtype != first.dtype:
            raise TypeError(
                f"Meshes: {name}[{i}] has dtype {t.dtype} but {name}[0] has {first.dtype}"
            )


def check_finite_verts(
    verts_packed: Tensor, verts_to_mesh: Tensor, name: str, method: str | None = None
) -> None:
    """Raise ValueError naming the first mesh with a NaN or infinite vertex.

    Args:
        verts_packed: ``(sum(V_n), 3)`` float.
        verts_to_mesh: ``(sum(V_n),)`` long.
        name: the argument the vertices came from.
        method: the Meshes method whose result this is (None: the constructor).
    """
    bad = ~torch.isfinite(verts_packed.detach()).all(dim=1)
    if bool(bad.any()):
        first = int(torch.nonzero(bad)[0, 0])
        mesh = int(verts_to_mesh[first])
        example = verts_packed[first].detach().tolist()
        if method is None:
            raise ValueError(
                f"Meshes: {name}[{mesh}] has non-finite (NaN or inf) coordinates, e.g. {example}"
            )
        raise ValueError(
            f"Meshes.{method}: {name} gives non-finite (NaN or inf) coordinates in mesh "
            f"{mesh}, e.g. {example}; the constructor refuses those too"
        )


def check_face_indices(
    faces_local: Tensor,
    faces_to_mesh: Tensor,
    num_verts_per_mesh: Tensor,
    faces_name: str,
    verts_name: str,
) -> None:
    """Raise ValueError if a face index of mesh n is outside ``[0, V_n)``.

    Args:
        faces_local: ``(sum(F_n), 3)`` long, indices local to each mesh.
        faces_to_mesh: ``(sum(F_n),)`` long.
        num_verts_per_mesh: ``(N,)`` long.
    """
    if faces_local.shape[0] == 0:
        return
    limit = num_verts_per_mesh[faces_to_mesh].unsqueeze(1)
    bad = (faces_local < 0) | (faces_local >= limit)
    if bool(bad.any()):
        first = torch.nonzero(bad)[0]
        row, col = int(first[0]), int(first[1])
        mesh = int(faces_to_mesh[row])
        value = int(faces_local[row, col])
        if value < 0:
            raise ValueError(
                f"Meshes: {faces_name}[{mesh}] has negative index {value}; "
                f"indices must lie in [0, {int(limit[row, 0])})"
            )
        raise ValueError(
            f"Meshes: {faces_name}[{mesh}] has index {value} but {verts_name}[{mesh}] has only "
            f"{int(limit[row, 0])} vertices"
        )
