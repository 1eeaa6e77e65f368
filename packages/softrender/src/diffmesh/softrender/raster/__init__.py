"""The soft rasterizer: meshes to sparse (pixel, face) pairs, with a hand-written backward.

In the order a render runs through them: ``rasterizer`` (``MeshRasterizer``, the options,
the entry points), ``function`` (the autograd function and its backward), ``kernel`` (the
candidate grids and the K nearest pairs, no autograd); ``clip`` for ``z_clip_value``.
"""

from .rasterizer import (
    MeshRasterizer,
    RasterizationSettings,
    RasterOptions,
    rasterize_face_verts,
    rasterize_faces,
    rasterize_meshes,
)

__all__ = [
    "MeshRasterizer", "RasterOptions", "RasterizationSettings", "rasterize_face_verts",
    "rasterize_faces", "rasterize_meshes",
]
