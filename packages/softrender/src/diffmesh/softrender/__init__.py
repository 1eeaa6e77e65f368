"""diffmesh.softrender: a differentiable soft rasterizer, cameras, lights and shaders.

PyTorch3D's rendering API (names, signatures, defaults, conventions) in pure PyTorch. The
rasterizer works on sparse (pixel, face) pairs with a hand-written backward; shaders and
blending use the pairs directly, so a soft render never builds dense (N, H, W, K) tensors.
"""

import sys

from .blending import BlendParams, hard_rgb_blend, sigmoid_alpha_blend, softmax_rgb_blend
from .cameras import (
    CamerasBase,
    FoVOrthographicCameras,
    FoVPerspectiveCameras,
    OpenGLOrthographicCameras,
    OpenGLPerspectiveCameras,
    OrthographicCameras,
    PerspectiveCameras,
    SfMOrthographicCameras,
    SfMPerspectiveCameras,
    get_world_to_view_transform,
    join_cameras_as_batch,
)
from .fragments import Fragments, interpolate_face_attributes
from .lighting import AmbientLights, DirectionalLights, PointLights
from .look_at import camera_position_from_spherical_angles, look_at_rotation, look_at_view_transform
from .materials import Materials
from .raster import MeshRasterizer, RasterizationSettings, rasterize_meshes
from .renderer import MeshRenderer, MeshRendererWithFragments
from .shaders import (
    HardFlatShader,
    HardGouraudShader,
    HardPhongShader,
    SoftGouraudShader,
    SoftPhongShader,
    SoftSilhouetteShader,
    flat_shading,
    gouraud_shading,
    phong_shading,
)
from .shaders_depth import HardDepthShader, SoftDepthShader
from .transforms import Transform3d

# Compatibility only: module paths of 0.1 and 0.2.0 that were merged into others stay importable
# as the same module objects (so imports and monkeypatching keep working). Nothing else uses them.
_COMPAT = {
    "_autograd": "fragments", "interpolate": "fragments", "lights": "lighting", "lights_phong": "lighting",
    "shading": "shaders", "_phong_pairs": "shaders", "_clip": "raster.clip",
    "_raster_function": "raster.function", "_raster_pairs": "raster.kernel",
    "_raster_eval": "raster.function", "raster.candidates": "raster.kernel", "raster.grid": "raster.kernel",
    "rasterize_meshes": "raster.rasterizer", "settings": "raster.rasterizer",
    "mesh_rasterizer": "raster.rasterizer", "raster.rasterize": "raster.rasterizer",
    "raster.settings": "raster.rasterizer", "raster.mesh_rasterizer": "raster.rasterizer",
}
for _old, _new in _COMPAT.items():
    sys.modules[f"{__name__}.{_old}"] = sys.modules[f"{__name__}.{_new}"]

__all__ = [
    "AmbientLights", "BlendParams", "CamerasBase", "DirectionalLights", "FoVOrthographicCameras",
    "FoVPerspectiveCameras", "Fragments", "HardDepthShader", "HardFlatShader", "HardGouraudShader",
    "HardPhongShader", "Materials", "MeshRasterizer", "MeshRenderer", "MeshRendererWithFragments",
    "OpenGLOrthographicCameras", "OpenGLPerspectiveCameras", "OrthographicCameras",
    "PerspectiveCameras", "PointLights", "RasterizationSettings", "SfMOrthographicCameras",
    "SfMPerspectiveCameras", "SoftDepthShader", "SoftGouraudShader", "SoftPhongShader",
    "SoftSilhouetteShader", "Transform3d", "camera_position_from_spherical_angles", "flat_shading",
    "get_world_to_view_transform", "gouraud_shading", "hard_rgb_blend", "interpolate_face_attributes",
    "join_cameras_as_batch", "look_at_rotation", "look_at_view_transform", "phong_shading",
    "rasterize_meshes", "sigmoid_alpha_blend", "softmax_rgb_blend",
]
