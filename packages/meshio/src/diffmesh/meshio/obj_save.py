"""Saving OBJ files (with MTL + PNG texture, normals, uvs, vertex colours), atomically."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
import torch
from PIL import Image

__all__ = ["atomic_write", "save_obj"]

_CHUNK_ROWS = 65536  # rows formatted per string operation: bounds the temporary text size


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO]:
    """Open a temporary file next to ``path`` and move it onto ``path`` only on success.

    The temporary file lives in the same folder (so the final ``os.replace`` is an atomic
    rename on the same file system); on any exception it is removed and ``path`` is untouched.

    Args:
        path: the destination file.
        mode: ``"w"`` (text, UTF-8, ``\\n`` line ends) or ``"wb"``.

    Yields:
        The open temporary file.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, _file_mode(path))  # mkstemp makes 0600; give what open() would
        kwargs = {"encoding": "utf-8", "newline": "\n"} if mode == "w" else {}
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _file_mode(path: Path) -> int:
    """The permission bits of an existing ``path``, else the default for a new file."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _rows(prefix: str, table: np.ndarray, fmt: str) -> Iterator[str]:
    """``prefix fmt fmt ...`` lines for the rows of ``table``, one string per chunk of rows."""
    line = prefix + " ".join([fmt] * table.shape[1]) + "\n"
    for start in range(0, table.shape[0], _CHUNK_ROWS):  # one iteration per 65536 rows
        chunk = table[start : start + _CHUNK_ROWS]
        yield (line * chunk.shape[0]) % tuple(chunk.ravel().tolist())


def _int_rows(prefix: str, table: np.ndarray, separators: list[str]) -> Iterator[str]:
    """Lines ``prefix t0 sep0 t1 sep1 ...`` for the rows of a non-negative int table.

    Formatted with array operations (``%d`` costs a Python call per number): each number gets
    a slot of ``prefix + digits + separator`` bytes, filled digit by digit (one array step per
    decimal place), and the unused bytes (leading zeros, the prefix after column 0, padding
    of shorter separators) are dropped by one boolean selection.

    Args:
        prefix: text starting every line.
        table: (R, C) int64 values >= 0.
        separators: C strings, the one after each column; the last ends the line.
    """
    rows, cols = table.shape
    if rows == 0:
        return
    largest = int(table.max())
    width = len(str(largest))
    pre, post = len(prefix), max(len(sep) for sep in separators)
    fixed = np.zeros((cols, pre + post), dtype=np.uint8)  # prefix and separator bytes
    fixed_keep = np.zeros((cols, pre + post), dtype=bool)
    fixed[0, :pre] = np.frombuffer(prefix.encode(), dtype=np.uint8)
    fixed_keep[0, :pre] = True
    for j, sep in enumerate(separators):  # one iteration per column
        fixed[j, pre : pre + len(sep)] = np.frombuffer(sep.encode(), dtype=np.uint8)
        fixed_keep[j, pre : pre + len(sep)] = True
    digits = slice(pre, pre + width)
    dtype = np.uint32 if largest < 2**32 else np.uint64  # faster division than int64
    for start in range(0, rows, _CHUNK_ROWS):  # one iteration per 65536 rows
        value = table[start : start + _CHUNK_ROWS].astype(dtype)
        text = np.empty((value.shape[0], cols, pre + width + post), dtype=np.uint8)
        keep = np.empty(text.shape, dtype=bool)  # text and keep: every byte written below
        text[:, :, :pre], keep[:, :, :pre] = fixed[:, :pre], fixed_keep[:, :pre]
        text[:, :, -post:], keep[:, :, -post:] = fixed[:, pre:], fixed_keep[:, pre:]
        for k in range(digits.stop - 1, digits.start - 1, -1):  # one step per decimal place
            text[:, :, k] = value % 10 + ord("0")
            keep[:, :, k] = value > 0  # a leading zero once the number is used up
            value //= 10
        keep[:, :, digits.stop - 1] = True  # the last digit always ("0" for zero)
        yield text[keep].tobytes().decode("ascii")


def _face_rows(fv: np.ndarray, ft: np.ndarray | None, fn: np.ndarray | None) -> Iterator[str]:
    """``f`` lines from 1-based (F, 3) indices: ``v``, ``v/vt``, ``v//vn`` or ``v/vt/vn``."""
    fields = [c for c in (fv, ft, fn) if c is not None]
    inner = ["//"] if ft is None and fn is not None else ["/"] * (len(fields) - 1)
    table = np.stack(fields, axis=2).reshape(fv.shape[0], -1)  # (F, 3 * fields), corner-major
    separators = [*inner, " ", *inner, " ", *inner, "\n"]
    yield from _int_rows("f ", table, separators)


