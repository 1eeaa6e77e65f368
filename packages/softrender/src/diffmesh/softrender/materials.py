"""Phong material properties: reflectances and shininess, batched like the lights."""

from __future__ import annotations

import torch

from .cameras.batched import BatchedParams

__all__ = ["Materials"]


class Materials(BatchedParams):
    """A batch of N Phong materials.

    The shaded colour is ``ambient_color * light ambient + diffuse_color * light
    diffuse + specular_color * light specular`` (times the texture colour for the
    first two in PyTorch3D's Phong shading). Indexing with a tensor of length P
    (``materials[idx]``) gives per-point materials, as for the lights.

    Args:
        ambient_color, diffuse_color, specular_color: ``(N, 3)`` or ``(3,)`` reflectances.
        shininess: scalar or ``(N,)`` Phong exponent (>= 0); stored as an ``(N,)`` float buffer.
        device: device for the parameters.

    Raises:
        ValueError: bad shapes, batch sizes that cannot broadcast, or a negative or
            non-finite shininess.
    """

    ambient_color: torch.Tensor
    diffuse_color: torch.Tensor
    specular_color: torch.Tensor
    shininess: torch.Tensor

    def __init__(
        self,
        ambient_color: torch.Tensor | tuple = ((1.0, 1.0, 1.0),),
        diffuse_color: torch.Tensor | tuple = ((1.0, 1.0, 1.0),),
        specular_color: torch.Tensor | tuple = ((1.0, 1.0, 1.0),),
        shininess: float | torch.Tensor = 64,
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__()
        self._set_params(
            device,
            {
                "ambient_color": (ambient_color, (3,)),
                "diffuse_color": (diffuse_color, (3,)),
                "specular_color": (specular_color, (3,)),
                "shininess": (shininess, ()),
            },
        )
        value = self.shininess.detach()
        if not bool(torch.isfinite(value).all()) or bool((value < 0).any()):
            raise ValueError(f"shininess must be finite and >= 0, got {value.cpu().tolist()}")
