"""diffmesh.meshcore: the batched Meshes and Pointclouds structures, their textures, and
the structure ops around them.

PyTorch3D-compatible names and semantics, pure PyTorch. :mod:`diffmesh.meshcore.utils`
mirrors ``pytorch3d.structures.utils`` (its ``padded_to_packed`` takes ``split_size``);
the top-level ``packed_to_padded`` / ``padded_to_packed`` are ``pytorch3d.ops``' ones.
"""

from .join import join_meshes_as_batch, join_meshes_as_scene
from .meshes import Meshes
from .ops import (
    laplacian,
    mesh_face_areas_normals,
    norm_laplacian,
    packed_to_padded,
    padded_to_packed,
)
from .pointclouds import Pointclouds, join_pointclouds_as_batch
from .textures import TexturesAtlas, TexturesBase, TexturesUV, TexturesVertex
from .topology import EdgeData, Topology
from .utils import list_to_packed, list_to_padded, packed_to_list, padded_to_list

__all__ = [
    "EdgeData",
    "Meshes",
    "Pointclouds",
    "TexturesAtlas",
    "TexturesBase",
    "TexturesUV",
    "TexturesVertex",
    "Topology",
    "join_meshes_as_batch",
    "join_meshes_as_scene",
    "join_pointclouds_as_batch",
    "laplacian",
    "list_to_packed",
    "list_to_padded",
    "mesh_face_areas_normals",
    "norm_laplacian",
    "packed_to_list",
    "packed_to_padded",
    "padded_to_list",
    "padded_to_packed",
]
