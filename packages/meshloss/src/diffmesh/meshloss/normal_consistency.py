"""Normal-consistency regularizer over pairs of faces that share an edge."""

from __future__ import annotations

from typing import NamedTuple

import torch
from diffmesh.meshcore import Meshes
from torch import Tensor

__all__ = ["mesh_normal_consistency"]

_EPS = 1e-8  # torch.nn.functional.cosine_similarity's default, as PyTorch3D uses it


class _FacePairs(NamedTuple):
    """Every pair of faces sharing an edge, as the vertices that define their normals.

    Attributes:
        edge_v0, edge_v1: ``(P,)`` long endpoints of the shared edge (``v0 < v1``).
        opposite_a, opposite_b: ``(P,)`` long vertex opposite the edge in each face.
        mesh_idx: ``(P,)`` long mesh of the pair.
    """

    edge_v0: Tensor
    edge_v1: Tensor
    opposite_a: Tensor
    opposite_b: Tensor
    mesh_idx: Tensor


def _face_pairs(meshes: Meshes) -> _FacePairs:
    """All pairs of (face, edge) incidences with the same edge (k faces on an edge give
    k (k - 1) / 2 pairs: non-manifold edges included), computed once per topology."""
    def compute() -> _FacePairs:
        faces = meshes.faces_packed()
        edge_of = meshes.faces_packed_to_edges_packed().reshape(-1)  # (3F,), edge opposite corner
        opposite = faces.reshape(-1)  # (3F,), the corner itself
        edge_sorted, order = torch.sort(edge_of, stable=True)
        opposite = opposite[order]
        counts = torch.bincount(edge_sorted, minlength=meshes.edges_packed().shape[0])
        start = torch.cumsum(counts, 0) - counts
        rank = torch.arange(edge_sorted.shape[0], device=faces.device) - start[edge_sorted]
        partners = counts[edge_sorted] - 1 - rank  # later incidences of the same edge
        first = torch.repeat_interleave(torch.arange(edge_sorted.shape[0], device=faces.device),
                                        partners)
        pair_start = torch.cumsum(partners, 0) - partners
        within = torch.arange(first.shape[0], device=faces.device) - pair_start[first]
        second = first + 1 + within
        edge = edge_sorted[first]
        edges = meshes.edges_packed()
        return _FacePairs(edges[edge, 0], edges[edge, 1], opposite[first], opposite[second],
                          meshes.edges_packed_to_mesh_idx()[edge])
    return meshes.topology.derived(("meshloss", "face_pairs"), compute)


def _pair_weights(meshes: Meshes, dtype: torch.dtype) -> Tensor:
    """``(P,)`` weight of each pair: 1 / (number of pairs of its mesh)."""
    def compute() -> Tensor:
        mesh_idx = _face_pairs(meshes).mesh_idx
        counts = torch.bincount(mesh_idx, minlength=len(meshes)).to(dtype)
        return 1.0 / counts.clamp(min=1)[mesh_idx]
    return meshes.topology.derived(("meshloss", "pair_weights", dtype), compute)


def _corners(meshes: Meshes) -> Tensor:
    """``(4 P,)`` long: edge_v0, edge_v1, opposite_a, opposite_b of every pair, concatenated."""
    def compute() -> Tensor:
        pairs = _face_pairs(meshes)
        return torch.cat([pairs.edge_v0, pairs.edge_v1, pairs.opposite_a, pairs.opposite_b])
    return meshes.topology.derived(("meshloss", "pair_corners"), compute)


def _cross(a: Tensor, b: Tensor) -> Tensor:
    """Cross products of (3, P) component planes -> (3, P)."""
    return torch.stack([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2],
                        a[0] * b[1] - a[1] * b[0]])


def _safe_norm(n: Tensor) -> Tensor:
    """(P,) lengths of (3, P) vectors, with a finite derivative (0) at n = 0."""
    sq = n.square().sum(0)
    nonzero = sq > 0
    return torch.where(nonzero, torch.where(nonzero, sq, 1.0).sqrt(), 0.0)


