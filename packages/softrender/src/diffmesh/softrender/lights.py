"""Phong lights: ambient, directional and point lights (PyTorch3D's classes).

The lighting formula lives in ``lighting`` (:func:`phong_terms`); the classes here hold
the light parameters as ``(N, ...)`` buffers, check the inputs and colour the terms.

Broadcasting: a light of batch B broadcasts against inputs ``(B, ..., 3)`` (its
parameters are viewed as ``(B, 1, ..., 1, 3)``); B = 1 broadcasts to anything; and
``lights[idx]`` with an index of length P gives per-point lights for ``(P, 3)`` inputs.
"""

from __future__ import annotations

import torch

from .cameras.batched import BatchedParams
from .lighting import phong_terms

__all__ = ["AmbientLights", "DirectionalLights", "PointLights", "diffuse", "specular"]

_COLOR = (3,)


def check_vectors(name: str, tensor: object) -> None:
    """TypeError/ValueError unless ``tensor`` is a floating ``(..., 3)`` tensor."""
    if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point torch.Tensor, got {type(tensor).__name__}"
            + (f" of dtype {tensor.dtype}" if isinstance(tensor, torch.Tensor) else "")
        )
    if tensor.ndim < 1 or tensor.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (..., 3), got {tuple(tensor.shape)}")


