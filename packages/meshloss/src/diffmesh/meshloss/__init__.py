"""diffmesh.meshloss: surface sampling, nearest neighbours, chamfer distance, mesh regularizers.

PyTorch3D-compatible names and semantics, pure PyTorch.
"""

from .chamfer import chamfer_distance
from .knn import KNN, knn_gather, knn_points

__all__ = [
    "KNN",
    "chamfer_distance",
    "knn_gather",
    "knn_points",
]
