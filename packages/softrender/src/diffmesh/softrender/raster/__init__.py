"""The soft rasterizer: meshes to sparse (pixel, face) pairs, with a hand-written backward.

Modules, in the order a render runs through them: ``mesh_rasterizer`` (world -> NDC, then
``rasterize``), ``settings`` (the options), ``rasterize`` (the entry points), ``clip``
(faces crossing ``z_clip_value``), ``function`` (the autograd function and its backward),
``candidates`` (choosing the K nearest pairs, no autograd), ``grid`` (the per-candidate
arithmetic).
"""

from .mesh_rasterizer import MeshRasterizer
from .rasterize import rasterize_face_verts, rasterize_faces, rasterize_meshes
from .settings import RasterizationSettings, RasterOptions

__all__ = [
    "MeshRasterizer",
    "RasterOptions",
    "RasterizationSettings",
    "rasterize_face_verts",
    "rasterize_faces",
    "rasterize_meshes",
]
