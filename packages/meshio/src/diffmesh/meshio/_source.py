"""Reading the bytes of a path or open file, and writing to one, for the PLY/OFF/GLB/XYZ io."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO

from .obj_save import atomic_write

__all__ = ["PathOrFile", "read_source", "write_target"]

PathOrFile = str | os.PathLike[str] | IO[bytes] | IO[str]


def read_source(f: PathOrFile) -> tuple[bytes, str]:
    """The bytes of ``f`` (a path or an open file, binary or text) and its name for messages."""
    if isinstance(f, (str, os.PathLike)):
        path = Path(f)
        return path.read_bytes(), str(path)
    if hasattr(f, "read"):
        data = f.read()
        if isinstance(data, str):
            data = data.encode("utf-8")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"f.read() must return bytes or str, got {type(data).__name__}")
        name = getattr(f, "name", None)
        return bytes(data), name if isinstance(name, str) else "<stream>"
    raise TypeError(
        f"f must be a path (str or os.PathLike) or an open file, got {type(f).__name__}"
    )


def write_target(f: PathOrFile, data: bytes, text_ok: bool) -> None:
    """Write ``data`` to a path (atomically: temporary file + rename) or an open file.

    Args:
        f: a path, an open binary file, or (when ``text_ok``: ``data`` is ASCII) a text file.
        data: the whole file.
        text_ok: whether an open text-mode file may receive ``data`` decoded as ASCII.
    """
    if isinstance(f, (str, os.PathLike)):
        with atomic_write(f, "wb") as handle:
            handle.write(data)
        return
    write: Callable | None = getattr(f, "write", None)
    if write is None:
        raise TypeError(
            f"f must be a path (str or os.PathLike) or an open file, got {type(f).__name__}"
        )
    text_mode = isinstance(f, io.TextIOBase) or "b" not in str(getattr(f, "mode", "b"))
    if not text_mode:
        write(data)
    elif text_ok:
        write(data.decode("ascii"))
    else:
        raise TypeError("f is a text-mode file; a binary format needs a path or a file opened 'wb'")
