"""A set of per-view cameras, and the ``cameras.json`` file that describes one.

``cameras.json`` (what ``fit render`` writes and ``fit images --images`` reads)::

    {
      "format": "diffmesh-fit-cameras", "version": 1,
      "image_size": [128, 128],                 # [H, W], optional (checked against the PNGs)
      "light_location": [0.0, 0.0, -3.0],       # optional point light, world units
      "views": [
        {"image": "view_000.png", "R": [[...], [...], [...]], "T": [x, y, z], "fov": 60.0},
        {"image": "view_001.png", "dist": 2.7, "elev": 18.9, "azim": -161.1},
        {"image": "photo.png", "R": ..., "T": ..., "focal_length": [fx, fy],
         "principal_point": [px, py], "in_ndc": true}
      ]
    }

Each view gives its pose either as ``R`` (3x3, row-vector convention X_view = X R + T)
and ``T`` (3), or as ``dist``/``elev``/``azim`` (degrees, ``look_at_view_transform``);
``R``/``T`` win when both are present. A view with ``focal_length`` is a
``PerspectiveCameras`` (focal length and principal point in NDC units unless
``in_ndc`` is false, then in pixels); otherwise a ``FoVPerspectiveCameras`` with ``fov``
degrees (default 60). All views of one file must use the same kind of camera.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from diffmesh.fit.outputs import write_json
from diffmesh.softrender import FoVPerspectiveCameras, PerspectiveCameras, look_at_view_transform

__all__ = ["CAMERAS_FILE", "CameraSet", "read_cameras_json", "write_cameras_json"]

CAMERAS_FILE = "cameras.json"
FORMAT = "diffmesh-fit-cameras"


@dataclass(frozen=True)
class CameraSet:
    """V cameras of one kind, from which batches of views are rendered.

    Attributes:
        kind: ``"fov_perspective"`` or ``"perspective"``.
        R: ``(V, 3, 3)`` float rotations.
        T: ``(V, 3)`` float translations.
        fov: ``(V,)`` float field of view in degrees (fov_perspective).
        focal_length: ``(V, 2)`` float (perspective).
        principal_point: ``(V, 2)`` float (perspective).
        in_ndc: whether focal length / principal point are in NDC units (perspective).
        image_size: ``(H, W)`` in pixels, used by screen-space perspective cameras.
    """

    kind: str
    R: torch.Tensor
    T: torch.Tensor
    fov: torch.Tensor | None = None
    focal_length: torch.Tensor | None = None
    principal_point: torch.Tensor | None = None
    in_ndc: bool = True
    image_size: tuple[int, int] | None = None

    def __len__(self) -> int:
        return int(self.R.shape[0])

    @staticmethod
    def look_at(
        dist: float, elev: torch.Tensor, azim: torch.Tensor, *, fov: float = 60.0
    ) -> CameraSet:
        """FoV perspective cameras looking at the origin from (dist, elev, azim) in degrees."""
        R, T = look_at_view_transform(dist=dist, elev=elev, azim=azim)
        return CameraSet("fov_perspective", R.float(), T.float(), fov=torch.full((R.shape[0],), float(fov)))

    def subset(self, index: torch.Tensor | Sequence[int] | slice) -> CameraSet:
        """The cameras of some views, as a new CameraSet."""
        if not isinstance(index, slice):
            index = torch.as_tensor(index, dtype=torch.long).cpu()

        def pick(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t[index]

        return replace(
            self, R=self.R[index], T=self.T[index], fov=pick(self.fov),
            focal_length=pick(self.focal_length), principal_point=pick(self.principal_point),
        )

    def cameras(self, index: torch.Tensor | Sequence[int] | None = None, device: torch.device | str = "cpu"):
        """Build a softrender camera batch for some views (all when ``index`` is None).

        Args:
            index: ``(B,)`` long view indices, or None for every view.
            device: device of the cameras.

        Returns:
            A ``FoVPerspectiveCameras`` or ``PerspectiveCameras`` of batch size B.
        """
        idx = torch.arange(len(self)) if index is None else torch.as_tensor(index, dtype=torch.long).cpu()
        R, T = self.R[idx].to(device), self.T[idx].to(device)
        if self.kind == "fov_perspective":
            assert self.fov is not None  # set by every constructor of this kind
            return FoVPerspectiveCameras(device=device, R=R, T=T, fov=self.fov[idx].to(device))
        assert self.focal_length is not None and self.principal_point is not None
        kwargs: dict[str, Any] = {}
        if not self.in_ndc:
            if self.image_size is None:
                raise ValueError("cameras.json: in_ndc false needs the image size")
            kwargs = {"in_ndc": False, "image_size": [list(self.image_size)] * int(idx.numel())}
        return PerspectiveCameras(
            device=device,
            R=R,
            T=T,
            focal_length=self.focal_length[idx].to(device),
            principal_point=self.principal_point[idx].to(device),
            **kwargs,
        )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _nested_shape(value: Any) -> tuple[int, ...] | None:
    """The shape of a number or of nested equal-length lists of numbers; None otherwise
    (strings, booleans, null, objects, ragged lists)."""
    if _is_number(value):
        return ()
    if not isinstance(value, list) or not value:
        return None
    shapes = {_nested_shape(v) for v in value}
    if len(shapes) != 1 or None in shapes:
        return None
    (inner,) = shapes
    return (len(value), *inner)  # type: ignore[misc]


def _floats(value: Any, shape: tuple[int, ...], what: str) -> torch.Tensor:
    """``value`` as a float64 tensor of ``shape``: JSON numbers only (no booleans, strings or
    null), all finite; a single number is accepted for a shape ``(2,)`` (both entries)."""
    found = _nested_shape(value)
    if found == () and shape == (2,):
        value, found = [value, value], (2,)
    if found != shape:
        raise ValueError(f"{what}: expected {_describe(shape)}, got {_show(value)}")
    t = torch.tensor(value, dtype=torch.float64)
    if not torch.isfinite(t).all():
        raise ValueError(f"{what}: expected finite numbers, got {_show(value)}")
    return t


def _describe(shape: tuple[int, ...]) -> str:
    if shape == ():
        return "a number"
    return "a list of " + " x ".join(map(str, shape)) + " numbers"


def _show(value: Any) -> str:
    text = json.dumps(value, allow_nan=True) if not isinstance(value, torch.Tensor) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_header(payload: dict[str, Any], path: Path) -> None:
    """``format`` and ``version``, when present, must be this format's (version 1)."""
    if "format" in payload and payload["format"] != FORMAT:
        raise ValueError(f"{path}: format: expected {FORMAT!r}, got {_show(payload['format'])}")
    if "version" in payload and (not isinstance(payload["version"], int) or isinstance(payload["version"], bool)
                                 or payload["version"] != 1):
        raise ValueError(f"{path}: version: expected 1 (the only version there is), got {_show(payload['version'])}")


