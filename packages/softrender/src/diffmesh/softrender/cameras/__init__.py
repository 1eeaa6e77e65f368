"""Cameras: world -> view -> NDC -> screen, in PyTorch3D's conventions (see ``base``)."""

from .base import (
    CamerasBase,
    get_ndc_to_screen_transform,
    get_screen_to_ndc_transform,
    get_world_to_view_transform,
)
from .deprecated import (
    OpenGLOrthographicCameras,
    OpenGLPerspectiveCameras,
    SfMOrthographicCameras,
    SfMPerspectiveCameras,
)
from .fov import FoVOrthographicCameras, FoVPerspectiveCameras
from .join import join_cameras_as_batch
from .orthographic import OrthographicCameras
from .perspective import PerspectiveCameras

__all__ = [
    "CamerasBase", "FoVOrthographicCameras", "FoVPerspectiveCameras", "OpenGLOrthographicCameras",
    "OpenGLPerspectiveCameras", "OrthographicCameras", "PerspectiveCameras", "SfMOrthographicCameras",
    "SfMPerspectiveCameras", "get_ndc_to_screen_transform", "get_screen_to_ndc_transform",
    "get_world_to_view_transform", "join_cameras_as_batch",
]
