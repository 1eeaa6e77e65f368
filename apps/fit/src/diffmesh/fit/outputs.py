"""Output folder handling, atomic writes, and output sets published as a whole.

Every file the app writes goes through :func:`atomic_path`: the content is written to a
temporary file in the destination's folder, then moved over the destination with
``os.replace`` (atomic on POSIX and Windows), so a crash or Ctrl-C never leaves half a file
and never destroys the previous version.

A fit's files form a set (meshes, plots, GIF, ``metrics.json``) written through an
:class:`OutputSet`: into a private staging folder first, then published together, so that
the output folder never holds files of two runs at once.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import re
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from diffmesh.fit.launch import deferred_interrupt

__all__ = [
    "METRICS_FILE",
    "OutputSet",
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
    if str(out).strip() == "":
        raise ValueError("--out: expected a folder, got an empty path")
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
        ``{"device", "torch_threads", "thread_changes", "python", "platform", "versions":
        {dist: version}}``; ``thread_changes`` lists the thread policy's decisions
        (``[seconds, threads]``), None when no policy ran (``--threads N``, the Python API).
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
    from diffmesh.fit.threads import active_policy

    policy = active_policy()
    return {
        "device": device,
        "torch_threads": torch.get_num_threads(),
        # (seconds since the policy's start, threads) at its first decision and every change
        "thread_changes": [[round(t, 2), n] for t, n in policy.changes] if policy is not None else None,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": versions,
    }


METRICS_FILE = "metrics.json"
_STAGING_PREFIX = ".fit-run-"
#: What a metrics.json written before output sets listed their files held (besides
#: ``fitted_<name>[_normalized].obj`` per target): removed when a new set replaces it.
_LEGACY_FILES = ("fitted.obj", "fitted_normalized.obj", "losses.png", "progress.gif", "views.png")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.+-]+")


def new_run_id() -> str:
    """A run id: UTC time, process id and random digits (``20261207T154500Z-1234-a1b2c3``)."""
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}-{secrets.token_hex(3)}"


class OutputSet:
    """The files of one run, written aside and published together into ``out``.

    :meth:`path` gives the place to write a file of the set: a staging folder
    ``out/.fit-run-<run id>/``. :meth:`commit` writes ``metrics.json`` (with the ``run_id``
    and the ``files`` of the set) and publishes the set: the previous ``metrics.json`` is
    removed first, then the previous set's files (those its ``metrics.json`` lists), then the
    new files are moved in with ``metrics.json`` last (Ctrl-C is held during these renames).
    So the folder holds one run's files at any moment, and a ``metrics.json`` there always
    lists a complete set of its own run. Other files in ``out`` are left alone.
    :meth:`discard` (or leaving a ``with`` block by an exception without a commit) removes
    the staging folder and leaves ``out`` as it was. Staging folders of processes that no
    longer run (a killed run) are removed when the next set is opened.

    Args:
        out: the output folder (must exist: :func:`prepare_out_dir`).
        run_id: the run's id; a fresh one (:func:`new_run_id`) when None.
    """

    def __init__(self, out: str | Path, run_id: str | None = None) -> None:
        self.out = Path(out)
        self.run_id = run_id or new_run_id()
        _remove_dead_staging(self.out)
        self.staging = self.out / f"{_STAGING_PREFIX}{self.run_id}"
        self.staging.mkdir()
        self._names: list[str] = []
        self.committed = False

    def path(self, name: str) -> Path:
        """Where to write the set's file ``name`` (a plain file name) before the commit."""
        if not _PLAIN_NAME.fullmatch(name) or name in (".", "..", METRICS_FILE):
            raise ValueError(f"name: expected a plain file name other than {METRICS_FILE}, got {name!r}")
        if name not in self._names:
            self._names.append(name)
        return self.staging / name

    @property
    def names(self) -> list[str]:
        """The files of the set so far, in the order they were added."""
        return list(self._names)

    def commit(self, metrics: dict[str, Any]) -> list[Path]:
        """Write ``metrics.json`` and publish the set (see the class).

        Args:
            metrics: the content of metrics.json; ``run_id`` and ``files`` are added.

        Returns:
            The published files in ``out``, ``metrics.json`` last.
        """
        names = [n for n in self._names if (self.staging / n).is_file()]
        write_json(self.staging / METRICS_FILE, {**metrics, "run_id": self.run_id, "files": [*names, METRICS_FILE]})
        with deferred_interrupt():
            previous = _previous_set(self.out)
            (self.out / METRICS_FILE).unlink(missing_ok=True)
            for name in previous:
                with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                    (self.out / name).unlink()
            for name in [*names, METRICS_FILE]:
                os.replace(self.staging / name, self.out / name)
            self.committed = True
            shutil.rmtree(self.staging, ignore_errors=True)
        return [self.out / n for n in [*names, METRICS_FILE]]

    def discard(self) -> None:
        """Remove the staging folder without publishing (idempotent)."""
        shutil.rmtree(self.staging, ignore_errors=True)

    def __enter__(self) -> OutputSet:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.committed:
            self.discard()


def _previous_set(out: Path) -> list[str]:
    """The files of the set published in ``out`` before: those its metrics.json lists (or, for
    one written before sets listed their files, the names fit used then)."""
    try:
        payload = json.loads((out / METRICS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(payload, dict):
        return []
    files = payload.get("files")
    if isinstance(files, list):
        return [f for f in files if isinstance(f, str) and _PLAIN_NAME.fullmatch(f) and f not in (".", "..")]
    if payload.get("command") not in ("shape", "images"):
        return []
    names = list(_LEGACY_FILES)
    for target in payload.get("targets") or []:
        name = target.get("name") if isinstance(target, dict) else None
        if isinstance(name, str) and _PLAIN_NAME.fullmatch(name):
            names += [f"fitted_{name}.obj", f"fitted_{name}_normalized.obj"]
    return names


def _remove_dead_staging(out: Path) -> None:
    """Remove staging folders left in ``out`` by runs whose process is gone (same machine)."""
    with contextlib.suppress(OSError):
        for entry in out.iterdir():
            match = re.fullmatch(re.escape(_STAGING_PREFIX) + r"[0-9TZ]+-(\d+)-[0-9a-f]+", entry.name)
            if match and entry.is_dir() and not _pid_alive(int(match.group(1))):
                shutil.rmtree(entry, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True
