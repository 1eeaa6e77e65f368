"""Object File Format (OFF) meshes: ``load_off`` and ``save_off``."""

from __future__ import annotations

import re

import numpy as np
import torch

from ._devices import as_device
from ._numbers import NumberLines, float32_unrepresentable, number_lines
from ._source import PathOrFile, read_source, write_target
from ._tables import check_decimal_places, float_table, index_table, text_rows

__all__ = ["load_off", "read_off", "save_off"]

# an optional UTF-8 byte-order mark, blank and comment lines, then the keyword
_KEYWORD = re.compile(rb"(?:\xef\xbb\xbf)?\s*(?:#[^\n]*\n\s*)*([A-Za-z]*OFF)(?=\s|$)")
_SUPPORTED = {b"OFF": "", b"COFF": "C", b"NOFF": "N", b"CNOFF": "NC", b"NCOFF": "NC"}


def _header(data: bytes, name: str) -> tuple[str, int]:
    """The kinds of vertex data (``"N"`` normals, ``"C"`` colours) and where the counts start."""
    found = _KEYWORD.match(data[:4096])
    if found is None:
        raise ValueError(f"{name}: not an OFF file (it does not start with 'OFF')")
    keyword = found.group(1)
    if keyword not in _SUPPORTED:
        raise ValueError(
            f"{name}: unsupported OFF variant {keyword.decode()!r} (expected OFF, COFF, NOFF "
            "or CNOFF)"
        )
    return _SUPPORTED[keyword], found.end()


def _fail(name: str, lines: NumberLines, row: int, message: str) -> ValueError:
    return ValueError(f"{name}:{int(lines.lineno[row])}: {message}")


