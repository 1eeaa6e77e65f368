"""Phong lights: ambient, directional and point lights (PyTorch3D's formulas).

For unit normal n, unit direction to the light l and unit direction to the camera v:

- diffuse  = diffuse_color * max(n . l, 0)
- specular = specular_color * max(v . r, 0) ** shininess where n . l > 0, else 0,
  with r = 2 (n . l) n - l the reflected light direction.

Normals and directions are renormalised (eps 1e-6), so interpolated normals can be
passed as they are. Gradients stay finite everywhere, including zero normals,
points at the light and cosines of exactly 0.

Broadcasting: a light of batch B broadcasts against inputs ``(B, ..., 3)`` (its
parameters are viewed as ``(B, 1, ..., 1, 3)``); B = 1 broadcasts to anything; and
``lights[idx]`` with an index of length P gives per-point lights for ``(P, 3)`` inputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .cameras.batched import BatchedParams

__all__ = ["AmbientLights", "DirectionalLights", "PointLights", "diffuse", "specular"]

_COLOR = (3,)


def _check_input(name: str, tensor: torch.Tensor) -> None:
    if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point torch.Tensor, got {type(tensor).__name__}"
            + (f" of dtype {tensor.dtype}" if isinstance(tensor, torch.Tensor) else "")
        )
    if tensor.ndim < 1 or tensor.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (..., 3), got {tuple(tensor.shape)}")


def _per_batch(name: str, param: object, shape: torch.Size, trailing: int) -> torch.Tensor:
    """View a batched parameter ``(B, *t)`` so it broadcasts against ``shape``.

    ``shape`` is the input's full shape (including its last ``trailing`` dims, which
    the parameter supplies). A parameter already of the input's rank is used as is.
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
    if param.ndim < trailing + 1 or (trailing and param.shape[-1] != shape[-1]):
        raise ValueError(
            f"{name} must have shape {'(B, 3) or (3,)' if trailing else '(B,) or ()'} "
            f"or the inputs' shape {tuple(shape)}, got {tuple(param.shape)}"
        )
    lead = len(shape) - trailing
    if param.ndim == len(shape) and param.ndim > trailing:
        view = param
    elif lead == 0:
        if param.shape[0] != 1:
            raise ValueError(
                f"{name} has batch size {param.shape[0]}, which cannot broadcast against "
                f"unbatched inputs of shape {tuple(shape)}"
            )
        return param[0]
    else:
        view = param.reshape(param.shape[0], *([1] * (lead - 1)), *param.shape[1:])
    if view.shape[0] not in (1, shape[0]):
        raise ValueError(
            f"{name} has batch size {view.shape[0]} but the inputs have batch size {shape[0]} "
            f"(shape {tuple(shape)}); batch sizes must be equal or 1"
        )
    return view


def _broadcast_inputs(**tensors: torch.Tensor) -> torch.Size:
    try:
        return torch.broadcast_shapes(*(t.shape for t in tensors.values()))
    except RuntimeError:
        shapes = ", ".join(f"{n} {tuple(t.shape)}" for n, t in tensors.items())
        raise ValueError(f"input shapes do not broadcast: {shapes}") from None


def _power_of_two_exponent(shininess: float | torch.Tensor) -> int | None:
    """k if shininess is the same 2**k (0 <= k <= 30) everywhere and needs no grad."""
    if isinstance(shininess, torch.Tensor):
        if shininess.requires_grad or shininess.numel() == 0:
            return None
        detached = shininess.detach()
        if all(s == 0 for s in detached.stride()):
            # An expanded single value (e.g. gathered from a batch-1 Materials).
            flat = detached[(0,) * detached.ndim].reshape(1)
        else:
            flat = detached.reshape(-1)
        value = float(flat[0])
        if flat.numel() > 1 and not bool((flat == value).all()):
            return None
    elif isinstance(shininess, (int, float)) and not isinstance(shininess, bool):
        value = float(shininess)
    else:
        return None
    if value < 1 or value > 2**30 or not value.is_integer():
        return None
    k = int(value).bit_length() - 1
    return k if 2**k == int(value) else None


def _safe_pow(base: torch.Tensor, exponent: float | torch.Tensor) -> torch.Tensor:
    """``base ** exponent`` for base >= 0 with finite gradients at base = 0.

    A power of two is computed by repeated squaring (much cheaper than ``pow``).
    Otherwise ``pow`` runs on a base where the zeros are replaced by 1, and the
    zeros get ``0 ** e`` (1 for e = 0, else 0) through ``where``, so neither the
    base nor the exponent receive an infinite or NaN gradient.
    """
    k = _power_of_two_exponent(exponent)
    if k is not None:
        out = base
        for _ in range(k):
            out = out * out
        return out
    positive = base > 0
    result = torch.where(positive, base, torch.ones_like(base)) ** exponent
    at_zero = (torch.as_tensor(exponent, device=base.device) == 0).to(result.dtype)
    return torch.where(positive, result, at_zero)


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
    _check_input("normals", normals)
    color = _per_batch("color", color, normals.shape, 1)
    direction = _per_batch("direction", direction, normals.shape, 1)
    normals = F.normalize(normals, p=2, dim=-1, eps=1e-6)
    direction = F.normalize(direction, p=2, dim=-1, eps=1e-6)
    cos = torch.relu((normals * direction).sum(dim=-1, keepdim=True))
    return color * cos


