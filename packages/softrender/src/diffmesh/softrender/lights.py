"""Phong lights: ambient, directional and point lights (PyTorch3D's classes).

The lighting formulas live in ``lights_phong`` (``diffuse``, ``specular``); the
classes here hold the light parameters as ``(N, ...)`` buffers and feed them in.

Broadcasting: a light of batch B broadcasts against inputs ``(B, ..., 3)`` (its
parameters are viewed as ``(B, 1, ..., 1, 3)``); B = 1 broadcasts to anything; and
``lights[idx]`` with an index of length P gives per-point lights for ``(P, 3)`` inputs.
"""

from __future__ import annotations

import torch

from .cameras.batched import BatchedParams
from .lights_phong import (
    broadcast_inputs,
    check_vectors,
    diffuse,
    lambert,
    per_batch,
    phong,
    specular,
)

__all__ = ["AmbientLights", "DirectionalLights", "PointLights", "diffuse", "specular"]

_COLOR = (3,)


class _LightsBase(BatchedParams):
    """Colours shared by the Phong lights: ``(N, 3)`` buffers.

    Subclasses say where the light is: ``_light()`` gives the ``(N, 3)`` position
    (point light) or direction towards the light, ``_POINT`` which of the two.
    """

    ambient_color: torch.Tensor
    diffuse_color: torch.Tensor
    specular_color: torch.Tensor
    _POINT: bool
    _LIGHT_NAME: str

    def _light(self) -> torch.Tensor:
        raise NotImplementedError

    def _shape(self, normals: torch.Tensor, points: torch.Tensor | None) -> torch.Size:
        check_vectors("normals", normals)
        if points is None:
            return normals.shape
        check_vectors("points", points)
        return broadcast_inputs(normals=normals, points=points)

    def diffuse(self, normals: torch.Tensor, points: torch.Tensor | None = None) -> torch.Tensor:
        """``diffuse_color * max(n . l, 0)``, l the unit direction towards the light.

        Args:
            normals: ``(B, ..., 3)`` or ``(P, 3)`` float (renormalised).
            points: world positions of the same or a broadcastable shape; needed
                by point lights, unused by directional ones.

        Returns:
            ``(B, ..., 3)`` float.
        """
        if self._POINT and points is None:
            raise ValueError("points are needed for the diffuse term of a point light")
        shape = self._shape(normals, points if self._POINT else None)
        light = per_batch(self._LIGHT_NAME, self._light(), shape, 1)
        color = per_batch("diffuse_color", self.diffuse_color, shape, 1)
        return lambert(normals, light, color, points if self._POINT else None)

    def specular(
        self,
        normals: torch.Tensor,
        points: torch.Tensor,
        camera_position: torch.Tensor,
        shininess: float | torch.Tensor,
    ) -> torch.Tensor:
        """Phong specular term ``specular_color * max(v . r, 0) ** shininess``.

        Zero where the light is behind the surface (``n . l <= 0``).

        Args:
            normals: ``(B, ..., 3)`` or ``(P, 3)`` float (renormalised).
            points: world positions of the same or a broadcastable shape.
            camera_position: ``(B, 3)``, ``(3,)`` or the inputs' shape.
            shininess: a number, a ``(B,)`` tensor, or the inputs' shape without
                the last dim (e.g. ``(P,)`` from ``materials[idx].shininess``).

        Returns:
            ``(B, ..., 3)`` float.
        """
        shape = self._shape(normals, points)
        light = per_batch(self._LIGHT_NAME, self._light(), shape, 1)
        camera = per_batch("camera_position", camera_position, shape, 1)
        color = per_batch("specular_color", self.specular_color, shape, 1)
        if isinstance(shininess, torch.Tensor):
            shininess = per_batch("shininess", shininess, shape[:-1], 0)
        return phong(normals, light, points, camera, color, shininess, point_light=self._POINT)


class PointLights(_LightsBase):
    """Point lights at ``location`` (defaults as PyTorch3D's: grey, at (0, 1, 0)).

    Args:
        ambient_color, diffuse_color, specular_color: ``(N, 3)`` or ``(3,)`` RGB.
        location: ``(N, 3)`` or ``(3,)`` world positions.
        device: device for the parameters.
    """

    location: torch.Tensor
    _POINT = True
    _LIGHT_NAME = "location"

    def __init__(
        self,
        ambient_color: torch.Tensor | tuple = ((0.5, 0.5, 0.5),),
        diffuse_color: torch.Tensor | tuple = ((0.3, 0.3, 0.3),),
        specular_color: torch.Tensor | tuple = ((0.2, 0.2, 0.2),),
        location: torch.Tensor | tuple = ((0.0, 1.0, 0.0),),
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__()
        self._set_params(
            device,
            {
                "ambient_color": (ambient_color, _COLOR),
                "diffuse_color": (diffuse_color, _COLOR),
                "specular_color": (specular_color, _COLOR),
                "location": (location, (3,)),
            },
        )

    def _light(self) -> torch.Tensor:
        return self.location


class DirectionalLights(_LightsBase):
    """Lights at infinity shining from ``direction`` (the direction towards the light).

    Args:
        ambient_color, diffuse_color, specular_color: ``(N, 3)`` or ``(3,)`` RGB.
        direction: ``(N, 3)`` or ``(3,)`` direction towards the light (any length).
        device: device for the parameters.
    """

    direction: torch.Tensor
    _POINT = False
    _LIGHT_NAME = "direction"

    def __init__(
        self,
        ambient_color: torch.Tensor | tuple = ((0.5, 0.5, 0.5),),
        diffuse_color: torch.Tensor | tuple = ((0.3, 0.3, 0.3),),
        specular_color: torch.Tensor | tuple = ((0.2, 0.2, 0.2),),
        direction: torch.Tensor | tuple = ((0.0, 1.0, 0.0),),
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__()
        self._set_params(
            device,
            {
                "ambient_color": (ambient_color, _COLOR),
                "diffuse_color": (diffuse_color, _COLOR),
                "specular_color": (specular_color, _COLOR),
                "direction": (direction, (3,)),
            },
        )

    def _light(self) -> torch.Tensor:
        return self.direction


class AmbientLights(BatchedParams):
    """Light of the same colour everywhere: no diffuse or specular term.

    PyTorch3D's default is white, (1, 1, 1): lighting then leaves colours unchanged.

    Args:
        ambient_color: ``(N, C)`` or ``(C,)`` (C channels, 3 for RGB); None for white.
        device: device for the parameters.
    """

    ambient_color: torch.Tensor

    def __init__(
        self,
        ambient_color: torch.Tensor | tuple | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__()
        if ambient_color is None:
            ambient_color = ((1.0, 1.0, 1.0),)
        self._set_params(device, {"ambient_color": (ambient_color, (None,))})

    def _zeros(self, normals: torch.Tensor) -> torch.Tensor:
        check_vectors("normals", normals)
        return normals.new_zeros(*normals.shape[:-1], self.ambient_color.shape[-1])

    def diffuse(self, normals: torch.Tensor, points: torch.Tensor | None = None) -> torch.Tensor:
        """Zeros ``(..., C)`` shaped like ``normals``."""
        return self._zeros(normals)

    def specular(
        self,
        normals: torch.Tensor,
        points: torch.Tensor,
        camera_position: torch.Tensor,
        shininess: float | torch.Tensor,
    ) -> torch.Tensor:
        """Zeros ``(..., C)`` shaped like ``normals``."""
        return self._zeros(normals)
