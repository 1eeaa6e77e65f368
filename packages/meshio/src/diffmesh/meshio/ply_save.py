"""Saving PLY files (ascii or binary little endian), atomically, with normals, colours, extras."""

from __future__ import annotations

import numpy as np
import torch

from ._ply_header import type_name
from ._source import PathOrFile, write_target
from ._tables import check_decimal_places, float_table, index_table, text_rows

__all__ = ["save_ply"]

# torch dtypes of extra properties -> numpy dtype codes written (int64 must fit int32).
_EXTRA_CODES = {
    torch.uint8: "u1", torch.int8: "i1", torch.int16: "i2", torch.int32: "i4",
    torch.int64: "i4", torch.bool: "u1", torch.float16: "f4", torch.bfloat16: "f4",
    torch.float32: "f4", torch.float64: "f8",
}  # fmt: skip


def _extras(
    props: dict[str, torch.Tensor] | None, arg: str, rows: int, taken: set[str]
) -> list[tuple[str, str, np.ndarray]]:
    """Validated ``(name, dtype code, (rows,) values)`` of extra scalar properties."""
    if props is None:
        return []
    if not isinstance(props, dict):
        raise TypeError(f"{arg} must be a dict of name -> tensor, got {type(props).__name__}")
    out = []
    for key, value in props.items():  # one iteration per extra property
        if (
            not isinstance(key, str)
            or not key
            or any(c.isspace() for c in key)
            or not key.isascii()
        ):
            raise ValueError(f"{arg} keys must be ASCII names without blanks, got {key!r}")
        if key in taken:
            raise ValueError(f"{arg}[{key!r}] clashes with a property save_ply writes itself")
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{arg}[{key!r}] must be a torch.Tensor, got {type(value).__name__}")
        if value.dtype not in _EXTRA_CODES:
            raise TypeError(f"{arg}[{key!r}] has unsupported dtype {value.dtype}")
        if value.shape != (rows,):
            raise ValueError(f"{arg}[{key!r}] must have shape ({rows},), got {tuple(value.shape)}")
        code = _EXTRA_CODES[value.dtype]
        array = value.detach().cpu()
        if value.dtype in (torch.float16, torch.bfloat16):
            array = array.float()
        array = array.numpy()
        if value.dtype == torch.int64 and array.size:
            info = np.iinfo(np.int32)
            if array.min() < info.min or array.max() > info.max:
                raise ValueError(f"{arg}[{key!r}]: int64 values must fit a PLY int (int32)")
        out.append((key, code, array.astype(code)))
        taken.add(key)
    return out


def _colors(verts_colors: torch.Tensor, rows: int, as_uint8: bool) -> np.ndarray:
    colors = float_table(verts_colors, "verts_colors", 3)
    if colors.shape[0] != rows:
        raise ValueError(
            f"verts_colors must have one row per vertex ({rows}), got {colors.shape[0]}"
        )
    if as_uint8:
        return np.rint(np.clip(colors, 0.0, 1.0) * 255.0).astype(np.uint8)
    return colors.astype(np.float32)


def _header(
    vertex: list[tuple[str, str]], num_verts: int, face: list[tuple[str, str]] | None,
    num_faces: int, ascii: bool,
) -> bytes:  # fmt: skip
    lines = ["ply", f"format {'ascii' if ascii else 'binary_little_endian'} 1.0",
             "comment written by diffmesh", f"element vertex {num_verts}"]  # fmt: skip
    lines += [f"property {type_name(code)} {key}" for key, code in vertex]
    if face is not None:
        lines += [f"element face {num_faces}", "property list uchar int vertex_indices"]
        lines += [f"property {type_name(code)} {key}" for key, code in face]
    lines.append("end_header\n")
    return "\n".join(lines).encode("ascii")


def _binary(columns: list[tuple[str, str, np.ndarray]], rows: int) -> bytes:
    """Rows of little-endian fields; a column may be (rows, k) (written as k values)."""
    fields = [(f"c{i}", "<" + code, a.shape[1:]) for i, (_, code, a) in enumerate(columns)]
    table = np.empty(rows, dtype=np.dtype(fields))  # every field assigned below
    for i, (_, _, a) in enumerate(columns):
        table[f"c{i}"] = a
    return table.tobytes()