def _check_extras(extras: dict[str, Any], path: Path) -> dict[str, Any]:
    """Validate the optional top-level fields read later (light, normalization); returns
    them with their numbers as floats."""
    out = dict(extras)
    if "light_location" in extras:
        out["light_location"] = _floats(extras["light_location"], (3,), f"{path}: light_location").tolist()
    if "normalization" in extras:
        norm = extras["normalization"]
        where = f"{path}: normalization"
        if not isinstance(norm, dict) or "center" not in norm or "scale" not in norm:
            raise ValueError(f"{where}: expected {{'center': [x, y, z], 'scale': s > 0}}, got {_show(norm)}")
        center = _floats(norm["center"], (3,), f"{where}.center")
        scale = float(_floats(norm["scale"], (), f"{where}.scale"))
        if not scale > 0:
            raise ValueError(f"{where}.scale: expected a positive number, got {_show(norm['scale'])}")
        out["normalization"] = {**norm, "center": center.tolist(), "scale": scale}
    return out


def read_cameras_json(path: str | Path) -> tuple[CameraSet, list[str], dict[str, Any]]:
    """Read a ``cameras.json``.

    Args:
        path: the file.

    Returns:
        ``(cameras, image_names, extras)``: the cameras in file order, the image file names
        of the views, and the top-level fields other than ``views`` (``image_size``,
        ``light_location``, ...).

    Every field is checked up front, with the file, view and field in the message: numbers
    must be JSON numbers (not strings or booleans) and finite, ``in_ndc`` a boolean,
    ``format``/``version`` (optional) this format's, ``light_location`` three numbers,
    ``normalization`` a centre of three numbers and a positive scale.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not JSON, or a field missing or malformed (the view and field are named).
    """
    path = Path(path)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("views"), list) or not payload["views"]:
        raise ValueError(f"{path}: expected an object with a non-empty 'views' list")
    _check_header(payload, path)
    names: list[str] = []
    Rs, Ts, fovs, focals, pps, kinds, in_ndcs = [], [], [], [], [], set(), set()
    for i, view in enumerate(payload["views"]):
        where = f"{path}: views[{i}]"
        if not isinstance(view, dict):
            raise ValueError(f"{where}: expected an object, got {type(view).__name__}")
        name = view.get("image")
        if not isinstance(name, str) or not name or Path(name).name != name:
            raise ValueError(f"{where}.image: expected a file name in the folder, got {name!r}")
        names.append(name)
        if "R" in view or "T" in view:
            if "R" not in view or "T" not in view:
                raise ValueError(f"{where}: 'R' and 'T' must be given together")
            R = _floats(view["R"], (3, 3), f"{where}.R")
            T = _floats(view["T"], (3,), f"{where}.T")
            if not torch.allclose(R @ R.T, torch.eye(3, dtype=R.dtype), atol=1e-4):
                raise ValueError(f"{where}.R: expected a rotation matrix (R R^T = I)")
        elif all(k in view for k in ("dist", "elev", "azim")):
            d, e, a = (_floats(view[k], (), f"{where}.{k}") for k in ("dist", "elev", "azim"))
            R, T = look_at_view_transform(dist=float(d), elev=float(e), azim=float(a))
            R, T = R[0].double(), T[0].double()
        else:
            raise ValueError(f"{where}: expected 'R' and 'T', or 'dist', 'elev' and 'azim'")
        Rs.append(R)
        Ts.append(T)
        if "focal_length" in view:
            kinds.add("perspective")
            focals.append(_floats(view["focal_length"], (2,), f"{where}.focal_length"))
            pps.append(_floats(view.get("principal_point", [0.0, 0.0]), (2,), f"{where}.principal_point"))
            in_ndc = view.get("in_ndc", True)
            if not isinstance(in_ndc, bool):
                raise ValueError(f"{where}.in_ndc: expected true or false, got {_show(in_ndc)}")
            in_ndcs.add(in_ndc)
        else:
            kinds.add("fov_perspective")
            fov = _floats(view.get("fov", 60.0), (), f"{where}.fov")
            if not 0 < float(fov) < 180:
                raise ValueError(f"{where}.fov: expected degrees in (0, 180), got {float(fov)}")
            fovs.append(fov)
    if len(kinds) > 1:
        raise ValueError(f"{path}: all views must use the same kind of camera (got fov and focal_length views)")
    if len(in_ndcs) > 1:
        raise ValueError(f"{path}: all perspective views must agree on in_ndc")
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: an image is listed twice")
    extras = _check_extras({k: v for k, v in payload.items() if k != "views"}, path)
    image_size = extras.get("image_size")
    size = None
    if image_size is not None:
        if not (isinstance(image_size, list) and len(image_size) == 2
                and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in image_size)):
            raise ValueError(f"{path}: image_size: expected [H, W] positive integers, got {image_size!r}")
        size = (image_size[0], image_size[1])
    kind = kinds.pop()
    R, T = torch.stack(Rs).float(), torch.stack(Ts).float()
    if kind == "fov_perspective":
        cams = CameraSet(kind, R, T, fov=torch.stack(fovs).float(), image_size=size)
    else:
        cams = CameraSet(
            kind, R, T, focal_length=torch.stack(focals).float(),
            principal_point=torch.stack(pps).float(), in_ndc=in_ndcs.pop(), image_size=size,
        )
    return cams, names, extras


