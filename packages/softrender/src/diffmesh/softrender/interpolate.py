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


class _InterpolateVertexPairs(torch.autograd.Function):
    """``out[p] = sum_i bary[p, i] * attrs[corners[p, i]]``, computed channel by channel.

    Every channel is a contiguous (P,) row: three 1-D gathers from the (V,) column of the
    attribute, two products and sums, in the order ``(b0 a0 + b1 a1) + b2 a2`` (the same
    float results as a sum over the corner axis). The backward gathers again instead of
    saving (P, 3, D) values and scatters per channel with 1-D ``index_add_``: on a CPU this
    is several times faster than broadcasting over (P, 3, D) with a short last dimension.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        corners: torch.Tensor,
        bary: torch.Tensor,
        vert_attributes: torch.Tensor,
    ) -> torch.Tensor:
        cols = vert_attributes.t().contiguous()  # (D, V)
        corner_rows = corners.t().contiguous()  # (3, P)
        weights = bary.to(vert_attributes.dtype).t().contiguous()  # (3, P)
        out = weights.new_empty(cols.shape[0], corners.shape[0])  # (D, P), every row written
        for d in range(cols.shape[0]):
            col = cols[d]
            row = out[d]
            torch.mul(weights[0], col.index_select(0, corner_rows[0]), out=row)
            row.add_(weights[1] * col.index_select(0, corner_rows[1]))
            row.add_(weights[2] * col.index_select(0, corner_rows[2]))
        ctx.save_for_backward(corner_rows, weights, cols)
        ctx.bary_dtype = bary.dtype
        ctx.num_verts = vert_attributes.shape[0]
        return out.t()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
    ) -> tuple[None, torch.Tensor | None, torch.Tensor | None]:
        corner_rows, weights, cols = ctx.saved_tensors
        grad_rows = grad.t().contiguous()  # (D, P)
        grad_bary = grad_attrs = None
        if ctx.needs_input_grad[1]:
            acc = torch.zeros_like(weights)  # (3, P)
            for d in range(cols.shape[0]):
                for i in range(3):
                    acc[i].addcmul_(grad_rows[d], cols[d].index_select(0, corner_rows[i]))
            grad_bary = acc.t().to(ctx.bary_dtype)
        if ctx.needs_input_grad[2]:
            flat = corner_rows.reshape(-1)
            acc = cols.new_zeros(cols.shape[0], ctx.num_verts)  # (D, V)
            for d in range(cols.shape[0]):
                acc[d].index_add_(0, flat, (weights * grad_rows[d]).reshape(-1))
            grad_attrs = acc.t()
        return None, grad_bary, grad_attrs


def interpolate_vertex_pairs(corners: torch.Tensor, bary: torch.Tensor, vert_attributes: torch.Tensor) -> torch.Tensor:
    """Interpolate per-vertex values (V, D) at pairs with corner vertex ids (P, 3) and barycentrics (P, 3).

    Returns:
        (P, D) float ``sum_i bary[:, i] * vert_attributes[corners[:, i]]`` (a transposed view of
        channel-contiguous storage), differentiable w.r.t. ``bary`` and ``vert_attributes``.
    """
    return _InterpolateVertexPairs.apply(corners, bary, vert_attributes)