def per_batch(name: str, param: object, shape: torch.Size, trailing: int) -> torch.Tensor:
    """View a per-batch parameter ``(B, *t)`` so it broadcasts against ``shape``.

    ``shape`` is the inputs' full shape, whose last ``trailing`` dims the parameter
    supplies. ``(B, *t)`` becomes ``(B, 1, ..., 1, *t)``; an unbatched ``t``-shaped
    parameter counts as B = 1; a parameter of the inputs' rank is used as it is.

    Raises:
        TypeError: a non-numeric parameter.
        ValueError: a wrong trailing shape or a batch size other than 1 or the
            inputs' leading size.
    """
    if not isinstance(param, torch.Tensor):
        try:
            param = torch.as_tensor(param, dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(
                f"{name} must be a tensor or a sequence of numbers, got {type(param).__name__}"
            ) from None
    if param.dtype == torch.bool or param.is_complex():
        raise TypeError(f"{name} must be real-valued, got dtype {param.dtype}")
    if not param.is_floating_point():
        param = param.to(torch.float32)
    if param.ndim == trailing:
        param = param[None]
    if trailing and param.shape[-1] != shape[-1]:
        raise ValueError(
            f"{name} must have shape (B, 3), (3,) or the inputs' shape {tuple(shape)}, "
            f"got {tuple(param.shape)}"
        )
    lead = len(shape) - trailing
    if param.ndim == len(shape):
        view = param
    elif lead == 0:
        if param.shape[0] != 1:
            raise ValueError(
                f"{name} has batch size {param.shape[0]}, which cannot broadcast against "
                f"unbatched inputs of shape {tuple(shape)}"
            )
        return param[0]
    elif param.ndim == trailing + 1:
        view = param.reshape(param.shape[0], *([1] * (lead - 1)), *param.shape[1:])
    else:
        raise ValueError(
            f"{name} must have shape {'(B, 3) or (3,)' if trailing else '(B,) or ()'} "
            f"or the inputs' shape {tuple(shape)}, got {tuple(param.shape)}"
        )
    if view.shape[0] not in (1, shape[0]):
        raise ValueError(
            f"{name} has batch size {view.shape[0]} but the inputs have batch size {shape[0]} "
            f"(shape {tuple(shape)}); batch sizes must be equal or 1"
        )
    return view


def broadcast_inputs(**tensors: torch.Tensor) -> torch.Size:
    """The broadcast shape of ``tensors``; ValueError naming them if there is none."""
    try:
        return torch.broadcast_shapes(*(t.shape for t in tensors.values()))
    except RuntimeError:
        shapes = ", ".join(f"{n} {tuple(t.shape)}" for n, t in tensors.items())
        raise ValueError(f"input shapes do not broadcast: {shapes}") from None


def _full(shape: torch.Size, *tensors: torch.Tensor | None) -> list[torch.Tensor | None]:
    """Promote to one dtype and expand to ``shape`` (views; autograd sums back)."""
    present = [t for t in tensors if t is not None]
    dtype = present[0].dtype
    for t in present[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    return [None if t is None else t.to(dtype).expand(shape) for t in tensors]


def _colored_term(
    normals: torch.Tensor,
    light: torch.Tensor,
    points: torch.Tensor | None,
    camera: torch.Tensor | None,
    color: torch.Tensor,
    point_light: bool,
    shininess: float | torch.Tensor = 1.0,
) -> torch.Tensor:
    """``color *`` the diffuse term (``camera`` None) or the specular term: (..., 3), the
    inputs' broadcast shape; written by component planes."""
    named = {"normals": normals, "light": light, "color": color}
    named.update({k: v for k, v in (("points", points), ("camera", camera)) if v is not None})
    n, lt, p, cam, col = _full(broadcast_inputs(**named), normals, light, points, camera, color)
    diffuse, spec = phong_terms(n, lt, p, cam, point_light=point_light, shininess=shininess)  # type: ignore[arg-type]
    return _colored(col, diffuse if camera is None else spec)  # type: ignore[arg-type]


def _colored(color: torch.Tensor, term: torch.Tensor) -> torch.Tensor:
    """``color * term[..., None]`` (..., 3), written by component planes."""
    return torch.stack([term * c for c in color.unbind(-1)]).movedim(0, -1)


def diffuse(normals: torch.Tensor, color: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """Lambertian term ``color * max(cos(normals, direction), 0)``.

    Parameters of lower rank than ``normals`` are per-batch: ``(B, 3)`` or ``(3,)``
    is viewed as ``(B, 1, ..., 1, 3)`` (PyTorch3D's rule).

    Args:
        normals: ``(..., 3)`` float, any length (renormalised).
        color: ``(B, 3)``, ``(3,)`` or broadcastable against ``normals``.
        direction: direction towards the light, same shape rules as ``color``.

    Returns:
        The broadcast shape ``(..., 3)``.
    """
    check_vectors("normals", normals)
    color = per_batch("color", color, normals.shape, 1)
    direction = per_batch("direction", direction, normals.shape, 1)
    return _colored_term(normals, direction, None, None, color, False)


def specular(
    points: torch.Tensor,
    normals: torch.Tensor,
    direction: torch.Tensor,
    camera_position: torch.Tensor,
    color: torch.Tensor,
    shininess: float | torch.Tensor,
) -> torch.Tensor:
    """Phong specular term (PyTorch3D's ``specular``).

    ``color * max(v . r, 0) ** shininess`` where ``n . l > 0`` and ``0 ** shininess``
    elsewhere, with n, l, v the unit normal, light and view directions (v from the
    point to the camera) and ``r = 2 (n . l) n - l``.

    Parameters of lower rank than the inputs are per-batch, as in ``diffuse``.

    Args:
        points: ``(..., 3)`` float world positions.
        normals: ``(..., 3)`` float, broadcastable against ``points`` (renormalised).
        direction: direction towards the light: ``(B, 3)``, ``(3,)`` or broadcastable.
        camera_position: same shape rules as ``direction``.
        color: same shape rules as ``direction``.
        shininess: a number, ``(B,)``, or a tensor broadcastable against
            ``points.shape[:-1]``.

    Returns:
        The broadcast shape ``(..., 3)``.
    """
    check_vectors("points", points)
    check_vectors("normals", normals)
    shape = broadcast_inputs(points=points, normals=normals)
    direction = per_batch("direction", direction, shape, 1)
    camera_position = per_batch("camera_position", camera_position, shape, 1)
    color = per_batch("color", color, shape, 1)
    if isinstance(shininess, torch.Tensor):
        shininess = per_batch("shininess", shininess, shape[:-1], 0)
    return _colored_term(normals, direction, points, camera_position, color, False, shininess)


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
        return _colored_term(normals, light, points if self._POINT else None, None, color, self._POINT)

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
        return self.lighting(normals, points, camera_position, shininess)[1]

    def lighting(
        self,
        normals: torch.Tensor,
        points: torch.Tensor,
        camera_position: torch.Tensor,
        shininess: float | torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(:meth:`diffuse`, :meth:`specular`) at once (the shaders' call: one evaluation).

        Args and shapes as :meth:`specular`; returns two ``(B, ..., 3)`` float tensors.
        """
        shape = self._shape(normals, points)
        light = per_batch(self._LIGHT_NAME, self._light(), shape, 1)
        camera = per_batch("camera_position", camera_position, shape, 1)
        kd = per_batch("diffuse_color", self.diffuse_color, shape, 1)
        ks = per_batch("specular_color", self.specular_color, shape, 1)
        if isinstance(shininess, torch.Tensor):
            shininess = per_batch("shininess", shininess, shape[:-1], 0)
        full = broadcast_inputs(normals=normals, points=points, light=light, camera_position=camera, color=kd)
        n, lt, p, cam, kd, ks = _full(full, normals, light, points, camera, kd, ks)
        diffuse, spec = phong_terms(n, lt, p, cam, point_light=self._POINT, shininess=shininess)  # type: ignore[arg-type]
        return _colored(kd, diffuse), _colored(ks, spec)  # type: ignore[arg-type]


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

    def lighting(
        self,
        normals: torch.Tensor,
        points: torch.Tensor,
        camera_position: torch.Tensor,
        shininess: float | torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(diffuse, specular): zeros ``(..., C)`` shaped like ``normals``, twice."""
        zeros = self._zeros(normals)
        return zeros, zeros
