"""Checking tensors handed to the writers, and formatting numeric tables as text rows."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["check_decimal_places", "float_table", "index_table", "text_rows"]

_CHUNK_ROWS = 65536  # rows formatted per string operation: bounds the temporary text size


def check_decimal_places(decimal_places: object) -> None:
    if decimal_places is None:
        return
    if isinstance(decimal_places, bool) or not isinstance(decimal_places, int):
        raise TypeError(
            f"decimal_places must be None or an int, got {type(decimal_places).__name__}"
        )
    if decimal_places < 0:
        raise ValueError(f"decimal_places must be >= 0, got {decimal_places}")


def float_table(x: object, name: str, cols: int) -> np.ndarray:
    """A finite (R, cols) float tensor as float64 numpy; TypeError/ValueError naming ``name``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating point tensor, got {x.dtype}")
    if x.ndim != 2 or x.shape[1] != cols:
        raise ValueError(f"{name} must have shape (N, {cols}), got {tuple(x.shape)}")
    out = x.detach().cpu().double().numpy()
    if not np.isfinite(out).all():
        raise ValueError(f"{name} must be finite, got NaN or inf values")
    return out


def index_table(x: object, name: str, size: int) -> np.ndarray:
    """(F, 3) integer indices into ``size`` elements as int64 numpy, range-checked."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor, got {x.dtype}")
    if x.ndim != 2 or x.shape[1] != 3:
        raise ValueError(f"{name} must have shape (F, 3), got {tuple(x.shape)}")
    idx = x.detach().cpu().long().numpy()
    if idx.size and (idx.min() < 0 or idx.max() >= size):
        raise ValueError(
            f"{name} must index verts (0 <= i < {size}), got values in "
            f"[{int(idx.min())}, {int(idx.max())}]"
        )
    return idx


def text_rows(columns: list[tuple[str, str, np.ndarray]], fmt: str) -> list[bytes]:
    """Space-separated text lines of the columns' rows, one bytes object per chunk of rows.

    Args:
        columns: ``(name, dtype code, values)``; values (R,) or (R, k). Integer codes are
            written with ``%d``, ``f8`` with 17 significant digits unless ``fmt`` has fixed
            decimals, other floats with ``fmt``.
        fmt: the format of float32 values (``%.9g`` reads back exactly).
    """
    formats: list[str] = []
    blocks: list[np.ndarray] = []
    for _, code, values in columns:  # one iteration per column
        width = 1 if values.ndim == 1 else values.shape[1]
        if code[0] != "f":
            formats += ["%d"] * width
        else:
            formats += [("%.17g" if code == "f8" and fmt == "%.9g" else fmt)] * width
        blocks.append(values.reshape(values.shape[0], -1).astype(np.float64))
    if not blocks:
        return []
    table = np.concatenate(blocks, axis=1)
    line = " ".join(formats) + "\n"
    out = []
    for start in range(0, table.shape[0], _CHUNK_ROWS):  # one iteration per 65536 rows
        chunk = table[start : start + _CHUNK_ROWS]
        out.append(((line * chunk.shape[0]) % tuple(chunk.ravel().tolist())).encode("ascii"))
    return out
