"""Bundled meshes (package data) and resolution of mesh arguments.

A mesh argument is either a path to an OBJ file or the name of a bundled mesh
(``fish``, ``fish_low_resolution``, ``cow``, ``torus``, ``blob``, ``jack``), so that ``fit render cow`` works from
any folder.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["BUNDLED", "bundled_path", "resolve_mesh_path"]

#: Bundled mesh name -> path inside the package's ``data`` folder.
BUNDLED: dict[str, tuple[str, str]] = {
    "fish_low_resolution": ("fish", "fish_low_resolution.obj"),
    "fish": ("fish", "fish.obj"),
    "cow": ("cow", "cow.obj"),
    "torus": ("torus", "torus.obj"),
    "blob": ("blob", "blob.obj"),
    "jack": ("jack", "jack.obj"),
}


def bundled_path(name: str) -> Path:
    """Path of a bundled mesh.

    Args:
        name: one of ``BUNDLED``'s keys.

    Returns:
        The OBJ file's path (package data, installed with the wheel).

    Raises:
        ValueError: ``name`` is not a bundled mesh.
    """
    if name not in BUNDLED:
        raise ValueError(f"no bundled mesh named {name!r} (bundled: {', '.join(sorted(BUNDLED))})")
    folder, file = BUNDLED[name]
    return Path(str(resources.files("diffmesh.fit").joinpath("data", folder, file)))


def resolve_mesh_path(value: str | Path, *, argument: str = "MESH") -> Path:
    """Turn a mesh argument (a file path or a bundled name) into an existing file path.

    Args:
        value: a path to an OBJ file, or a bundled name such as ``"cow"``.
        argument: the argument's name, used in the error message.

    Returns:
        The path of a readable regular file.

    Raises:
        FileNotFoundError: neither a file nor a bundled name.
        ValueError: the path is a folder.
    """
    path = Path(value).expanduser()
    if path.is_dir():
        raise ValueError(f"{argument}: expected an OBJ file, got the folder {str(path)!r}")
    if path.is_file():
        return path
    if str(value) in BUNDLED:
        return bundled_path(str(value))
    raise FileNotFoundError(
        f"{argument}: file not found: {str(path)!r} (or use a bundled mesh: "
        f"{', '.join(sorted(BUNDLED))})"
    )
