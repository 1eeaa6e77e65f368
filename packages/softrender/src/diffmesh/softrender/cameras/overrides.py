"""Per-call camera overrides for the renderer and rasterizer (PyTorch3D's ``renderer(meshes, R=R, T=T)``).

PyTorch3D writes such overrides into the camera object; here they give a new camera of the
same class for one call (the stored one is unchanged), so the rasterizer's projection and
the shader's camera position (specular light) both see them, and gradients reach them.
"""

from __future__ import annotations

from typing import Any

from .base import CAMERA_FIELDS, CamerasBase
from .batched import broadcast_batch

__all__ = ["CAMERA_FIELDS", "cameras_with_overrides"]


def cameras_with_overrides(cameras: Any, *, degrees: bool | None = None, **fields: Any) -> Any:
    """``cameras`` (N) with ``fields`` of :data:`CAMERA_FIELDS` (None: stored; one element's
    shape or (B, ...)) and ``degrees`` replaced for one call: itself if none, else a camera of
    its class and batch max(N, B) holding the overrides (differentiable). TypeError for a
    field the class lacks; ValueError for a bad shape or batch, or a projection parameter
    with a ``K``."""
    given = {name: value for name, value in fields.items() if value is not None}
    if not given and degrees is None:
        return cameras
    if not isinstance(cameras, CamerasBase):
        raise TypeError(
            f"cameras: per-call camera overrides need a CamerasBase, got {type(cameras).__name__}"
        )
    names = cameras._param_names
    unknown = sorted(name for name in given if name not in CAMERA_FIELDS or name not in names)
    if unknown or (degrees is not None and not hasattr(cameras, "degrees")):
        bad = ", ".join(unknown) if unknown else "degrees"
        raise TypeError(f"{type(cameras).__name__} has no parameter {bad} to override per call")
    buffers = {name: getattr(cameras, name) for name in names}
    buffers.update({name: cameras._override(name, value) for name, value in given.items()})
    projection = sorted(set(given) - {"R", "T", "K"})
    if buffers.get("K") is not None and projection:
        raise ValueError(
            f"{', '.join(projection)}: cannot override a projection parameter of cameras whose "
            "projection is a K matrix"
        )
    present = {name: tensor for name, tensor in buffers.items() if tensor is not None}
    buffers.update(zip(present, broadcast_batch(present), strict=True))
    out = cameras._new_like(buffers, len(buffers["R"]))
    if degrees is not None:
        out.degrees = bool(degrees)
    return out