def _tensor(x: object, name: str, cols: int, floating: bool) -> np.ndarray:
    """Validate an (R, cols) tensor and return it as a float64 / int64 numpy array."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 2 or x.shape[1] != cols:
        raise ValueError(f"{name} must have shape (N, {cols}), got {tuple(x.shape)}")
    if floating:
        if not x.is_floating_point():
            raise TypeError(f"{name} must be a floating point tensor, got {x.dtype}")
        out = x.detach().cpu().double().numpy()
        if not np.isfinite(out).all():
            raise ValueError(f"{name} must be finite, got NaN or inf values")
        return out
    if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor, got {x.dtype}")
    return x.detach().cpu().long().numpy()


def _empty_as(x: object, cols: int, dtype: torch.dtype) -> object:
    """An empty tensor of any shape or dtype as an empty ``(0, cols)`` table (PyTorch3D
    accepts ``torch.tensor([])`` for "none"); anything else unchanged."""
    if isinstance(x, torch.Tensor) and x.numel() == 0 and x.shape != (0, cols):
        return torch.zeros(0, cols, dtype=dtype, device=x.device)
    return x


def _indices(x: object, name: str, rows: int | None, size: int, target: str) -> np.ndarray:
    """Validate (F, 3) 0-based indices into ``size`` elements; returns them 1-based."""
    idx = _tensor(x, name, 3, floating=False)
    if rows is not None and idx.shape[0] != rows:
        raise ValueError(f"{name} must have one row per face ({rows}), got {idx.shape[0]}")
    if idx.size and (idx.min() < 0 or idx.max() >= size):
        raise ValueError(
            f"{name} must index {target} (0 <= i < {size}), got values in "
            f"[{int(idx.min())}, {int(idx.max())}]"
        )
    return idx + 1


def save_obj(
    f: str | os.PathLike[str] | IO[str],
    verts: torch.Tensor,
    faces: torch.Tensor,
    decimal_places: int | None = None,
    path_manager: object = None,
    *,
    normals: torch.Tensor | None = None,
    verts_normals: torch.Tensor | None = None,
    faces_normals_idx: torch.Tensor | None = None,
    verts_uvs: torch.Tensor | None = None,
    faces_uvs: torch.Tensor | None = None,
    texture_map: torch.Tensor | None = None,
    verts_colors: torch.Tensor | None = None,
) -> None:
    """Save a mesh as an OBJ file, atomically.

    With ``texture_map``, ``<stem>.mtl`` and ``<stem>.png`` are written next to the OBJ (material
    ``mesh``), before it, each atomically (temporary file in the same folder, then rename), so a
    crash never leaves a half-written file nor an OBJ naming a missing MTL.

    Args:
        f: destination path (str or os.PathLike), or an open text file (written directly, so
            not atomically; a ``texture_map`` then needs the file's ``name`` to be a path).
        verts: (V, 3) float positions; an empty tensor of any shape or dtype (PyTorch3D's
            ``torch.tensor([])``) means no vertices.
        faces: (F, 3) integer 0-based indices into verts; an empty tensor of any shape or
            dtype means no faces (a point cloud OBJ).
        decimal_places: digits after the decimal point; None (default) writes each number
            with 9 significant digits, which reads back as the same float32.
        path_manager: accepted for PyTorch3D compatibility (its iopath ``PathManager``) and
            unused: paths are written on the local file system.
        normals: (N, 3) float normals (PyTorch3D's name; ``verts_normals`` is an alias).
        verts_normals: alias of ``normals``; give one of the two.
        faces_normals_idx: (F, 3) integer indices into normals; required with normals.
        verts_uvs: (T, 2) float texture coordinates (v = 0 is the bottom of the image).
        faces_uvs: (F, 3) integer indices into verts_uvs; required with verts_uvs.
        texture_map: (H, W, 3) float image in [0, 1] (clamped), row 0 the top; needs uvs.
        verts_colors: (V, 3) float per-vertex colours, written as ``v x y z r g b``.

    Raises:
        TypeError: an argument is not a tensor of the expected dtype, or ``f`` is not a path
            or file.
        ValueError: wrong shapes, indices out of range, non-finite values, or arguments that
            need each other given alone.
    """
    del path_manager  # accepted for PyTorch3D's signature; local files only
    verts = _empty_as(verts, 3, torch.float32)
    faces = _empty_as(faces, 3, torch.int64)
    if normals is not None and verts_normals is not None:
        raise TypeError("give normals or its alias verts_normals, not both")
    normals = verts_normals if normals is None else normals
    if decimal_places is not None:
        if isinstance(decimal_places, bool) or not isinstance(decimal_places, int):
            raise TypeError(
                f"decimal_places must be None or an int, got {type(decimal_places).__name__}"
            )
        if decimal_places < 0:
            raise ValueError(f"decimal_places must be >= 0, got {decimal_places}")
    fmt = "%.9g" if decimal_places is None else f"%.{decimal_places}f"

    v = _tensor(verts, "verts", 3, floating=True)
    if not isinstance(f, (str, os.PathLike)) and not hasattr(f, "write"):
        raise TypeError(
            f"f must be a path (str or os.PathLike) or an open text file, got {type(f).__name__}"
        )
    fv = _indices(faces, "faces", None, v.shape[0], "verts")
    num_faces = fv.shape[0]
    if (normals is None) != (faces_normals_idx is None):
        raise ValueError("normals and faces_normals_idx must be given together")
    if (verts_uvs is None) != (faces_uvs is None):
        raise ValueError("verts_uvs and faces_uvs must be given together")
    if texture_map is not None and verts_uvs is None:
        raise ValueError("texture_map needs verts_uvs and faces_uvs")
    n = fn = t = ft = colors = None
    if normals is not None:
        n = _tensor(normals, "normals", 3, floating=True)
        fn = _indices(faces_normals_idx, "faces_normals_idx", num_faces, n.shape[0], "normals")
    if verts_uvs is not None:
        t = _tensor(verts_uvs, "verts_uvs", 2, floating=True)
        ft = _indices(faces_uvs, "faces_uvs", num_faces, t.shape[0], "verts_uvs")
    if verts_colors is not None:
        colors = _tensor(verts_colors, "verts_colors", 3, floating=True)
        if colors.shape[0] != v.shape[0]:
            raise ValueError(
                f"verts_colors must have one row per vertex ({v.shape[0]}), got {colors.shape[0]}"
            )
    image = None
    if texture_map is not None:
        if not isinstance(texture_map, torch.Tensor):
            raise TypeError(f"texture_map must be a torch.Tensor, got {type(texture_map).__name__}")
        if not texture_map.is_floating_point():
            raise TypeError(f"texture_map must be a float tensor, got {texture_map.dtype}")
        if texture_map.ndim != 3 or texture_map.shape[2] != 3 or texture_map.numel() == 0:
            raise ValueError(
                f"texture_map must have shape (H, W, 3), got {tuple(texture_map.shape)}"
            )
        pixels = texture_map.detach().cpu().double().numpy()
        if not np.isfinite(pixels).all():
            raise ValueError("texture_map must be finite, got NaN or inf values")
        image = Image.fromarray(np.rint(np.clip(pixels, 0.0, 1.0) * 255.0).astype(np.uint8))

    header: list[str] = []
    if image is not None:
        obj_path = _named_path(f)
        stem = obj_path.stem
        mtl_path = obj_path.with_name(f"{stem}.mtl")
        png_path = obj_path.with_name(f"{stem}.png")
        with atomic_write(png_path, "wb") as handle:
            image.save(handle, format="PNG")
        with atomic_write(mtl_path) as handle:
            handle.write(
                f"newmtl mesh\nmap_Kd {png_path.name}\nKa 1.000 1.000 1.000\n"
                "Kd 1.000 1.000 1.000\nKs 0.000 0.000 0.000\nNs 10.0\nillum 2\n"
            )
        header = [f"mtllib {mtl_path.name}\n", "usemtl mesh\n"]

    def chunks() -> Iterator[str]:
        yield from header
        yield from _rows("v ", v if colors is None else np.concatenate([v, colors], 1), fmt)
        if t is not None:
            yield from _rows("vt ", t, fmt)
        if n is not None:
            yield from _rows("vn ", n, fmt)
        if num_faces:
            yield from _face_rows(fv, ft, fn)

    if isinstance(f, (str, os.PathLike)):
        with atomic_write(f) as handle:
            handle.writelines(chunks())
    else:
        f.writelines(chunks())


def _named_path(f: object) -> Path:
    if isinstance(f, (str, os.PathLike)):
        return Path(f)
    name = getattr(f, "name", None)
    if isinstance(name, str) and name:
        return Path(name)
    raise ValueError(
        "texture_map needs f to be a path (or a file with a name) to place the MTL and PNG"
    )
