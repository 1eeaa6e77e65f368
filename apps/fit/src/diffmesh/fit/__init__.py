"""diffmesh.fit: the ``fit`` app's pipelines, usable from Python.

>>> from diffmesh.fit import ShapeConfig, fit_shape
>>> result = fit_shape(ShapeConfig(iters=200, out=None, quiet=True))  # doctest: +SKIP
>>> result.metrics["chamfer"]  # doctest: +SKIP

The pipeline modules (which import torch and the four diffmesh libraries) load on first
use, so ``fit --help`` and ``fit --version`` stay quick.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "CameraSet",
    "ImagesConfig",
    "ImagesResult",
    "RenderConfig",
    "RenderResult",
    "ShapeConfig",
    "ShapeResult",
    "ThreadPolicy",
    "fit_images",
    "fit_shape",
    "keep_freed_memory",
    "load_image_dataset",
    "plot_losses",
    "read_cameras_json",
    "render_dataset",
    "save_gif",
    "write_cameras_json",
]

_HOME = {
    "CameraSet": "cameras_io",
    "read_cameras_json": "cameras_io",
    "write_cameras_json": "cameras_io",
    "ImagesConfig": "images",
    "ImagesResult": "images",
    "fit_images": "images",
    "RenderConfig": "render_dataset",
    "RenderResult": "render_dataset",
    "render_dataset": "render_dataset",
    "ShapeConfig": "shape",
    "ShapeResult": "shape",
    "fit_shape": "shape",
    "keep_freed_memory": "allocator",
    "ThreadPolicy": "threads",
    "load_image_dataset": "render_views",
    "plot_losses": "plot",
    "save_gif": "gif",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        value = getattr(importlib.import_module(f"diffmesh.fit.{_HOME[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'diffmesh.fit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
