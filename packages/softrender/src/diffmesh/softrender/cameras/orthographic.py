"""Orthographic cameras from a focal length (scale) and principal point (SfM convention)."""

from __future__ import annotations

from .perspective import PinholeCameras

__all__ = ["OrthographicCameras"]


class OrthographicCameras(PinholeCameras):
    """Orthographic cameras: ``x_ndc = fx X + px``, ``y_ndc = fy Y + py``, ``z = Z`` (arguments
    as :class:`~diffmesh.softrender.cameras.perspective.PinholeCameras`; focal length in NDC
    units or pixels per world unit)."""

    def is_perspective(self) -> bool:
        return False
