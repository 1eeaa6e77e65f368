"""Structure ops with ``pytorch3d.ops``' names and signatures, all exported by
:mod:`diffmesh.meshcore`: ``packed_to_padded``, ``padded_to_packed``,
``mesh_face_areas_normals``, ``laplacian`` and ``norm_laplacian``.

Differences from PyTorch3D: any float dtype is kept (PyTorch3D requires or casts to
float32), segments longer than the padded size raise ``ValueError`` instead of writing out
of bounds, and degenerate inputs (zero-area faces, zero-length edges) have finite
gradients.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .geometry import face_areas, face_normals, safe_norm
from .validation import describe

__all__ = [
    "laplacian",
    "mesh_face_areas_normals",
    "norm_laplacian",
    "packed_to_padded",
    "padded_to_packed",
]


def _segments(first_idxs: Tensor, total: int, name: str) -> tuple[Tensor, Tensor, Tensor]:
    """Rows ``first_idxs[0] .. total - 1`` of a packed tensor, their batch element and
    their position in it.

    Returns:
        ``(rows, batch, local)``, each ``(total - first_idxs[0],)`` long.
    """
    if not isinstance(first_idxs, Tensor) or first_idxs.dim() != 1:
        raise ValueError(
            f"{name}: first_idxs must be a 1-D tensor (N,), got {describe(first_idxs)}"
        )
    if first_idxs.dtype != torch.int64:
        raise TypeError(f"{name}: first_idxs must be a long tensor, got {first_idxs.dtype}")
    if first_idxs.numel() == 0:
        empty = first_idxs.new_zeros(0)
        return empty, empty, empty
    if int(first_idxs.min()) < 0 or int(first_idxs.max()) > total:
        raise ValueError(f"{name}: first_idxs values must lie in [0, {total}]")
    if bool((first_idxs[1:] < first_idxs[:-1]).any()):
        raise ValueError(f"{name}: first_idxs must be non-decreasing")
    rows = torch.arange(int(first_idxs[0]), total, device=first_idxs.device)
    batch = torch.searchsorted(first_idxs, rows, right=True) - 1
    return rows, batch, rows - first_idxs[batch]


def _check_fits(local: Tensor, max_size: int, name: str, what: str) -> None:
    if local.numel() > 0 and int(local.max()) >= max_size:
        raise ValueError(
            f"{name}: a batch element has {int(local.max()) + 1} rows but {what} is {max_size}"
        )


def packed_to_padded(inputs: Tensor, first_idxs: Tensor, max_size: int) -> Tensor:
    """Scatter packed per-element values into a zero-padded batch tensor.

    Batch element ``i`` owns rows ``first_idxs[i] .. first_idxs[i + 1] - 1`` of
    ``inputs`` (the last one up to ``F - 1``); ``out[i, j] = inputs[first_idxs[i] + j]``.

    Args:
        inputs: ``(F,)`` or ``(F, ...)`` tensor, e.g. face areas of a batch of meshes.
        first_idxs: ``(N,)`` long, non-decreasing, in ``[0, F]``.
        max_size: padded size, at least the largest element's row count.

    Returns:
        ``(N, max_size)`` or ``(N, max_size, ...)``, zero where padded; differentiable
        w.r.t. ``inputs``.

    Raises:
        TypeError: a non-tensor ``inputs``, a non-long ``first_idxs`` or a non-int ``max_size``.
        ValueError: ``first_idxs`` not 1-D, decreasing or out of range, or an element
            longer than ``max_size``.
    """
    if not isinstance(inputs, Tensor) or inputs.dim() < 1:
        raise TypeError(
            f"packed_to_padded: inputs must be a tensor (F, ...), got {describe(inputs)}"
        )
    if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 0:
        raise TypeError(f"packed_to_padded: max_size must be an int >= 0, got {max_size!r}")
    rows, batch, local = _segments(first_idxs, inputs.shape[0], "packed_to_padded")
    _check_fits(local, max_size, "packed_to_padded", "max_size")
    n = first_idxs.shape[0]
    out = inputs.new_zeros((n * max_size, *inputs.shape[1:]))
    out = out.index_copy(0, batch * max_size + local, inputs.index_select(0, rows))
    return out.view(n, max_size, *inputs.shape[1:])


def padded_to_packed(
    inputs: Tensor, first_idxs: Tensor, num_inputs: int, max_size_dim: int = 1
) -> Tensor:
    """Gather a padded batch tensor back into packed rows (inverse of
    :func:`packed_to_padded`).

    Args:
        inputs: ``(N, ..., max_size, ...)`` tensor, ``max_size`` at dimension
            ``max_size_dim``.
        first_idxs: ``(N,)`` long, non-decreasing, in ``[0, num_inputs]``.
        num_inputs: ``F``, the number of packed rows.
        max_size_dim: the padded dimension of ``inputs``.

    Returns:
        ``(F,)`` for 2-D ``inputs``, else ``(F, ...)`` (the other dimensions in order), with
        ``out[first_idxs[i] + j] = inputs[i, ..., j, ...]``; rows before ``first_idxs[0]``
        are zero. Differentiable w.r.t. ``inputs``.

    Raises:
        TypeError: a non-tensor ``inputs``, a non-long ``first_idxs`` or a non-int
            ``num_inputs``.
        ValueError: ``first_idxs`` not 1-D, decreasing or out of range, a batch size
            other than ``len(first_idxs)``, or an element longer than ``max_size``.
    """
    if not isinstance(inputs, Tensor) or inputs.dim() < 2:
        raise TypeError(
            f"padded_to_packed: inputs must be a tensor (N, M, ...), got {describe(inputs)}"
        )
    if isinstance(num_inputs, bool) or not isinstance(num_inputs, int) or num_inputs < 0:
        raise TypeError(f"padded_to_packed: num_inputs must be an int >= 0, got {num_inputs!r}")
    moved = inputs.movedim(max_size_dim, 1)
    n, max_size = moved.shape[0], moved.shape[1]
    if first_idxs.shape != (n,):
        raise ValueError(
            f"padded_to_packed: first_idxs must have shape ({n},) to match inputs, "
            f"got {describe(first_idxs)}"
        )
    rows, batch, local = _segments(first_idxs, num_inputs, "padded_to_packed")
    _check_fits(local, max_size, "padded_to_packed", "inputs' padded size")
    flat = moved.reshape(n * max_size, *moved.shape[2:])
    out = flat.new_zeros((num_inputs, *moved.shape[2:]))
    return out.index_copy(0, rows, flat.index_select(0, batch * max_size + local))


def _check_verts_index(verts: Tensor, index: Tensor, name: str, index_name: str) -> None:
    if not isinstance(verts, Tensor) or not verts.is_floating_point() or verts.dim() != 2:
        raise TypeError(f"{name}: verts must be a float tensor (V, 3), got {describe(verts)}")
    if verts.shape[1] != 3:
        raise ValueError(f"{name}: verts must have shape (V, 3), got {describe(verts)}")
    cols = 3 if index_name == "faces" else 2
    if not isinstance(index, Tensor) or index.dtype != torch.int64:
        raise TypeError(f"{name}: {index_name} must be a long tensor, got {describe(index)}")
    if index.dim() != 2 or index.shape[1] != cols:
        raise ValueError(f"{name}: {index_name} must have shape (*, {cols}), got {describe(index)}")
    if index.device != verts.device:
        raise ValueError(f"{name}: {index_name} is on {index.device} but verts on {verts.device}")
    if index.numel() > 0 and (int(index.min()) < 0 or int(index.max()) >= verts.shape[0]):
        raise ValueError(
            f"{name}: {index_name} values must lie in [0, {verts.shape[0]}), got min "
            f"{int(index.min())} and max {int(index.max())}"
        )


def mesh_face_areas_normals(verts: Tensor, faces: Tensor) -> tuple[Tensor, Tensor]:
    """Area and unit normal of every face.

    Args:
        verts: ``(V, 3)`` float, e.g. ``meshes.verts_packed()``.
        faces: ``(F, 3)`` long indices into ``verts``.

    Returns:
        ``(areas (F,), normals (F, 3))``: ``0.5 * |n|`` and ``n / |n|`` with
        ``n = (v1 - v0) x (v2 - v0)``; a zero-area face has area 0, normal 0 and finite
        gradients.
    """
    _check_verts_index(verts, faces, "mesh_face_areas_normals", "faces")
    return face_areas(verts, faces), face_normals(verts, faces)


def _sparse(index: Tensor, values: Tensor, num_verts: int) -> Tensor:
    return torch.sparse_coo_tensor(
        index, values, (num_verts, num_verts), check_invariants=True
    ).coalesce()


def laplacian(verts: Tensor, edges: Tensor) -> Tensor:
    """The uniform graph Laplacian of the edge graph.

    ``L[i, i] = -1``; ``L[i, j] = 1 / deg(i)`` for an edge ``(i, j)``; 0 otherwise
    (``deg(i)``: the number of edges at ``i``, each listed edge counted once per listing).

    Args:
        verts: ``(V, 3)`` float; only its size, dtype and device are used.
        edges: ``(E, 2)`` long vertex indices, e.g. ``meshes.edges_packed()``.

    Returns:
        ``(V, V)`` coalesced sparse COO tensor of ``verts``' dtype (constant: no gradient).
    """
    _check_verts_index(verts, edges, "laplacian", "edges")
    v = verts.shape[0]
    e0, e1 = edges.unbind(1)
    deg = torch.bincount(torch.cat([e0, e1]), minlength=v).to(verts.dtype)
    inv_deg = torch.where(deg > 0, 1.0 / deg.clamp(min=1), 0.0)
    diag = torch.arange(v, device=verts.device)
    index = torch.stack([torch.cat([e0, e1, diag]), torch.cat([e1, e0, diag])])
    values = torch.cat([inv_deg[e0], inv_deg[e1], -torch.ones_like(deg)])
    return _sparse(index, values.detach(), v)


def norm_laplacian(verts: Tensor, edges: Tensor, eps: float = 1e-12) -> Tensor:
    """Edge-length weighted adjacency: ``L[i, j] = L[j, i] = 1 / (|v_i - v_j| + eps)`` for
    an edge ``(i, j)``, 0 otherwise (no diagonal).

    Args:
        verts: ``(V, 3)`` float.
        edges: ``(E, 2)`` long vertex indices.
        eps: added to each length; a zero-length edge weighs ``1 / eps`` with a zero
            (not NaN) gradient.

    Returns:
        ``(V, V)`` coalesced sparse COO tensor, differentiable w.r.t. ``verts``.
    """
    _check_verts_index(verts, edges, "norm_laplacian", "edges")
    e0, e1 = edges.unbind(1)
    w = 1.0 / (safe_norm(verts.index_select(0, e0) - verts.index_select(0, e1)) + eps)
    index = torch.stack([torch.cat([e0, e1]), torch.cat([e1, e0])])
    return _sparse(index, torch.cat([w, w]), verts.shape[0])
