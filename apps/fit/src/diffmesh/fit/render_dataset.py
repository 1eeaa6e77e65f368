"""``fit render``: render a mesh from N views into RGBA PNGs plus ``cameras.json``."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from diffmesh.fit.cameras_io import CAMERAS_FILE, FORMAT, write_cameras_json
from diffmesh.fit.data import resolve_mesh_path
from diffmesh.fit.devices import resolve_device
from diffmesh.fit.outputs import prepare_out_dir
from diffmesh.fit.progress import Progress, announce
from diffmesh.fit.render_views import (
    TUTORIAL_LIGHT,
    load_normalized_mesh,
    render_targets,
    save_rgba_views,
    tutorial_cameras,
)
from diffmesh.fit.targets import portable_source

__all__ = ["RenderConfig", "RenderResult", "render_dataset"]


@dataclass(frozen=True)
class RenderConfig:
    """Settings of ``fit render``.

    Attributes:
        mesh: OBJ path or bundled name.
        out: output folder.
        views: number of views (the tutorial's spread of elevations and azimuths).
        image_size: side of the square images in pixels.
        dist: camera distance from the origin.
        normalize: centre the mesh and scale it to max |coordinate| = 1 first.
        device: ``auto``, ``cpu``, ``cuda[:N]`` or ``mps``.
        quiet: no progress bar.
    """

    mesh: str | Path = "cow"
    out: Path = Path("fit-out/render-cow")
    views: int = 20
    image_size: int = 128
    dist: float = 2.7
    normalize: bool = True
    device: str = "auto"
    quiet: bool = False

    def __post_init__(self) -> None:
        if self.views < 1:
            raise ValueError(f"views: expected a positive integer, got {self.views}")
        if self.image_size < 8:
            raise ValueError(f"image_size: expected at least 8 pixels, got {self.image_size}")
        if not (self.dist > 0 and math.isfinite(self.dist)):
            raise ValueError(f"dist: expected a positive finite distance, got {self.dist}")


@dataclass
class RenderResult:
    """What ``render_dataset`` wrote: the view names and every file (PNGs, cameras.json)."""

    names: list[str]
    files: list[Path] = field(default_factory=list)


def _views_written_before(out: Path) -> list[str]:
    """The images listed by a ``cameras.json`` that ``fit render`` wrote in ``out`` before
    (plain file names only; none if there is no such file or it is not ours)."""
    try:
        payload = json.loads((out / CAMERAS_FILE).read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        return []
    views = payload.get("views")
    names = [v.get("image") for v in views if isinstance(v, dict)] if isinstance(views, list) else []
    return [n for n in names if isinstance(n, str) and n == Path(n).name and n.endswith(".png")]


def render_dataset(config: RenderConfig) -> RenderResult:
    """Render ``config.mesh`` from ``config.views`` cameras and write the dataset.

    The PNGs are written first and ``cameras.json`` last, so a folder with a
    ``cameras.json`` is always complete. Rendering into a folder that holds an earlier
    dataset replaces it: the old ``cameras.json`` goes first, then the views it listed that
    the new one does not (other files are left alone).

    Args:
        config: the settings.

    Returns:
        The names and files written.
    """
    device = resolve_device(config.device)
    path = resolve_mesh_path(config.mesh, argument="MESH")
    mesh, center, scale = load_normalized_mesh(path, device, normalize=config.normalize)
    out = prepare_out_dir(config.out)
    cameras = tutorial_cameras(config.views, config.dist)
    width = len(str(config.views - 1))
    names = [f"view_{i:0{max(width, 3)}d}.png" for i in range(config.views)]
    stale = set(_views_written_before(out)) - set(names)
    (out / CAMERAS_FILE).unlink(missing_ok=True)  # until the new one is written: incomplete
    for name in stale:
        (out / name).unlink(missing_ok=True)
    chunk = 4
    files: list[Path] = []
    with Progress(config.views, f"fit render ({path.stem})", enabled=not config.quiet, refresh_every=1) as bar:
        announce(f"fit render: rendering {config.views} view{'s' if config.views > 1 else ''} of {path.name} "
                 f"at {config.image_size} px", enabled=not config.quiet and not bar.bar_shown)
        for start in range(0, config.views, chunk):
            stop = min(start + chunk, config.views)
            rgb, alpha = render_targets(mesh, cameras.subset(slice(start, stop)), config.image_size, light_location=TUTORIAL_LIGHT)
            files += save_rgba_views(out, rgb, alpha, names[start:stop])
            for i in range(start, stop):
                bar.update(i)
    elev = torch.linspace(0.0, 360.0, config.views).tolist()
    azim = torch.linspace(-180.0, 180.0, config.views).tolist()
    extras = {"source_mesh": portable_source(path, out)}
    if config.normalize:
        extras["normalization"] = {"center": center.tolist(), "scale": scale,
                                   "note": "image frame = (mesh - center) / scale"}
    files.append(write_cameras_json(
        out / CAMERAS_FILE, cameras, names, image_size=(config.image_size, config.image_size),
        light_location=TUTORIAL_LIGHT,
        view_extras=[{"dist": config.dist, "elev": e, "azim": a} for e, a in zip(elev, azim, strict=True)],
        extras=extras,
    ))
    return RenderResult(names=names, files=files)
