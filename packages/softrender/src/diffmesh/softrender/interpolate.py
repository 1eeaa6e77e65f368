"""Interpolating per-face-corner attributes with barycentric coordinates."""

from __future__ import annotations

import warnings

import torch

from ._autograd import first_order_only

__all__ = [
    "interpolate_face_attributes",
    "interpolate_pairs",
    "interpolate_vertex_groups",
    "interpolate_vertex_pairs",
]


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


def _csr(crow: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A sparse CSR matrix (no invariant checks: callers build valid ones).

    Indices are stored as int32 when they fit: the CPU kernels (MKL) take int32 and
    would otherwise convert both index arrays on every product.
    """
    if max(size[0], size[1], values.shape[0]) < 2**31 - 1:
        crow, cols = crow.to(torch.int32), cols.to(torch.int32)
    with warnings.catch_warnings():  # torch flags sparse CSR as beta on every construction
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, cols, values, size=size, check_invariants=False)


def _transpose(x: torch.Tensor) -> torch.Tensor:
    """``x.t().contiguous()`` for a narrow (P, C) tensor, one strided row copy per column
    (several times faster on a CPU than the generic transposing copy)."""
    out = x.new_empty(x.shape[1], x.shape[0])  # every row written below
    for i in range(x.shape[1]):
        out[i].copy_(x[:, i])
    return out


def _corner_matrix(corners: torch.Tensor, weights: torch.Tensor, num_verts: int) -> torch.Tensor:
    """(P, V) sparse CSR matrix with ``weights[p, i]`` at column ``corners[p, i]``."""
    crow = torch.arange(0, 3 * corners.shape[0] + 1, 3, device=corners.device)
    return _csr(crow, corners.reshape(-1), weights.reshape(-1), (corners.shape[0], num_verts))


def _run_matrix(corner_rows: torch.Tensor, weight_rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The corner sums' matrix: (3 R, P) CSR with ``weight_rows[i, p]`` at (i R + run(p), p).

    Runs are maximal blocks of consecutive pairs with equal corners (one face's pairs are
    contiguous); ``corner_rows`` and ``weight_rows`` are (3, P) component rows. Returns the
    matrix and the (3 R,) vertex id of each of its rows.
    """
    count = corner_rows.shape[1]
    starts = torch.ones(count, dtype=torch.bool, device=corner_rows.device)
    starts[1:] = (corner_rows[:, 1:] != corner_rows[:, :-1]).any(dim=0)
    starts = starts.nonzero().squeeze(1)
    bounds = torch.cat((starts, starts.new_full((1,), count)))
    crow = torch.cat((bounds[:-1], bounds[:-1] + count, bounds + 2 * count))  # one block per corner
    pair = torch.arange(count, device=corner_rows.device, dtype=torch.int32 if 3 * count < 2**31 else torch.long)
    cols = torch.cat((pair, pair, pair))  # (repeat() is a slow strided copy)
    matrix = _csr(crow, cols, weight_rows.reshape(-1), (3 * starts.shape[0], count))
    return matrix, corner_rows.index_select(1, starts).reshape(-1)


class _InterpolateVertexPairs(torch.autograd.Function):
    """``out_k[p] = sum_i bary[p, i] * attrs_k[corners[p, i]]`` for attribute tables k."""

    # Each channel is one CSR (P, V) mat-vec with 3 weights per row, written as a contiguous
    # (P,) row; every output is a transposed view of channel-contiguous (D_k, P) storage, the
    # layout the shading reads, and separate outputs give separate gradients. The backward
    # sums the attribute gradient over runs of pairs with equal corners (one CSR mat-vec per
    # channel) before a small scatter to the vertices: scatter-adds with long runs of equal
    # indices are several times slower. Corners and weights are saved as (3, P) rows.

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        grad_enabled: bool,
        corners: torch.Tensor,
        bary: torch.Tensor,
        *attributes: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        dtype = attributes[0].dtype
        weights = bary.to(dtype).contiguous()  # (P, 3)
        cols = [a.to(dtype).t().contiguous() for a in attributes]  # (D_k, V) each
        count = corners.shape[0]
        matrix = _corner_matrix(corners, weights, attributes[0].shape[0]) if count else None
        outs = []
        for col in cols:
            if matrix is None or col.shape[0] == 0:
                outs.append(col.new_zeros(count, col.shape[0]))
            else:
                out = col.new_empty(col.shape[0], count)  # (D_k, P), every row written
                for c, row in zip(col, out, strict=True):
                    torch.mv(matrix, c, out=row)
                outs.append(out.t())
        if grad_enabled and any(ctx.needs_input_grad):
            ctx.save_for_backward(_transpose(corners), _transpose(weights), *cols)  # (3, P) rows
        ctx.set_materialize_grads(False)  # an unused output's gradient stays None
        ctx.bary_dtype = bary.dtype
        ctx.attr_dtypes = [a.dtype for a in attributes]
        return tuple(outs)

    @staticmethod
    @first_order_only
    def backward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx, *grads: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, ...]:
        corner_rows, weight_rows, *cols = ctx.saved_tensors
        needs = ctx.needs_input_grad
        count = corner_rows.shape[1]
        # (D_k, P) channel rows: contiguous when the gradient is channel-planar, strided
        # views otherwise (read in place, never transposed into a copy).
        grad_rows = [None if g is None or count == 0 else g.to(weight_rows.dtype).t() for g in grads]
        grad_bary = None
        if needs[2]:
            acc = weight_rows.new_zeros(3, count)
            for col, rows in zip(cols, grad_rows, strict=True):
                for d in range(0 if rows is None else col.shape[0]):
                    for i in range(3):
                        acc[i].addcmul_(rows[d], col[d].index_select(0, corner_rows[i]))
            grad_bary = weight_rows.new_empty(count, 3)  # (P, 3) rows, as bary; every column written
            for i in range(3):
                grad_bary[:, i].copy_(acc[i])
            grad_bary = grad_bary.to(ctx.bary_dtype)
        grad_attrs: list[torch.Tensor | None] = []
        run_matrix = vertex = None
        for k, (col, rows) in enumerate(zip(cols, grad_rows, strict=True)):
            if not needs[3 + k]:
                grad_attrs.append(None)
                continue
            acc = col.new_zeros(col.shape)  # (D_k, V)
            if rows is not None and col.shape[0]:
                if run_matrix is None:
                    run_matrix, vertex = _run_matrix(corner_rows, weight_rows)
                if rows.t().is_contiguous():  # (P, D_k) rows: one sparse @ dense product
                    sums = (run_matrix @ rows.t()).t()
                else:
                    sums = col.new_empty(col.shape[0], run_matrix.shape[0])  # (D_k, 3 R), all written
                    for r, row in zip(rows, sums, strict=True):
                        torch.mv(run_matrix, r.contiguous(), out=row)
                acc.index_add_(1, vertex, sums)
            grad_attrs.append(acc.t().to(ctx.attr_dtypes[k]))
        return None, None, grad_bary, *grad_attrs


def interpolate_vertex_groups(
    corners: torch.Tensor, bary: torch.Tensor, *attributes: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """:func:`interpolate_vertex_pairs` of several (V, D_k) tables at once: a tuple of (P, D_k).

    One sparse weight matrix serves all tables, and each output has its own gradient.
    """
    if not attributes:
        raise ValueError("interpolate_vertex_groups: expected at least one (V, D) attribute table, got none")
    return _InterpolateVertexPairs.apply(torch.is_grad_enabled(), corners, bary, *attributes)


def interpolate_vertex_pairs(corners: torch.Tensor, bary: torch.Tensor, vert_attributes: torch.Tensor) -> torch.Tensor:
    """Interpolate per-vertex values (V, D) at pairs with corner vertex ids (P, 3) and barycentrics (P, 3).

    Returns:
        (P, D) float ``sum_i bary[:, i] * vert_attributes[corners[:, i]]`` (a transposed view of
        channel-contiguous storage), differentiable w.r.t. ``bary`` and ``vert_attributes``.
    """
    return _InterpolateVertexPairs.apply(torch.is_grad_enabled(), corners, bary, vert_attributes)[0]
