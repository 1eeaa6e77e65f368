"""Interpolating per-face-corner attributes with barycentric coordinates."""

from __future__ import annotations

import warnings

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


def _csr(crow: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A sparse CSR matrix (no invariant checks: callers build valid ones)."""
    with warnings.catch_warnings():  # torch flags sparse CSR as beta on every construction
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, cols, values, size=size, check_invariants=False)


def _corner_matrix(corners: torch.Tensor, weights: torch.Tensor, num_verts: int) -> torch.Tensor:
    """(P, V) sparse CSR matrix with ``weights[p, i]`` at column ``corners[p, i]``."""
    crow = torch.arange(0, 3 * corners.shape[0] + 1, 3, device=corners.device)
    return _csr(crow, corners.reshape(-1), weights.reshape(-1), (corners.shape[0], num_verts))


def _corner_sums(corners: torch.Tensor, weights: torch.Tensor, grad: torch.Tensor, num_verts: int) -> torch.Tensor:
    """``out[v] = sum_{p, i: corners[p, i] = v} weights[p, i] * grad[p]``: (V, D).

    Pairs with the same corners (one face's) are mostly contiguous, so the sums are taken
    first over those runs, as one CSR (3 runs x pairs) @ (pairs x D) product, and the few
    run sums are then scattered to the vertices (scatter-adds with long runs of equal
    indices are several times slower).
    """
    count = corners.shape[0]
    starts = torch.ones(count, dtype=torch.bool, device=corners.device)
    starts[1:] = (corners[1:] != corners[:-1]).any(dim=1)
    starts = starts.nonzero().squeeze(1)
    bounds = torch.cat((starts, starts.new_full((1,), count)))
    crow = torch.cat((bounds[:-1], bounds[:-1] + count, bounds + 2 * count))  # one block per corner
    cols = torch.arange(count, device=corners.device).repeat(3)
    matrix = _csr(crow, cols, weights.t().reshape(-1), (3 * starts.shape[0], count))
    sums = matrix @ grad  # (3 runs, D), corner-major
    rows = corners.index_select(0, starts).t().reshape(-1)
    return sums.new_zeros(num_verts, grad.shape[1]).index_add_(0, rows, sums)


class _InterpolateVertexPairs(torch.autograd.Function):
    """``out[p] = sum_i bary[p, i] * attrs[corners[p, i]]`` as a sparse (P, V) @ (V, D) product.

    The forward is one CSR matrix product (3 weights per row); the output is returned as a
    transposed view of channel-contiguous (D, P) storage, the layout the shading reads.
    The backward gathers each corner's values once per channel for the barycentric
    gradient and sums the attribute gradient per run of pairs with equal corners.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        corners: torch.Tensor,
        bary: torch.Tensor,
        vert_attributes: torch.Tensor,
    ) -> torch.Tensor:
        attrs = vert_attributes.contiguous()
        weights = bary.to(attrs.dtype).contiguous()  # (P, 3)
        if corners.shape[0] == 0 or attrs.shape[1] == 0:
            out = attrs.new_zeros(corners.shape[0], attrs.shape[1])
        else:
            out = _corner_matrix(corners, weights, attrs.shape[0]) @ attrs
        ctx.save_for_backward(corners, weights, attrs)
        ctx.bary_dtype = bary.dtype
        return out.t().contiguous().t()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor
    ) -> tuple[None, torch.Tensor | None, torch.Tensor | None]:
        corners, weights, attrs = ctx.saved_tensors
        grad_bary = grad_attrs = None
        if corners.shape[0] == 0:
            grad_bary = torch.zeros_like(weights, dtype=ctx.bary_dtype) if ctx.needs_input_grad[1] else None
            return None, grad_bary, torch.zeros_like(attrs) if ctx.needs_input_grad[2] else None
        if ctx.needs_input_grad[1]:
            cols = attrs.t().contiguous()  # (D, V)
            corner_rows = corners.t().contiguous()  # (3, P)
            grad_rows = grad.t().contiguous()  # (D, P)
            acc = weights.new_zeros(3, corners.shape[0])
            for d in range(cols.shape[0]):
                for i in range(3):
                    acc[i].addcmul_(grad_rows[d], cols[d].index_select(0, corner_rows[i]))
            grad_bary = acc.t().to(ctx.bary_dtype)
        if ctx.needs_input_grad[2]:
            grad_attrs = _corner_sums(corners, weights, grad.contiguous(), attrs.shape[0])
        return None, grad_bary, grad_attrs


def interpolate_vertex_pairs(corners: torch.Tensor, bary: torch.Tensor, vert_attributes: torch.Tensor) -> torch.Tensor:
    """Interpolate per-vertex values (V, D) at pairs with corner vertex ids (P, 3) and barycentrics (P, 3).

    Returns:
        (P, D) float ``sum_i bary[:, i] * vert_attributes[corners[:, i]]`` (a transposed view of
        channel-contiguous storage), differentiable w.r.t. ``bary`` and ``vert_attributes``.
    """
    return _InterpolateVertexPairs.apply(corners, bary, vert_attributes)