def save_ply(
    f: PathOrFile,
    verts: torch.Tensor,
    faces: torch.Tensor | None = None,
    verts_normals: torch.Tensor | None = None,
    ascii: bool = False,
    decimal_places: int | None = None,
    path_manager: object = None,
    *,
    verts_colors: torch.Tensor | None = None,
    colors_as_uint8: bool = True,
    verts_properties: dict[str, torch.Tensor] | None = None,
    faces_properties: dict[str, torch.Tensor] | None = None,
) -> None:
    """Save a mesh or point cloud as a PLY file, atomically (PyTorch3D's ``save_ply``).

    Writes ``element vertex`` with ``float x y z``, optional ``float nx ny nz``, optional
    ``uchar red green blue`` (the colour type every viewer reads) and extra properties, then,
    unless ``faces`` is None, ``element face`` with ``list uchar int vertex_indices`` and
    extra face properties. Binary files are little endian.

    Args:
        f: destination path (written atomically: temporary file + rename), or an open binary
            file (a text file only with ``ascii=True``).
        verts: (V, 3) float positions, written as float32.
        faces: (F, 3) integer 0-based indices into verts; None writes no face element (a point
            cloud).
        verts_normals: (V, 3) float normals, or None.
        ascii: write the ascii format instead of binary little endian.
        decimal_places: ascii only: digits after the decimal point; None writes 9
            significant digits, which read back as the same float32.
        path_manager: accepted for PyTorch3D compatibility and unused (local files only).
        verts_colors: (V, 3) float colours in [0, 1], or None.
        colors_as_uint8: write colours as ``uchar`` 0..255 (rounded, clamped; the default,
            unlike PyTorch3D's internal writer) or as ``float`` (read back exactly).
        verts_properties: extra (V,) tensors by name (``alpha``, ``quality``, ...), written
            with their dtype (uint8 -> uchar, int8 -> char, int16 -> short, int32/int64 ->
            int, float32 -> float, float64 -> double).
        faces_properties: extra (F,) tensors by name, one per row of ``faces``.

    Raises:
        TypeError: an argument of the wrong type.
        ValueError: wrong shapes, indices out of range, non-finite values, a bad property name,
            ``decimal_places`` < 0.
    """
    del path_manager  # accepted for PyTorch3D's signature; local files only
    check_decimal_places(decimal_places)
    v = float_table(verts, "verts", 3)
    num_verts = v.shape[0]
    vertex = [("x", "f4", v[:, 0]), ("y", "f4", v[:, 1]), ("z", "f4", v[:, 2])]
    if verts_normals is not None:
        n = float_table(verts_normals, "verts_normals", 3)
        if n.shape[0] != num_verts:
            raise ValueError(
                f"verts_normals must have one row per vertex ({num_verts}), got {n.shape[0]}"
            )
        vertex += [("nx", "f4", n[:, 0]), ("ny", "f4", n[:, 1]), ("nz", "f4", n[:, 2])]
    if verts_colors is not None:
        c = _colors(verts_colors, num_verts, colors_as_uint8)
        code = "u1" if colors_as_uint8 else "f4"
        vertex += [("red", code, c[:, 0]), ("green", code, c[:, 1]), ("blue", code, c[:, 2])]
    vertex += _extras(verts_properties, "verts_properties", num_verts, {k for k, _, _ in vertex})
    face = None
    num_faces = 0
    if faces is not None:
        fv = index_table(faces, "faces", num_verts).astype(np.int32)
        num_faces = fv.shape[0]
        face = [("vertex_indices", "i4", fv)]
        face += _extras(faces_properties, "faces_properties", num_faces, {"vertex_indices"})
    elif faces_properties:
        raise ValueError("faces_properties needs faces")
    head = _header([(k, c) for k, c, _ in vertex], num_verts,
                   None if face is None else [(k, c) for k, c, _ in face[1:]], num_faces, ascii)  # fmt: skip
    if not ascii:
        parts = [head, _binary(vertex, num_verts)]
        if face is not None:
            counts = ("n", "u1", np.full(num_faces, 3, np.uint8))
            parts.append(_binary([counts, *face], num_faces))
        write_target(f, b"".join(parts), text_ok=False)
        return
    fmt = "%.9g" if decimal_places is None else f"%.{decimal_places}f"
    parts = [head, *text_rows(vertex, fmt)]
    if face is not None:
        counts = ("n", "u1", np.full(num_faces, 3, np.uint8))
        parts += text_rows([counts, *face], fmt)
    write_target(f, b"".join(parts), text_ok=True)
