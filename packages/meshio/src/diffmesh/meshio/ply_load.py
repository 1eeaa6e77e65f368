"""Loading PLY files: ``load_ply`` (PyTorch3D's) and ``load_ply_data`` (everything in the file)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from ._devices import as_device
from ._numbers import float32_unrepresentable
from ._ply_body import Column, Ragged, read_body
from ._ply_header import parse_header
from ._source import PathOrFile, read_source

__all__ = ["PlyData", "load_ply", "load_ply_data"]

_FACE_LISTS = ("vertex_indices", "vertex_index")
_KNOWN_VERTEX = ("x", "y", "z", "nx", "ny", "nz", "red", "green", "blue")
# numpy dtypes torch has no (full) support for are widened to the next signed type.
_TORCH_DTYPE = {"u2": np.int32, "u4": np.int64}


class PlyData(NamedTuple):
    """Everything a PLY file holds, as tensors.

    Attributes:
        verts: (V, 3) float32 positions (``x y z``); (0, 3) without a ``vertex`` element.
        faces: (F, 3) int64 indices into verts, polygons fan-triangulated as (c0, c_i+1, c_i+2);
            (0, 3) without faces (a point cloud).
        verts_normals: (V, 3) float32 ``nx ny nz``, or None.
        verts_colors: (V, 3) float32 ``red green blue`` in [0, 1] (integer types are divided
            by their maximum, 255 for ``uchar``; float colours are kept as written), or None.
        verts_properties: the other vertex properties by name (``alpha``, ``quality``, ...):
            (V,) tensors of the declared type (``ushort``/``uint`` widened to int32/int64), a
            list property (V, n) when all lists have length n, else ``(counts, values)``.
        faces_properties: the other face properties, one row per triangle of ``faces`` (a
            polygon's value repeated for each of its triangles; list properties stay one row
            per polygon), typed as above.
        elements: every other element: ``{element: {property: column}}``, columns as above.
        comments: the header's ``comment`` and ``obj_info`` lines, in order.
    """

    verts: torch.Tensor
    faces: torch.Tensor
    verts_normals: torch.Tensor | None
    verts_colors: torch.Tensor | None
    verts_properties: dict[str, torch.Tensor | tuple[torch.Tensor, torch.Tensor]]
    faces_properties: dict[str, torch.Tensor | tuple[torch.Tensor, torch.Tensor]]
    elements: dict[str, dict[str, torch.Tensor | tuple[torch.Tensor, torch.Tensor]]]
    comments: list[str]


def _tensor(a: np.ndarray, device: torch.device) -> torch.Tensor:
    a = a.astype(_TORCH_DTYPE.get(a.dtype.str[1:], a.dtype), copy=False)
    return torch.from_numpy(np.ascontiguousarray(a)).to(device)


def _column(col: Column, device: torch.device) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    if isinstance(col, np.ndarray):
        return _tensor(col, device)
    n = col.uniform()
    if n is not None:
        return _tensor(col.values.reshape(-1, n), device)
    return _tensor(col.counts, device), _tensor(col.values, device)


def _fan(lists: Ragged) -> tuple[np.ndarray, np.ndarray]:
    """(T, 3) triangles (c0, c_i+1, c_i+2) of every polygon, and each triangle's polygon."""
    n = lists.uniform()
    if n is not None:  # one polygon size: strided views, no index arrays per corner
        polys = lists.values.reshape(-1, n).astype(np.int64)
        if n == 3:
            return polys, np.arange(polys.shape[0])
        tris = np.stack(
            [np.repeat(polys[:, :1], n - 2, 1), polys[:, 1:-1], polys[:, 2:]], axis=2
        ).reshape(-1, 3)
        return tris, np.repeat(np.arange(polys.shape[0]), n - 2)
    per = lists.counts - 2
    owner = np.repeat(np.arange(per.size), per)
    k = np.arange(owner.size) - np.repeat(np.cumsum(per) - per, per)
    base = lists.offsets[owner]
    values = lists.values.astype(np.int64)
    tris = np.stack([values[base], values[base + k + 1], values[base + k + 2]], axis=1)
    return tris, owner


def _float32_rows(table: np.ndarray, name: str, what: str) -> np.ndarray:
    """``table`` (V, 3) as float32; a row not finite in float32 raises naming it.

    Checked before the cast, so that a double 1e39 is refused rather than loaded as inf.
    """
    unfit = float32_unrepresentable(table).any(axis=1)
    if unfit.any():
        row = int(np.argmax(unfit))
        raise ValueError(
            f"{name}: PLY element 'vertex' row {row}: non-finite {what} in float32 "
            "(NaN, inf or beyond 3.4e38)"
        )
    return table.astype(np.float32)