def read_off(
    f: PathOrFile, *, device: str | torch.device = "cpu"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Load an OFF file's vertices, fan-triangulated faces and vertex colours (COFF).

    Returns:
        ``(verts, faces, verts_colors)``: (V, 3) float32, (F, 3) int64, and (V, 3) float32 in
        [0, 1] or None (colours written as 0..255 integers are divided by 255; the alpha
        column and face colours are ignored).

    Raises:
        As :func:`load_off`.
    """
    device = as_device(device)
    data, name = read_source(f)
    kinds, offset = _header(data, name)
    lines = number_lines(data, offset, name, comments=True, what="OFF value")
    if lines.tokens.size == 0 or lines.tokens[0] not in (2, 3):
        raise ValueError(f"{name}: OFF counts line must be 'V F E', got {lines.tokens[:1]} values")
    counts = lines.values[: lines.tokens[0]]
    if (np.trunc(counts) != counts).any() or (counts < 0).any() or (counts > 2**62).any():
        raise ValueError(f"{name}: OFF counts must be integers >= 0, got {counts.tolist()}")
    num_verts, num_faces = int(counts[0]), int(counts[1])
    available = lines.tokens.size - 1
    if num_verts + num_faces > available:
        raise ValueError(
            f"{name}: OFF declares {num_verts} vertices and {num_faces} faces but has only "
            f"{available} lines after the counts (truncated file or wrong counts)"
        )
    width = 3 + 3 * ("N" in kinds)
    rows = np.arange(1, 1 + num_verts)
    short = lines.tokens[rows] < width + 3 * ("C" in kinds)
    if short.any():
        raise _fail(name, lines, int(rows[np.argmax(short)]), "OFF vertex has too few values")
    table = lines.values[lines.first[rows][:, None] + np.arange(width + 3 * ("C" in kinds))]
    unfit = float32_unrepresentable(table[:, :3]).any(axis=1)
    if unfit.any():  # checked before the cast: 1e39 would become inf
        bad = int(rows[np.argmax(unfit)])
        raise _fail(name, lines, bad, "OFF vertex position is not finite in float32")
    verts = table[:, :3].astype(np.float32)
    colors = None
    if "C" in kinds:
        rgb = table[:, width : width + 3]
        unfit = float32_unrepresentable(rgb).any(axis=1)
        if unfit.any():
            bad = int(rows[np.argmax(unfit)])
            raise _fail(name, lines, bad, "OFF vertex colour is not finite in float32")
        colors = (rgb / 255.0 if rgb.size and rgb.max() > 1.0 else rgb).astype(np.float32)

    frows = np.arange(1 + num_verts, 1 + num_verts + num_faces)
    first = lines.first[frows]
    sizes = lines.values[first]
    bad = (np.trunc(sizes) != sizes) | (sizes < 3) | (sizes + 1 > lines.tokens[frows])
    if bad.any():
        raise _fail(name, lines, int(frows[np.argmax(bad)]),
                    "OFF face must be 'n i_1 ... i_n' with n >= 3")  # fmt: skip
    sizes = sizes.astype(np.int64)
    per = sizes - 2
    owner = np.repeat(np.arange(num_faces), per)
    k = np.arange(owner.size) - np.repeat(np.cumsum(per) - per, per)
    base = first[owner] + 1
    faces_f = np.stack(
        [lines.values[base], lines.values[base + k + 1], lines.values[base + k + 2]], 1
    )
    wrong = (np.trunc(faces_f) != faces_f) | (faces_f < 0) | (faces_f >= num_verts)
    if wrong.any():
        row = int(frows[owner[np.argmax(wrong.any(axis=1))]])
        raise _fail(name, lines, row, f"OFF face index out of range for {num_verts} vertices")
    faces = faces_f.reshape(-1, 3).astype(np.int64)
    return (
        torch.from_numpy(verts).to(device),
        torch.from_numpy(faces).to(device),
        None if colors is None else torch.from_numpy(colors).to(device),
    )


def load_off(
    f: PathOrFile, *, device: str | torch.device = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load the vertices and faces of an OFF file (``OFF``, ``COFF``, ``NOFF``, ``CNOFF``).

    The counts may follow the keyword on its line or on the next; ``#`` comments and blank
    lines are skipped; polygons are fan-triangulated as (c0, c_i+1, c_i+2). Vertex colours
    (COFF): :func:`read_off` or ``IO().load_mesh``.

    Args:
        f: a path (str or os.PathLike) or an open file.
        device: where the returned tensors live.

    Returns:
        ``(verts, faces)``: (V, 3) float32 and (F, 3) int64.

    Raises:
        FileNotFoundError: the file does not exist.
        TypeError: ``f`` is neither a path nor a readable file.
        ValueError: ``"{file}:{line}: ..."`` for a missing keyword, counts larger than the
            file holds (checked before anything is allocated), a short vertex line, a face
            with fewer than 3 corners or an index out of range, a token that is not a number,
            a position or colour that is not finite in float32 (NaN, inf, beyond 3.4e38).
            A UTF-8 byte-order mark before the keyword is skipped.
    """
    verts, faces, _ = read_off(f, device=device)
    return verts, faces


def save_off(
    f: PathOrFile,
    verts: torch.Tensor,
    faces: torch.Tensor,
    decimal_places: int | None = None,
    *,
    verts_colors: torch.Tensor | None = None,
) -> None:
    """Save a triangle mesh as an OFF file (``COFF`` with colours), atomically.

    Args:
        f: destination path (temporary file + rename) or an open file (text or binary).
        verts: (V, 3) float positions.
        faces: (F, 3) integer 0-based indices into verts.
        decimal_places: digits after the decimal point; None writes 9 significant digits,
            which read back as the same float32.
        verts_colors: (V, 3) float colours in [0, 1], written as 0..255 integers, or None.

    Raises:
        TypeError: an argument of the wrong type.
        ValueError: wrong shapes, indices out of range, non-finite values.
    """
    check_decimal_places(decimal_places)
    v = float_table(verts, "verts", 3).astype(np.float32)
    fv = index_table(faces, "faces", v.shape[0])
    columns = [("xyz", "f4", v)]
    if verts_colors is not None:
        c = float_table(verts_colors, "verts_colors", 3)
        if c.shape[0] != v.shape[0]:
            raise ValueError(
                f"verts_colors must have one row per vertex ({v.shape[0]}), got {c.shape[0]}"
            )
        columns.append(("rgb", "u1", np.rint(np.clip(c, 0.0, 1.0) * 255.0)))
    fmt = "%.9g" if decimal_places is None else f"%.{decimal_places}f"
    head = f"{'COFF' if verts_colors is not None else 'OFF'}\n{v.shape[0]} {fv.shape[0]} 0\n"
    parts = [head.encode("ascii"), *text_rows(columns, fmt)]
    parts += text_rows([("n", "u1", np.full(fv.shape[0], 3)), ("idx", "i4", fv)], fmt)
    write_target(f, b"".join(parts), text_ok=True)
