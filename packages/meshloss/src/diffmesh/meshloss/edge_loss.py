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


def _endpoints(meshes: Meshes) -> Tensor:
    """``(2 E,)`` long: the first endpoints of all edges, then the second ones."""
    def compute() -> Tensor:
        edges = meshes.edges_packed()
        return torch.cat([edges[:, 0], edges[:, 1]])
    return meshes.topology.derived(("meshloss", "edge_endpoints"), compute)


def _edge_terms(verts: Tensor, endpoints: Tensor, weights: Tensor,
                target: float) -> tuple[Tensor, Tensor, Tensor]:
    """``(E,)`` weighted per-edge loss, ``(3, E)`` edge vectors ``v_a - v_b`` and ``(E,)``
    slope, ``d loss_e / d diff_e = slope_e * diff_e`` (0 at zero length when ``target > 0``)."""
    ends = verts.t().index_select(1, endpoints).view(3, 2, -1)
    diff = ends[:, 0] - ends[:, 1]  # (3, E)
    sq = diff.square().sum(0)
    if target == 0.0:
        return sq * weights, diff, 2.0 * weights
    nonzero = sq > 0
    length = torch.where(nonzero, torch.where(nonzero, sq, 1.0).sqrt(), 0.0)
    slope = torch.where(nonzero, 2.0 * weights * (length - target)
                        / torch.where(nonzero, length, 1.0), 0.0)
    return (length - target) ** 2 * weights, diff, slope


class _EdgeLoss(torch.autograd.Function):
    """``sum_e weight_e (|v_a - v_b| - target)^2`` on (3, E) component planes, with a
    hand-written backward (one index_add); zero-length edges get a zero gradient when
    ``target > 0`` (no square root is differentiated at 0). Under ``create_graph=True`` the
    backward recomputes its terms from ``verts`` with autograd, so higher orders are exact."""

    @staticmethod
    def forward(ctx, verts: Tensor, endpoints: Tensor, weights: Tensor,  # type: ignore[override]
                target: float) -> Tensor:
        per_edge, diff, slope = _edge_terms(verts, endpoints, weights, target)
        ctx.save_for_backward(verts, endpoints, weights, diff, slope)
        ctx.target = target
        return per_edge.sum()

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None, None]:  # type: ignore[override]
        verts, endpoints, weights, diff, slope = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: a differentiable backward
            _, diff, slope = _edge_terms(verts, endpoints, weights, ctx.target)
        g = diff * (slope * grad)
        grad_verts = g.new_zeros((3, verts.shape[0])).index_add_(1, endpoints, torch.cat([g, -g], 1))
        return grad_verts.t(), None, None, None


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
    weights = _edge_weights(meshes, verts.dtype) / len(meshes)
    return _EdgeLoss.apply(verts, _endpoints(meshes), weights, float(target_length))
