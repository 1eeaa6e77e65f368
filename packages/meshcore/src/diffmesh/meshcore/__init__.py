"""diffmesh.meshcore: the batched Meshes structure and its textures.

PyTorch3D-compatible names and semantics, pure PyTorch.
"""

from .meshes import Meshes
from .textures.base import TexturesBase
from .topology import EdgeData, Topology

__all__ = [
    "EdgeData",
    "Meshes",
    "TexturesBase",
    "Topology",
]