def _vertex_columns(
    cols: dict[str, Column], name: str
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    missing = [c for c in ("x", "y", "z") if c not in cols]
    if missing:
        raise ValueError(f"{name}: PLY element 'vertex' has no {'/'.join(missing)} property")
    for key in _KNOWN_VERTEX:
        if key in cols and isinstance(cols[key], Ragged):
            raise ValueError(f"{name}: PLY element 'vertex' property {key!r} must not be a list")
    verts = _float32_rows(np.stack([cols[c] for c in "xyz"], axis=1), name, "position")
    normals = colors = None
    if all(c in cols for c in ("nx", "ny", "nz")):
        normals = np.stack([cols[c] for c in ("nx", "ny", "nz")], axis=1)
        normals = _float32_rows(normals, name, "normal")
    if all(c in cols for c in ("red", "green", "blue")):
        rgb = [cols[c] for c in ("red", "green", "blue")]
        scale = [1.0 if c.dtype.kind == "f" else float(np.iinfo(c.dtype).max) for c in rgb]
        colors = np.stack([c / s for c, s in zip(rgb, scale, strict=True)], 1)
        colors = _float32_rows(colors, name, "colour")
    return verts, normals, colors


def _face_column(cols: dict[str, Column], name: str, num_verts: int) -> Ragged | None:
    key = next((k for k in _FACE_LISTS if k in cols), None)
    if key is None:
        return None
    lists = cols[key]
    if not isinstance(lists, Ragged):
        raise ValueError(f"{name}: PLY element 'face' property {key!r} must be a list")
    if lists.counts.size and lists.counts.min() < 3:
        row = int(np.argmax(lists.counts < 3))
        raise ValueError(
            f"{name}: PLY element 'face' row {row}: a face needs at least 3 corners, got "
            f"{int(lists.counts[row])}"
        )
    values = lists.values
    if values.size and (values.min() < 0 or values.max() >= num_verts):
        bad = np.flatnonzero((values < 0) | (values >= num_verts))[0]
        row = int(np.searchsorted(np.cumsum(lists.counts), bad, side="right"))
        raise ValueError(
            f"{name}: PLY element 'face' row {row}: vertex index {int(values[bad])} is out of "
            f"range for {num_verts} vertices"
        )
    return lists


def load_ply_data(f: PathOrFile, *, device: str | torch.device = "cpu") -> PlyData:
    """Load everything a PLY file holds (ascii, binary little or big endian).

    Reads the ``vertex`` element (``x y z``, optional ``nx ny nz`` and ``red green blue``,
    any other properties), the ``face`` element (list ``vertex_indices`` or ``vertex_index``,
    polygons fan-triangulated, other properties kept) and any other element. Property types
    may be spelt ``uchar``/``uint8``, ``float``/``float32``, ...; comments and ``obj_info``
    lines are kept. Every read is vectorized: binary elements are read with ``np.frombuffer``
    (in runs of rows with equal list lengths), an ascii body with one ``np.fromstring``.

    Args:
        f: a path (str or os.PathLike) or an open file (binary; a text file only for ascii).
        device: where the returned tensors live.

    Returns:
        A :class:`PlyData`.

    Raises:
        FileNotFoundError: the file does not exist.
        TypeError: ``f`` is neither a path nor a readable file.
        ValueError: naming the file and the element (and row or line) for anything that is
            not a well-formed PLY file: a bad header, unknown types, declared counts larger
            than the file can hold (checked before anything is allocated), a truncated body,
            non-numeric or out-of-range values, faces with fewer than 3 corners or indices out
            of range, non-finite positions.
    """
    device = as_device(device)
    data, name = read_source(f)
    header, offset = parse_header(data, name)
    body = read_body(data, offset, header, name)
    vertex_cols = body.get("vertex", {})
    if "vertex" in body:
        verts, normals, colors = _vertex_columns(vertex_cols, name)
    else:
        verts, normals, colors = np.zeros((0, 3), np.float32), None, None
    face_cols = body.get("face", {})
    lists = _face_column(face_cols, name, verts.shape[0]) if face_cols else None
    if lists is None:
        faces, owner = np.zeros((0, 3), np.int64), np.zeros(0, np.int64)
    else:
        faces, owner = _fan(lists)

    def extras(cols: dict[str, Column], skip: tuple[str, ...], rows: np.ndarray | None) -> dict:
        out = {}
        for key, col in cols.items():  # one iteration per property
            if key in skip:
                continue
            if rows is not None and isinstance(col, np.ndarray):  # one row per triangle
                col = col[rows]
            out[key] = _column(col, device)
        return out

    others = {e: cols for e, cols in body.items() if e not in ("vertex", "face")}
    if lists is None and face_cols:  # a 'face' element without a vertex list: kept as is
        others["face"], face_cols = face_cols, {}
    return PlyData(
        verts=torch.from_numpy(verts).to(device),
        faces=torch.from_numpy(faces).to(device),
        verts_normals=None if normals is None else torch.from_numpy(normals).to(device),
        verts_colors=None if colors is None else torch.from_numpy(colors).to(device),
        verts_properties=extras(vertex_cols, _KNOWN_VERTEX, None),
        faces_properties=extras(face_cols, _FACE_LISTS, owner),
        elements={e: extras(cols, (), None) for e, cols in others.items()},
        comments=list(header.comments),
    )


def load_ply(
    f: PathOrFile, *, path_manager: object = None, device: str | torch.device = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load the vertices and faces of a PLY file (PyTorch3D's ``load_ply``).

    Args:
        f: a path (str or os.PathLike) or an open file.
        path_manager: accepted for PyTorch3D compatibility and unused (local files only).
        device: where the returned tensors live (PyTorch3D's has no such argument).

    Returns:
        ``(verts, faces)``: (V, 3) float32 and (F, 3) int64, polygons fan-triangulated;
        faces is (0, 3) for a point cloud. Normals, colours and other properties:
        :func:`load_ply_data`.

    Raises:
        As :func:`load_ply_data`.
    """
    del path_manager  # accepted for PyTorch3D's signature; local files only
    data = load_ply_data(f, device=device)
    return data.verts, data.faces
