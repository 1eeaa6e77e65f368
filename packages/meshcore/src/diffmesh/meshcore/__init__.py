"""diffmesh.meshcore: the batched Meshes structure and its textures.

PyTorch3D-compatible names and semantics, pure PyTorch.
"""

from .join import join_meshes_as_batch, join_meshes_as_scene
from .meshes import Meshes
from .textures import TexturesAtlas, TexturesBase, TexturesUV, TexturesVertex
from .topology import EdgeData, Topology

__all__ = [
    "EdgeData",
    "Meshes",
    "TexturesAtlas",
    "TexturesBase",
    "TexturesUV",
    "TexturesVertex",
    "Topology",
    "join_meshes_as_batch",
    "join_meshes_as_scene",
]
