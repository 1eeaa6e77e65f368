"""Loading Wavefront OBJ files: ``load_obj`` (plain tensors) and ``load_objs_as_meshes``."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import IO, NamedTuple

import torch
from diffmesh.meshcore import Meshes, TexturesUV, join_meshes_as_batch

from ._devices import as_device
from ._obj_parse import ObjArrays, parse_obj_bytes
from .mtl import MaterialWarning, load_mtl

__all__ = ["ObjAux", "ObjFaces", "load_obj", "load_objs_as_meshes"]

PathOrFile = str | os.PathLike[str] | IO[bytes] | IO[str]


class ObjFaces(NamedTuple):
    """The faces of an OBJ file, fan-triangulated (PyTorch3D's ``Faces``).

    Attributes:
        verts_idx: (F, 3) int64 indices into ``verts``.
        normals_idx: (F, 3) int64 indices into ``aux.normals``, -1 where a corner has none.
        textures_idx: (F, 3) int64 indices into ``aux.verts_uvs``, -1 where a corner has none.
        materials_idx: (F,) int64 index of each face's material in the order of first
            ``usemtl`` (the keys of ``aux.material_colors`` are the names), -1 before any.
    """

    verts_idx: torch.Tensor
    normals_idx: torch.Tensor
    textures_idx: torch.Tensor
    materials_idx: torch.Tensor


class ObjAux(NamedTuple):
    """Everything of an OBJ file besides positions and faces (PyTorch3D's ``Properties``).

    Attributes:
        normals: (N, 3) float32 ``vn`` vectors, or None if the file has none.
        verts_uvs: (T, 2) float32 ``vt`` coordinates (v = 0 is the bottom of the image), or None.
        material_colors: ``{material: {"ambient_color": (3,), "diffuse_color": (3,),
            "specular_color": (3,), "shininess": (1,)}}`` float32 (keys the MTL sets), or None
            when no material library was loaded. The used materials come first, in the order
            of ``faces.materials_idx``: ``list(material_colors)[i]`` is material i.
        texture_images: ``{material: (H, W, 3) float32 in [0, 1]}`` for the used materials with
            a ``map_Kd``, or None when no material library was loaded.
        texture_atlas: always None (per-face atlases are not implemented; kept for PyTorch3D's
            field layout).
        verts_colors: (V, 3) float32 colours from ``v x y z r g b`` lines, or None.
    """

    normals: torch.Tensor | None
    verts_uvs: torch.Tensor | None
    material_colors: dict[str, dict[str, torch.Tensor]] | None
    texture_images: dict[str, torch.Tensor] | None
    texture_atlas: None
    verts_colors: torch.Tensor | None


_HEAD_BYTES = 1 << 16  # the first block, checked for binary content before the rest is read


def _check_head(head: bytes, name: str) -> None:
    """Refuse binary content from the file's first block, before the rest is read.

    Raises:
        ValueError: the block holds a NUL byte, or invalid UTF-8 (other than a multi-byte
            character cut at the block's end).
    """
    if b"\0" in head:
        raise ValueError(f"{name}: not an OBJ text file (it contains NUL bytes)")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.reason != "unexpected end of data":  # a character cut at the end is fine
            raise ValueError(
                f"{name}: not an OBJ text file (invalid UTF-8 at byte {err.start})"
            ) from err


def _read_stream(f: IO[bytes] | IO[str], name: str) -> bytes:
    """All bytes of an open file, its first block checked before the rest is read."""
    head = f.read(_HEAD_BYTES)
    if isinstance(head, str):
        head = head.encode("utf-8")
    if not isinstance(head, (bytes, bytearray)):
        raise TypeError(f"f.read() must return bytes or str, got {type(head).__name__}")
    _check_head(bytes(head), name)
    rest = f.read()
    if isinstance(rest, str):
        rest = rest.encode("utf-8")
    return bytes(head) + bytes(rest) if rest else bytes(head)


def _read(f: PathOrFile) -> tuple[bytes, str, Path]:
    """The bytes of ``f``, its name for messages, and the folder material paths are relative to.

    Binary content (a NUL byte or invalid UTF-8 in the first 64 KiB) is refused before the
    rest of the file is read, so that a large binary file costs one block of memory.
    """
    if isinstance(f, (str, os.PathLike)):
        path = Path(f)
        with open(path, "rb") as handle:
            if handle.seekable():
                _check_head(handle.read(_HEAD_BYTES), str(path))
                handle.seek(0)
                data = handle.read()
            else:  # a pipe: keep the block read
                data = _read_stream(handle, str(path))
        return data, str(path), path.parent
    if hasattr(f, "read"):
        name = getattr(f, "name", None)
        if isinstance(name, str):
            return _read_stream(f, name), name, Path(name).parent
        return _read_stream(f, "<stream>"), "<stream>", Path.cwd()
    raise TypeError(f"f must be a path (str or os.PathLike) or an open file, got {type(f).__name__}")


def _materials(
    arrays: ObjArrays, data_dir: Path, name: str, device: torch.device
) -> tuple[dict[str, dict[str, torch.Tensor]] | None, dict[str, torch.Tensor] | None]:
    """Colours and texture images of the OBJ's material libraries (warning on missing files)."""
    if not arrays.mtllibs:
        if arrays.material_names:
            warnings.warn(
                f"{name}: usemtl without an mtllib; materials {arrays.material_names} have no "
                "colours or textures",
                MaterialWarning,
                stacklevel=3,
            )
        return None, None
    colors: dict[str, dict[str, torch.Tensor]] = {}
    images: dict[str, torch.Tensor] = {}
    loaded = False
    for lib in arrays.mtllibs:  # one entry per mtllib directive
        path = data_dir / lib
        if not path.is_file():  # "mtllib a.mtl b.mtl": several files on one line
            parts = [data_dir / p for p in lib.split()]
            if len(parts) > 1 and all(p.is_file() for p in parts):
                candidates = parts
            else:
                warnings.warn(
                    f"{name}: material library {str(path)!r} not found; geometry is loaded "
                    "without its colours and textures",
                    MaterialWarning,
                    stacklevel=3,
                )
                continue
        else:
            candidates = [path]
        for candidate in candidates:
            c, i = load_mtl(candidate, material_names=arrays.material_names, device=device)
            colors.update(c)
            images.update(i)
            loaded = True
    if not loaded:
        return None, None
    undefined = [m for m in arrays.material_names if m not in colors]
    if undefined:
        warnings.warn(
            f"{name}: materials {undefined} are used but not defined in {arrays.mtllibs}",
            MaterialWarning,
            stacklevel=3,
        )
    # Used materials first, in usemtl order: list(material_colors)[i] is material i.
    ordered = {m: colors.get(m, {}) for m in arrays.material_names}
    ordered.update({m: c for m, c in colors.items() if m not in ordered})
    return ordered, images


def load_obj(
    f: PathOrFile,
    load_textures: bool = True,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, ObjFaces, ObjAux]:
    """Load an OBJ file (and its MTL materials and texture images).

    Handles ``v`` (with optional ``w`` or ``r g b``), ``vt``, ``vn``, polygons (fan-triangulated
    as (c0, c_i+1, c_i+2)), the corner forms ``v``, ``v/vt``, ``v//vn``, ``v/vt/vn``, negative
    indices (relative to the elements defined so far, as the OBJ spec says), ``usemtl``,
    ``mtllib``, comments, blank lines, CRLF, tabs, line continuations and a leading UTF-8
    byte-order mark; other directives are ignored. Parsing is vectorized over whole blocks of
    lines. Binary content is refused from the first 64 KiB, before the rest is read.

    Args:
        f: a path (str or os.PathLike) or an open file (binary or text mode); material paths are
            relative to the file's folder (the working directory for an unnamed stream).
        load_textures: read the MTL files and texture images; if False, ``material_colors`` and
            ``texture_images`` are None.
        device: where the returned tensors live.

    Returns:
        ``(verts, faces, aux)``: verts is (V, 3) float32; faces is an :class:`ObjFaces`, aux an
        :class:`ObjAux`. An empty file gives V = F = 0.

    Raises:
        FileNotFoundError: the file does not exist.
        TypeError: ``f`` is neither a path nor a readable file.
        ValueError: ``"{file}:{line}: ..."`` for a malformed line (non-numeric or missing
            values, a number beyond float32's range, index 0 or out of range, a face with
            fewer than 3 corners, ...), or a file that is not UTF-8 text (NUL bytes).

    Warns:
        MaterialWarning: a material library or texture image is missing or unreadable; the
            geometry still loads.
    """
    device = as_device(device)
    data, name, data_dir = _read(f)
    arrays = parse_obj_bytes(data, name)
    material_colors = texture_images = None
    if load_textures:
        material_colors, texture_images = _materials(arrays, data_dir, name, device)

    def floats(a):  # float64 numpy -> float32 tensor on device
        return torch.from_numpy(a).to(device=device, dtype=torch.float32)

    def longs(a):
        return torch.from_numpy(a).to(device=device, dtype=torch.int64)

    faces = ObjFaces(
        verts_idx=longs(arrays.faces_verts),
        normals_idx=longs(arrays.faces_normals),
        textures_idx=longs(arrays.faces_uvs),
        materials_idx=longs(arrays.faces_materials),
    )
    aux = ObjAux(
        normals=floats(arrays.normals) if arrays.normals.shape[0] else None,
        verts_uvs=floats(arrays.verts_uvs) if arrays.verts_uvs.shape[0] else None,
        material_colors=material_colors,
        texture_images=texture_images,
        texture_atlas=None,
        verts_colors=None if arrays.verts_colors is None else floats(arrays.verts_colors),
    )
    return floats(arrays.verts), faces, aux


def _atlas(
    images: list[torch.Tensor], faces_image: torch.Tensor, corner_uvs: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Place images side by side (top-aligned) and move each face's uvs into its image's tile.

    Args:
        images: K images (H_k, W_k, 3).
        faces_image: (F,) int64 which image each face uses.
        corner_uvs: (F, 3, 2) uvs of the face corners, clamped to [0, 1].

    Returns:
        (H, sum W_k, 3) atlas and the (F, 3, 2) uvs in it (v = 0 at the atlas' bottom row).
    """
    heights = torch.tensor([im.shape[0] for im in images], dtype=torch.float32)
    widths = torch.tensor([im.shape[1] for im in images], dtype=torch.float32)
    height, width = int(heights.max()), int(widths.sum())
    atlas = torch.cat(
        [torch.nn.functional.pad(im, (0, 0, 0, 0, 0, height - im.shape[0])) for im in images],
        dim=1,
    )
    left = (torch.cumsum(widths, 0) - widths).to(corner_uvs.device)[faces_image][:, None]
    tile_w = widths.to(corner_uvs.device)[faces_image][:, None]
    tile_h = heights.to(corner_uvs.device)[faces_image][:, None]
    u = (left + corner_uvs[..., 0] * tile_w) / width
    v = 1.0 - (1.0 - corner_uvs[..., 1]) * tile_h / height  # tiles hang from the top row
    return atlas, torch.stack([u, v], dim=-1)


def _textures_uv(faces: ObjFaces, aux: ObjAux, name: str) -> TexturesUV | None:
    """A TexturesUV from the used materials' maps (several maps: a side-by-side atlas)."""
    images = aux.texture_images
    if not images:
        return None
    if aux.verts_uvs is None:
        warnings.warn(
            f"{name}: the materials name texture maps but the file has no vt coordinates; "
            "the mesh is loaded without textures",
            MaterialWarning,
            stacklevel=3,
        )
        return None
    verts_uvs = aux.verts_uvs
    faces_uvs = faces.textures_idx
    missing = faces_uvs < 0
    if missing.any():  # corners without vt sample the map at (0, 0)
        verts_uvs = torch.cat([verts_uvs, verts_uvs.new_zeros(1, 2)])
        faces_uvs = torch.where(missing, verts_uvs.shape[0] - 1, faces_uvs)
    if len(images) == 1:
        image = next(iter(images.values()))
        return TexturesUV(maps=[image], faces_uvs=[faces_uvs], verts_uvs=[verts_uvs])
    # Several maps: an atlas. Material i is list(material_colors)[i] (see _materials); faces
    # of a material without a map, or of none, use the first map.
    ordered = list(images)
    names = list(aux.material_colors or {})
    lookup = torch.tensor(
        [ordered.index(n) if n in images else 0 for n in names] + [0], dtype=torch.int64
    ).to(faces_uvs.device)
    mat = faces.materials_idx
    faces_image = lookup[torch.where(mat < 0, len(names), mat)]
    corner_uvs = verts_uvs[faces_uvs].clamp(0.0, 1.0)
    atlas, atlas_uvs = _atlas([images[n] for n in ordered], faces_image, corner_uvs)
    num_faces = faces_uvs.shape[0]
    new_faces_uvs = torch.arange(num_faces * 3, device=faces_uvs.device).view(num_faces, 3)
    return TexturesUV(maps=[atlas], faces_uvs=[new_faces_uvs], verts_uvs=[atlas_uvs.view(-1, 2)])


def load_objs_as_meshes(
    files: PathOrFile | Sequence[PathOrFile],
    device: str | torch.device | None = None,
    load_textures: bool = True,
) -> Meshes:
    """Load OBJ files as one batch of meshes, textured when their materials name a map.

    Each mesh gets a :class:`TexturesUV` when its used materials have ``map_Kd`` images and the
    file has ``vt`` coordinates: with one map, that map (PyTorch3D's behaviour); with several,
    an atlas of the maps side by side (uvs clamped to [0, 1], so repeating textures do not
    repeat). Files without maps get ``textures=None``; a batch must be all textured or all not.

    Args:
        files: one path or open file, or a sequence of them.
        device: where the meshes live (default CPU).
        load_textures: read materials and texture maps.

    Returns:
        Meshes with one mesh per file.

    Raises:
        As :func:`load_obj`; ValueError for an empty ``files``.
    """
    if isinstance(files, (str, os.PathLike)) or hasattr(files, "read"):
        files = [files]  # type: ignore[list-item]
    if not isinstance(files, Sequence) or isinstance(files, (bytes, bytearray)):
        raise TypeError(f"files must be a path or a sequence of paths, got {type(files).__name__}")
    if len(files) == 0:
        raise ValueError("files must name at least one OBJ file, got an empty sequence")
    device = as_device(device)
    meshes = []
    for f in files:  # one entry per file
        verts, faces, aux = load_obj(f, load_textures=load_textures, device=device)
        textures = _textures_uv(faces, aux, str(getattr(f, "name", f))) if load_textures else None
        meshes.append(Meshes(verts=[verts], faces=[faces.verts_idx], textures=textures))
    return meshes[0] if len(meshes) == 1 else join_meshes_as_batch(meshes)
