"""MTL material files: colours (Ka/Kd/Ks/Ns) and diffuse texture maps (map_Kd)."""

from __future__ import annotations

import math
import os
import stat
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

__all__ = ["MaterialWarning", "load_mtl", "load_texture_image"]

_COLOR_KEYS = {"Ka": "ambient_color", "Kd": "diffuse_color", "Ks": "specular_color"}
_FLOAT32_MAX = float(np.finfo(np.float32).max)


class MaterialWarning(UserWarning):
    """A material library or texture image named by an OBJ file is missing or unreadable.

    The geometry still loads; only the colours or textures concerned are left out.
    """


def _require_regular_file(path: str | os.PathLike[str], what: str) -> None:
    """Raise unless ``path`` is a regular file: opening a FIFO or a device would block or
    read forever.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is a FIFO, a device, a socket or a folder.
    """
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise ValueError(f"{os.fspath(path)}: {what} is not a regular file")


def load_texture_image(path: str | os.PathLike[str]) -> torch.Tensor:
    """Read an image file as a float RGB texture.

    Args:
        path: image file (any format pillow reads; alpha and palettes are dropped).

    Returns:
        (H, W, 3) float32 tensor in [0, 1], row 0 the top of the image.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the path is not a regular file (a FIFO, a device, a folder), the file is
            not an image pillow can read, or its declared size exceeds pillow's decompression
            bomb limit (twice ``PIL.Image.MAX_IMAGE_PIXELS``).
    """
    _require_regular_file(path, "the texture image")
    try:
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    except UnidentifiedImageError as err:
        raise ValueError(f"{os.fspath(path)}: not an image file pillow can read") from err
    except Image.DecompressionBombError as err:
        raise ValueError(f"{os.fspath(path)}: {err}") from err
    return torch.from_numpy(rgb / np.float32(255.0))


def _map_path(value: str, data_dir: Path) -> Path:
    """Resolve a ``map_Kd`` value: options (``-s 1 1 1 file``) are skipped, spaces allowed."""
    tokens = value.split()
    candidates = [" ".join(tokens[i:]) for i in range(len(tokens))]
    candidates += [c.replace("\\", "/") for c in candidates if "\\" in c]
    for candidate in candidates:
        if (data_dir / candidate).is_file():
            return data_dir / candidate
    return data_dir / value


def _parse_mtl(text: str, name: str) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, str]]:
    """Per-material colour arrays and map_Kd values, in file order (one pass over the lines)."""
    colors: dict[str, dict[str, np.ndarray]] = {}
    maps: dict[str, str] = {}
    current: str | None = None
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        key, rest = ([*line.split(None, 1), ""])[:2]
        rest = rest.strip()
        if key == "newmtl":
            current = rest
            colors.setdefault(current, {})
        elif current is None:
            continue  # properties before any newmtl belong to no material
        elif key in _COLOR_KEYS or key == "Ns":
            try:
                values = [float(v) for v in rest.split()]
            except ValueError:
                raise ValueError(f"{name}:{lineno}: {key} needs numbers, got {rest!r}") from None
            # Stored as float32: a value beyond its range would become inf.
            if not all(math.isfinite(v) and abs(v) <= _FLOAT32_MAX for v in values):
                raise ValueError(f"{name}:{lineno}: {key} needs finite float32 numbers, got "
                                 f"{rest!r}")
            if key == "Ns":
                if len(values) != 1:
                    raise ValueError(f"{name}:{lineno}: Ns needs 1 number, got {rest!r}")
                colors[current]["shininess"] = np.array(values, dtype=np.float32)
            else:
                if len(values) == 1:  # "Ka r" means r r r
                    values *= 3
                if len(values) != 3:
                    raise ValueError(f"{name}:{lineno}: {key} needs 3 numbers, got {rest!r}")
                colors[current][_COLOR_KEYS[key]] = np.array(values, dtype=np.float32)
        elif key == "map_Kd" and rest:
            maps[current] = rest
    return colors, maps


def load_mtl(
    f: str | os.PathLike[str],
    *,
    material_names: list[str] | None = None,
    device: str | torch.device = "cpu",
) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, torch.Tensor]]:
    """Load an MTL file's material colours and diffuse texture maps.

    Args:
        f: path of the ``.mtl`` file; ``map_Kd`` paths are relative to its folder.
        material_names: load texture images only for these materials (the ones an OBJ uses);
            None loads every material's image.
        device: where the returned tensors live.

    Returns:
        ``(material_colors, texture_images)``: ``material_colors[name]`` maps
        ``"ambient_color"``, ``"diffuse_color"``, ``"specular_color"`` to (3,) float32 and
        ``"shininess"`` to (1,) float32, for the keys the file sets; ``texture_images[name]``
        is an (H, W, 3) float32 image in [0, 1].

    Raises:
        FileNotFoundError: the MTL file does not exist.
        ValueError: a malformed colour line (non-numeric, non-finite or beyond float32's
            range, naming the file and line), non-UTF-8 text, or a path that is not a
            regular file.

    Warns:
        MaterialWarning: a texture image is missing, unreadable, not a regular file (a FIFO
            would block) or beyond pillow's decompression bomb limit (that material gets
            none).
    """
    path = Path(f)
    _require_regular_file(path, "the material library")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")  # a leading byte-order mark is not part of the text
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not an MTL text file (invalid UTF-8 at byte {err.start})") from err
    colors, maps = _parse_mtl(text, str(path))
    material_colors = {
        name: {key: torch.from_numpy(value).to(device) for key, value in props.items()}
        for name, props in colors.items()
    }
    texture_images: dict[str, torch.Tensor] = {}
    for name, value in maps.items():  # one entry per material, not per vertex
        if material_names is not None and name not in material_names:
            continue
        image_path = _map_path(value, path.parent)
        try:
            texture_images[name] = load_texture_image(image_path).to(device)
        except (OSError, ValueError) as err:
            warnings.warn(
                f"{path}: texture image {str(image_path)!r} of material {name!r} could not be "
                f"read ({err.__class__.__name__}: {err}); the material has no texture",
                MaterialWarning,
                stacklevel=2,
            )
    return material_colors, texture_images
