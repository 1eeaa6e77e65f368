"""diffmesh.meshloss: surface sampling, nearest neighbours, chamfer distance, mesh regularizers.

PyTorch3D-compatible names and semantics, pure PyTorch.
"""

from .chamfer import chamfer_distance
from .edge_loss import mesh_edge_loss
from .knn import KNN, knn_gather, knn_points
from .laplacian import cot_laplacian, mesh_laplacian_smoothing
from .normal_consistency import mesh_normal_consistency
from .sample_points import sample_points_from_meshes

__all__ = [
    "KNN",
    "chamfer_distance",
    "cot_laplacian",
    "knn_gather",
    "knn_points",
    "mesh_edge_loss",
    "mesh_laplacian_smoothing",
    "mesh_normal_consistency",
    "sample_points_from_meshes",
]