def write_cameras_json(
    path: str | Path,
    cameras: CameraSet,
    image_names: Sequence[str],
    *,
    image_size: tuple[int, int],
    light_location: Sequence[float] | None = None,
    view_extras: Sequence[dict[str, Any]] | None = None,
    extras: dict[str, Any] | None = None,
) -> Path:
    """Write ``cameras.json`` for a folder of images (atomically).

    Args:
        path: destination file.
        cameras: V cameras.
        image_names: V file names, in view order.
        image_size: ``(H, W)`` of the images.
        light_location: the point light used, if any.
        view_extras: per-view fields to add (e.g. ``dist``, ``elev``, ``azim``).
        extras: top-level fields to add.

    Returns:
        ``path`` as a Path.
    """
    if len(image_names) != len(cameras):
        raise ValueError(f"image_names: expected {len(cameras)} names, got {len(image_names)}")
    views = []
    for i, name in enumerate(image_names):
        view: dict[str, Any] = {"image": name, "R": cameras.R[i].tolist(), "T": cameras.T[i].tolist()}
        if cameras.kind == "fov_perspective":
            assert cameras.fov is not None
            view["fov"] = float(cameras.fov[i])
        else:
            assert cameras.focal_length is not None and cameras.principal_point is not None
            view["focal_length"] = cameras.focal_length[i].tolist()
            view["principal_point"] = cameras.principal_point[i].tolist()
            view["in_ndc"] = cameras.in_ndc
        if view_extras is not None:
            view.update({k: (round(v, 6) if isinstance(v, float) and math.isfinite(v) else v)
                         for k, v in view_extras[i].items()})
        views.append(view)
    payload: dict[str, Any] = {"format": FORMAT, "version": 1, "image_size": list(image_size)}
    if light_location is not None:
        payload["light_location"] = [float(x) for x in light_location]
    payload.update(extras or {})
    payload["views"] = views
    return write_json(path, payload)
