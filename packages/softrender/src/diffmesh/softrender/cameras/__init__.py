"""Cameras: world -> view -> NDC -> screen, in PyTorch3D's conventions.

``X_view = X_world @ R + T`` (row vectors); view and NDC have +X left, +Y up,
+Z into the screen.
"""

from .base import CamerasBase, get_ndc_to_screen_transform, get_screen_to_ndc_transform
from .fov import FoVOrthographicCameras, FoVPerspectiveCameras
from .perspective import PerspectiveCameras

__all__ = [
    "CamerasBase",
    "FoVOrthographicCameras",
    "FoVPerspectiveCameras",
    "PerspectiveCameras",
    "get_ndc_to_screen_transform",
    "get_screen_to_ndc_transform",
]
