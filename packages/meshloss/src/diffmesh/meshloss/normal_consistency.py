"""Normal-consistency regularizer over pairs of faces that share an edge."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from diffmesh.meshcore import Meshes
from torch import Tensor

__all__ = ["mesh_normal_consistency"]


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
    v0 = verts.index_select(0, pairs.edge_v0)
    edge = verts.index_select(0, pairs.edge_v1) - v0
    n_a = torch.linalg.cross(edge, verts.index_select(0, pairs.opposite_a) - v0, dim=1)
    n_b = torch.linalg.cross(verts.index_select(0, pairs.opposite_b) - v0, edge, dim=1)
    loss = 1.0 - F.cosine_similarity(n_a, n_b, dim=1)
    return (loss * _pair_weights(meshes, verts.dtype)).sum() / len(meshes)