def specular(
    points: torch.Tensor,
    normals: torch.Tensor,
    direction: torch.Tensor,
    camera_position: torch.Tensor,
    color: torch.Tensor,
    shininess: float | torch.Tensor,
) -> torch.Tensor:
    """Phong specular term (PyTorch3D's ``specular``).

    ``color * max(v . r, 0) ** shininess`` where ``n . l > 0`` and 0 elsewhere, with
    n, l, v the unit normal, light and view directions (v from the point to the
    camera) and ``r = 2 (n . l) n - l``.

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
    _check_input("points", points)
    _check_input("normals", normals)
    shape = _broadcast_inputs(points=points, normals=normals)
    direction = _per_batch("direction", direction, shape, 1)
    camera_position = _per_batch("camera_position", camera_position, shape, 1)
    color = _per_batch("color", color, shape, 1)
    if isinstance(shininess, torch.Tensor):
        shininess = _per_batch("shininess", shininess, shape[:-1], 0)[..., None]
    normals = F.normalize(normals, p=2, dim=-1, eps=1e-6)
    direction = F.normalize(direction, p=2, dim=-1, eps=1e-6)
    cos = (normals * direction).sum(dim=-1, keepdim=True)
    view = F.normalize(camera_position - points, p=2, dim=-1, eps=1e-6)
    reflect = 2 * cos * normals - direction
    alpha = torch.relu((view * reflect).sum(dim=-1, keepdim=True))
    alpha = torch.where(cos > 0, alpha, torch.zeros_like(alpha))
    return color * _safe_pow(alpha, shininess)


class _LightsBase(BatchedParams):
    """Colours shared by the Phong lights: ``(N, 3)`` buffers."""

    ambient_color: torch.Tensor
    diffuse_color: torch.Tensor
    specular_color: torch.Tensor

    def _specular_at(
        self,
        normals: torch.Tensor,
        points: torch.Tensor,
        camera_position: torch.Tensor,
        shininess: float | torch.Tensor,
        direction: torch.Tensor,
    ) -> torch.Tensor:
        return specular(
            points=points,
            normals=normals,
            direction=direction,
            camera_position=camera_position,
            color=self.specular_color,
            shininess=shininess,
        )


class PointLights(_LightsBase):
    """Point lights at ``location``.

    Args:
        ambient_color, diffuse_color, specular_color: ``(N, 3)`` or ``(3,)`` RGB.
        location: ``(N, 3)`` or ``(3,)`` world positions.
        device: device for the parameters.
    """

    location: torch.Tensor

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

    def _direction(self, points: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        return _per_batch("location", self.location, shape, 1) - points

    def diffuse(self, normals: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """``diffuse_color * max(n . l, 0)``, l towards ``location``.

        Args:
            normals: ``(B, ..., 3)`` or ``(P, 3)`` float.
            points: world positions, same or broadcastable shape.

        Returns:
            ``(B, ..., 3)`` float.
        """
        _check_input("normals", normals)
        _check_input("points", points)
        shape = _broadcast_inputs(normals=normals, points=points)
        return diffuse(normals, self.diffuse_color, self._direction(points, shape))

    def specular(
        self,
        normals: torch.Tensor,
        points: torch.Tensor,
        camera_position: torch.Tensor,
        shininess: float | torch.Tensor,
    ) -> torch.Tensor:
        """Phong specular term towards ``camera_position``.

        Args:
            normals: ``(B, ..., 3)`` or ``(P, 3)`` float.
            points: world positions, same or broadcastable shape.
            camera_position: ``(B, 3)``, ``(3,)`` or the inputs' shape.
            shininess: number, ``(B,)`` tensor or the inputs' shape without the 3.

        Returns:
            ``(B, ..., 3)`` float.
        """
        _check_input("normals", normals)
        _check_input("points", points)
        shape = _broadcast_inputs(normals=normals, points=points)
        direction = self._direction(points, shape)
        return self._specular_at(normals, points, camera_position, shininess, direction)


class DirectionalLights(_LightsBase):
    """Lights at infinity shining from ``direction`` (the direction towards the light).

    Args:
        ambient_color, diffuse_color, specular_color: ``(N, 3)`` or ``(3,)`` RGB.
        direction: ``(N, 3)`` or ``(3,)`` direction towards the light (any length).
        device: device for the parameters.
    """

    direction: torch.Tensor

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

    def diffuse(self, normals: torch.Tensor, points: torch.Tensor | None = None) -> torch.Tensor:
        """``diffuse_color * max(n . direction, 0)``; ``points`` is accepted and unused.

        Args:
            normals: ``(B, ..., 3)`` or ``(P, 3)`` float.
            points: ignored (kept so all lights share one call signature).

        Returns:
            ``(B, ..., 3)`` float.
        """
        return diffuse(normals, self.diffuse_color, self.direction)

    def specular(
        self,
        normals: torch.Tensor,
        points: torch.Tensor,
        camera_position: torch.Tensor,
        shininess: float | torch.Tensor,
    ) -> torch.Tensor:
        """Phong specular term towards ``camera_position`` (see ``PointLights``)."""
        return self._specular_at(normals, points, camera_position, shininess, self.direction)


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
        _check_input("normals", normals)
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
