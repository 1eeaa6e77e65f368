"""Edge-length regularizer."""

from __future__ import annotations

import torch
from diffmesh.meshcore import Meshes
from torch import Tensor

__all__ = ["mesh_edge_loss"]


def _edge_weights(meshes: Meshes, dtype: torch.dtype) -> Tensor:
    """``(E,)`` weight of each edge: 1 / (number of edges of its mesh)."""
    def compute() -> Tensor:
        counts = meshes.num_edges_per_mesh().to(dtype)
        return 1.0 / counts.clamp(min=1)[meshes.edges_packed_to_mesh_idx()]
    return meshes.topology.derived(("meshloss", "edge_weights", dtype), compute)


def mesh_edge_loss(meshes: Meshes, target_length: float = 0.0) -> Tensor:
    """Mean squared deviation of the edge lengths from ``target_length``, per mesh.

    ``loss = (1 / N) sum_n (1 / E_n) sum_{e in mesh n} (|v_a - v_b| - target_length)^2`` over
    the unique undirected edges (a, b) of each mesh (PyTorch3D's weighting: every mesh
    counts equally, empty meshes count as 0).

    Args:
        meshes: a batch of N meshes.
        target_length: the edge length aimed at (in vertex units).

    Returns:
        ``()`` float scalar, differentiable w.r.t. the vertices; 0 if the batch is empty.

    Raises:
        TypeError: ``meshes`` is not a Meshes or ``target_length`` not a real number.

    Example:
        >>> from diffmesh.meshio import ico_sphere
        >>> loss = mesh_edge_loss(ico_sphere(2))
    """
    if not isinstance(meshes, Meshes):
        raise TypeError(f"meshes must be a Meshes, got {type(meshes).__name__}")
    if isinstance(target_length, bool) or not isinstance(target_length, (int, float)):
        raise TypeError(f"target_length must be a float, got {type(target_length).__name__}")
    verts = meshes.verts_packed()
    if meshes.isempty():
        return verts.sum() * 0.0
    edges = meshes.edges_packed()
    diff = verts.index_select(0, edges[:, 0]) - verts.index_select(0, edges[:, 1])
    sq = (diff * diff).sum(1)
    if target_length == 0.0:
        per_edge = sq  # (|d| - 0)^2 = |d|^2, and no square root to differentiate at 0
    else:
        nonzero = sq > 0
        length = torch.where(nonzero, torch.where(nonzero, sq, 1.0).sqrt(), 0.0)
        per_edge = (length - target_length) ** 2
    return (per_edge * _edge_weights(meshes, verts.dtype)).sum() / len(meshes)