def _pair_terms(verts: Tensor, corners: Tensor, num_pairs: int) -> tuple[Tensor, ...]:
    """The (3, P) planes ``edge, side_a, side_b, n_a, n_b`` and the (P,) ``norm_a, norm_b,
    r_a, r_b, cos`` of every face pair (see :class:`_NormalConsistency`)."""
    corner = verts.t().index_select(1, corners).view(3, 4, num_pairs)
    v0 = corner[:, 0]
    edge, side_a, side_b = corner[:, 1] - v0, corner[:, 2] - v0, corner[:, 3] - v0
    n_a, n_b = _cross(edge, side_a), _cross(side_b, edge)
    norm_a, norm_b = _safe_norm(n_a), _safe_norm(n_b)
    r_a, r_b = norm_a.clamp(min=_EPS), norm_b.clamp(min=_EPS)
    cos = (n_a * n_b).sum(0) / (r_a * r_b)
    return edge, side_a, side_b, n_a, n_b, norm_a, norm_b, r_a, r_b, cos


class _NormalConsistency(torch.autograd.Function):
    """``sum_p weight_p (1 - cos(n_a, n_b))`` over face pairs, with a hand-written backward
    on (3, P) component planes (one gather of the four corners, one index_add back).

    The cosine is ``cosine_similarity``'s: ``n_a . n_b / (max(|n_a|, eps) max(|n_b|, eps))``,
    and so is its gradient, ``(n_b / r_b - cos n_a / |n_a|) / r_a`` for ``n_a`` (the second
    term 0 where ``n_a = 0``), ``r = max(|n|, eps)``. Under ``create_graph=True`` the
    backward recomputes its terms from ``verts`` with autograd, so higher orders are exact.
    """

    @staticmethod
    def forward(ctx, verts: Tensor, corners: Tensor, weights: Tensor) -> Tensor:  # type: ignore[override]
        terms = _pair_terms(verts, corners, weights.shape[0])
        ctx.save_for_backward(verts, corners, weights, *terms)
        return (weights * (1.0 - terms[-1])).sum()

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:  # type: ignore[override]
        verts, corners, weights, *terms = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: a differentiable backward
            terms = list(_pair_terms(verts, corners, weights.shape[0]))
        edge, side_a, side_b, n_a, n_b, norm_a, norm_b, r_a, r_b, cos = terms
        grad_cos = -grad * weights
        unit_a = n_a / torch.where(norm_a > 0, norm_a, 1.0)
        unit_b = n_b / torch.where(norm_b > 0, norm_b, 1.0)
        grad_a = (n_b / r_b - cos * unit_a) * (grad_cos / r_a)
        grad_b = (n_a / r_a - cos * unit_b) * (grad_cos / r_b)
        grad_edge = _cross(side_a, grad_a) + _cross(grad_b, side_b)
        grad_side_a = _cross(grad_a, edge)
        grad_side_b = _cross(edge, grad_b)
        grad_v0 = -(grad_edge + grad_side_a + grad_side_b)
        per_corner = torch.stack([grad_v0, grad_edge, grad_side_a, grad_side_b], dim=1)
        grad_verts = per_corner.new_zeros((3, verts.shape[0])).index_add_(
            1, corners, per_corner.view(3, -1))
        return grad_verts.t(), None, None


def mesh_normal_consistency(meshes: Meshes) -> Tensor:
    """Mean ``1 - cos`` of the angle between the normals of faces that share an edge.

    For an edge (v0, v1) shared by faces with opposite vertices a and b, the normals are
    ``n_a = (v1 - v0) x (a - v0)`` and ``n_b = -(v1 - v0) x (b - v0)`` (so that two coplanar
    faces on either side of the edge give ``cos = 1`` whatever their winding), and the term is
    ``1 - cos(n_a, n_b)``. Every pair of faces on an edge counts (non-manifold edges give
    several pairs). ``loss = (1 / N) sum_n mean_{pairs of mesh n}(term)`` (PyTorch3D's
    weighting).

    Args:
        meshes: a batch of N meshes.

    Returns:
        ``()`` float scalar, differentiable w.r.t. the vertices; 0 if no face shares an edge.

    Raises:
        TypeError: ``meshes`` is not a Meshes.

    Example:
        >>> from diffmesh.meshio import ico_sphere
        >>> loss = mesh_normal_consistency(ico_sphere(2))
    """
    if not isinstance(meshes, Meshes):
        raise TypeError(f"meshes must be a Meshes, got {type(meshes).__name__}")
    verts = meshes.verts_packed()
    if meshes.isempty():
        return verts.sum() * 0.0
    pairs = _face_pairs(meshes)
    if pairs.edge_v0.shape[0] == 0:
        return verts.sum() * 0.0
    weights = _pair_weights(meshes, verts.dtype) / len(meshes)
    return _NormalConsistency.apply(verts, _corners(meshes), weights)
