"""diffmesh.meshloss: surface sampling, nearest neighbours, chamfer distance, mesh regularizers,
and the Large Steps parameterization (Laplacian-preconditioned vertex updates).

PyTorch3D-compatible names and semantics, pure PyTorch.
"""

from .adam_uniform import AdamUniform
from .chamfer import chamfer_distance
from .edge_loss import mesh_edge_loss
from .knn import KNN, knn_gather, knn_points
from .laplacian import cot_laplacian, mesh_laplacian_smoothing
from .largesteps import LargeStepsMatrix, from_differential, largesteps_matrix, to_differential
from .normal_consistency import mesh_normal_consistency
from .sample_points import sample_points_from_meshes

__all__ = [
    "KNN",
    "AdamUniform",
    "LargeStepsMatrix",
    "chamfer_distance",
    "cot_laplacian",
    "from_differential",
    "knn_gather",
    "knn_points",
    "largesteps_matrix",
    "mesh_edge_loss",
    "mesh_laplacian_smoothing",
    "mesh_normal_consistency",
    "sample_points_from_meshes",
    "to_differential",
]
