"""Point clouds as plain tensors: PLY (no faces needed) and ``.xyz`` / ``.pts`` text."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from ._devices import as_device
from ._numbers import UTF8_BOM, float32_unrepresentable, number_lines
from ._source import PathOrFile, read_source, write_target
from ._tables import check_decimal_places, float_table, text_rows
from .ply_load import load_ply_data
from .ply_save import save_ply

__all__ = ["PointcloudData", "load_pointcloud", "save_pointcloud"]

_TEXT = (".xyz", ".pts", ".txt")
_FORMATS = (".ply", *_TEXT)


class PointcloudData(NamedTuple):
    """A point cloud read from a file.

    Attributes:
        points: (P, 3) float32 positions.
        normals: (P, 3) float32 normals, or None.
        colors: (P, 3) float32 colours in [0, 1], or None.
    """

    points: torch.Tensor
    normals: torch.Tensor | None
    colors: torch.Tensor | None


def _format(f: PathOrFile, format: str | None) -> str:
    if format is not None:
        fmt = format.lower() if format.startswith(".") else "." + format.lower()
    elif isinstance(f, (str, os.PathLike)) or isinstance(getattr(f, "name", None), str):
        fmt = Path(f if isinstance(f, (str, os.PathLike)) else f.name).suffix.lower()
    else:
        raise ValueError("format must be given ('ply', 'xyz' or 'pts') for a file without a name")
    if fmt not in _FORMATS:
        raise ValueError(f"format must be one of {', '.join(_FORMATS)}, got {fmt!r}")
    return fmt


def _read_text(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    start = len(UTF8_BOM) if data.startswith(UTF8_BOM) else 0
    lines = number_lines(data, start, name, comments=True, what="point cloud value")
    tokens, values = lines.tokens, lines.values
    if tokens.size >= 2 and tokens[0] == 1 and tokens[1] >= 3:  # PTS: a leading point count
        tokens, first, lineno = tokens[1:], lines.first[1:], lines.lineno[1:]
    else:
        first, lineno = lines.first, lines.lineno
    if tokens.size == 0:
        return np.zeros((0, 3), np.float32), None, None
    width = int(tokens[0])
    if (tokens != width).any():
        row = int(np.argmax(tokens != width))
        raise ValueError(
            f"{name}:{int(lineno[row])}: {int(tokens[row])} values where the first point line "
            f"has {width}"
        )
    if width not in (3, 4, 6, 7):
        raise ValueError(
            f"{name}:{int(lineno[0])}: point lines must hold x y z [nx ny nz] (3 or 6 values) "
            f"or x y z intensity [r g b] (4 or 7), got {width}"
        )
    table = values[first[0] :].reshape(-1, width)
    # the columns that become float32 tensors (the PTS intensity, column 3, is not read)
    read = {3: [0, 1, 2], 4: [0, 1, 2], 6: [0, 1, 2, 3, 4, 5], 7: [0, 1, 2, 4, 5, 6]}[width]
    bad = float32_unrepresentable(table[:, read]).any(axis=1)
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(
            f"{name}:{int(lineno[row])}: a point value is not finite in float32 "
            "(NaN, inf or beyond 3.4e38)"
        )
    normals = table[:, 3:6].astype(np.float32) if width == 6 else None
    colors = None
    if width == 7:
        rgb = table[:, 4:7]
        colors = (rgb / 255.0 if rgb.size and rgb.max() > 1.0 else rgb).astype(np.float32)
    return table[:, :3].astype(np.float32), normals, colors


def load_pointcloud(
    f: PathOrFile, *, format: str | None = None, device: str | torch.device = "cpu"
) -> PointcloudData:
    """Load a point cloud: a PLY file (its vertices; faces are ignored) or ``.xyz``/``.pts`` text.

    Text files hold one point per line: ``x y z``, ``x y z nx ny nz``, or (PTS)
    ``x y z intensity`` / ``x y z intensity r g b`` (r g b 0..255), every line with the same
    number of values; a leading line with only a point count (PTS), ``#`` comments and blank
    lines are skipped.

    Args:
        f: a path (str or os.PathLike) or an open file.
        format: ``"ply"``, ``"xyz"``, ``"pts"`` or ``"txt"``; None takes it from the file name.
        device: where the returned tensors live.

    Returns:
        A :class:`PointcloudData` ``(points, normals, colors)``.

    Raises:
        FileNotFoundError: the file does not exist.
        TypeError: ``f`` is neither a path nor a readable file.
        ValueError: an unknown format, or a malformed file (naming the file and line or
            element), including a value read as float32 that is NaN, inf or beyond float32's
            range (1e39 would otherwise load as inf). A UTF-8 byte-order mark is skipped.
    """
    device = as_device(device)
    fmt = _format(f, format)
    if fmt == ".ply":
        ply = load_ply_data(f, device=device)
        return PointcloudData(ply.verts, ply.verts_normals, ply.verts_colors)
    data, name = read_source(f)
    points, normals, colors = _read_text(data, name)

    def tensor(a: np.ndarray | None) -> torch.Tensor | None:
        return None if a is None else torch.from_numpy(np.ascontiguousarray(a)).to(device)

    return PointcloudData(tensor(points), tensor(normals), tensor(colors))


def save_pointcloud(
    f: PathOrFile,
    points: torch.Tensor,
    normals: torch.Tensor | None = None,
    colors: torch.Tensor | None = None,
    *,
    format: str | None = None,
    ascii: bool = False,
    decimal_places: int | None = None,
) -> None:
    """Save a point cloud as PLY (no face element) or ``.xyz``/``.pts`` text, atomically.

    Args:
        f: destination path, or an open file (then ``format`` may be needed).
        points: (P, 3) float positions.
        normals: (P, 3) float normals, or None.
        colors: (P, 3) float colours in [0, 1] (PLY only: ``uchar red green blue``), or None.
        format: ``"ply"``, ``"xyz"``, ``"pts"`` or ``"txt"``; None takes it from the file name.
        ascii: PLY only: ascii instead of binary little endian.
        decimal_places: digits after the decimal point in text; None writes 9 significant
            digits (float32 reads back exactly).

    Raises:
        TypeError: an argument of the wrong type.
        ValueError: wrong shapes, non-finite values, colours for a text format.
    """
    fmt = _format(f, format)
    if fmt == ".ply":
        save_ply(f, points, None, normals, ascii=ascii, decimal_places=decimal_places,
                 verts_colors=colors)  # fmt: skip
        return
    if colors is not None:
        raise ValueError(f"colors cannot be written to {fmt} text (x y z [nx ny nz]); use .ply")
    check_decimal_places(decimal_places)
    p = float_table(points, "points", 3).astype(np.float32)
    columns = [("xyz", "f4", p)]
    if normals is not None:
        n = float_table(normals, "normals", 3).astype(np.float32)
        if n.shape[0] != p.shape[0]:
            raise ValueError(
                f"normals must have one row per point ({p.shape[0]}), got {n.shape[0]}"
            )
        columns.append(("normal", "f4", n))
    fmt_number = "%.9g" if decimal_places is None else f"%.{decimal_places}f"
    write_target(f, b"".join(text_rows(columns, fmt_number)), text_ok=True)
