"""Per-call camera overrides for the renderer and rasterizer (PyTorch3D's ``renderer(meshes, R=R, T=T)``).

PyTorch3D writes such overrides into the camera object; here they give a new camera of the
same class for one call (the stored one is unchanged), so the rasterizer's projection and
the shader's camera position (specular light) both see them, and gradients reach them.
"""

from __future__ import annotations

from typing import Any

import torch

from .base import CamerasBase
from .perspective import _focal_length_n2

__all__ = ["CAMERA_FIELDS", "cameras_with_overrides"]

#: The camera parameters a call may override, with the shape of one batch element.
CAMERA_FIELDS: dict[str, tuple[int, ...]] = {
    "R": (3, 3), "T": (3,), "K": (4, 4), "znear": (), "zfar": (), "aspect_ratio": (), "fov": (), "min_x": (),
    "max_x": (), "min_y": (), "max_y": (), "scale_xyz": (3,), "focal_length": (2,), "principal_point": (2,),
}
_PROJECTION = frozenset(CAMERA_FIELDS) - {"R", "T", "K"}


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
    if "focal_length" in given:
        given["focal_length"] = _focal_length_n2(given["focal_length"], cameras.device)
    buffers = {name: getattr(cameras, name) for name in names}
    for name, value in given.items():
        buffers[name] = cameras._override(name, value, CAMERA_FIELDS[name])
    if buffers.get("K") is not None and _PROJECTION & set(given):
        raise ValueError(
            f"{', '.join(sorted(_PROJECTION & set(given)))}: cannot override a projection parameter "
            "of cameras whose projection is a K matrix"
        )
    present = {name: t for name, t in buffers.items() if t is not None}
    batch = max(len(t) for t in present.values())
    for name, tensor in present.items():
        if len(tensor) not in (1, batch):
            raise ValueError(
                f"{name}: batch size {len(tensor)} does not match the other camera parameters' {batch}"
            )
    floats = [t.dtype for t in present.values() if t.is_floating_point()]
    dtype = floats[0]
    for other in floats[1:]:
        dtype = torch.promote_types(dtype, other)
    for name, tensor in present.items():
        tensor = tensor.to(dtype) if tensor.is_floating_point() else tensor
        buffers[name] = tensor.expand(batch, *tensor.shape[1:])
    out = cameras._new_like(buffers, batch)
    if degrees is not None:
        out.degrees = bool(degrees)
    return out
