"""Output folder handling and atomic writes.

Every file the app writes goes through :func:`atomic_path`: the content is written to a
temporary file in the destination's folder, then moved over the destination with
``os.replace`` (atomic on POSIX and Windows), so a crash or Ctrl-C never leaves half a file
and never destroys the previous version.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import sys
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_path",
    "environment_info",
    "prepare_out_dir",
    "write_bytes",
    "write_json",
    "write_text",
]


def prepare_out_dir(out: str | Path) -> Path:
    """Create the output folder (and parents) if needed and check that it is writable.

    Args:
        out: the folder.

    Returns:
        The folder as a Path.

    Raises:
        ValueError: ``out`` exists and is not a folder.
        PermissionError: the folder cannot be written.
        OSError: the folder cannot be created (the message names ``--out``).
    """
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError(f"--out: expected a folder, got the existing file {str(path)!r}")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise OSError(f"--out: cannot create the folder {str(path)!r}: {reason}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(f"--out: the folder {str(path)!r} is not writable")
    return path


@contextlib.contextmanager
def atomic_path(dest: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success move it over ``dest`` atomically.

    The temporary file keeps ``dest``'s suffix (writers that look at the extension work).
    On any exception, KeyboardInterrupt included, the temporary file is removed and
    ``dest`` is left as it was.

    Args:
        dest: the final path.

    Yields:
        The temporary path to write to.
    """
    dest = Path(dest)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{dest.stem}.", suffix=f".tmp{dest.suffix}", dir=dest.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, _file_mode(dest))  # mkstemp makes 0600 files; keep the usual mode
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _file_mode(dest: Path) -> int:
    """The mode a new file would get (0666 minus the umask), or ``dest``'s if it exists."""
    try:
        return os.stat(dest).st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_bytes(dest: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``dest`` atomically; returns ``dest`` as a Path."""
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)
    return Path(dest)


def write_text(dest: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``dest`` atomically; returns ``dest`` as a Path."""
    return write_bytes(dest, text.encode("utf-8"))


def _jsonable(value: Any) -> Any:
    """Replace non-finite floats by None (strict JSON has no NaN/inf) and tuples by lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(dest: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` as indented strict JSON (NaN/inf become null) atomically."""
    text = json.dumps(_jsonable(payload), indent=2, allow_nan=False) + "\n"
    return write_text(dest, text)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def environment_info(device: str) -> dict[str, Any]:
    """Versions and platform for metrics.json.

    Args:
        device: the torch device the run used, e.g. ``"cpu"``.

    Returns:
        ``{"device", "python", "platform", "versions": {dist: version}}``.
    """
    import torch

    dists = [
        "diffmesh-fit",
        "diffmesh-meshcore",
        "diffmesh-meshio",
        "diffmesh-meshloss",
        "diffmesh-softrender",
    ]
    versions = {d: _version(d) for d in dists}
    versions["torch"] = torch.__version__
    return {
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": versions,
    }
