"""``join_cameras_as_batch``: one camera batch from several (PyTorch3D's function)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .base import CamerasBase

__all__ = ["join_cameras_as_batch"]


def join_cameras_as_batch(cameras_list: Sequence[CamerasBase]) -> CamerasBase:
    """One camera of ``sum(len(c))`` from cameras of one class and device, with equal settings
    (``degrees``, ``in_ndc``) and the same optional parameters (``K``, ``image_size``);
    tensors keep their graph. TypeError for a non-camera, ValueError for any mismatch."""
    cameras_list = list(cameras_list)
    if not cameras_list:
        raise ValueError("cameras_list must hold at least one camera")
    first = cameras_list[0]
    for i, cameras in enumerate(cameras_list):
        if not isinstance(cameras, CamerasBase):
            raise TypeError(f"cameras_list[{i}] is a {type(cameras).__name__}, not a camera")
        if type(cameras) is not type(first):
            raise ValueError(
                f"cameras_list[{i}] is a {type(cameras).__name__} but cameras_list[0] is a "
                f"{type(first).__name__}; cameras of one class only can be joined"
            )
        if cameras.device != first.device:
            raise ValueError(
                f"cameras_list[{i}] is on {cameras.device} but cameras_list[0] is on {first.device}"
            )
        for field in cameras._STATIC_FIELDS:
            if getattr(cameras, field) != getattr(first, field):
                raise ValueError(
                    f"cameras_list[{i}] has {field.lstrip('_')}={getattr(cameras, field)} but "
                    f"cameras_list[0] has {getattr(first, field)}; it must be the same for all"
                )
    buffers: dict[str, torch.Tensor | None] = {}
    for name in first._param_names:
        values = [getattr(cameras, name) for cameras in cameras_list]
        present = [v is not None for v in values]
        if any(present) and not all(present):
            raise ValueError(
                f"{name} is given for cameras_list[{present.index(True)}] but not for "
                f"cameras_list[{present.index(False)}]; it must be given for all or none"
            )
        buffers[name] = torch.cat(values) if all(present) else None  # cat promotes the dtypes
    return first._new_like(buffers, sum(len(c) for c in cameras_list))
