"""Loading Wavefront OBJ files: ``load_obj`` (plain tensors) and ``load_objs_as_meshes``."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import IO, NamedTuple

import torch
from diffmesh.meshcore import (
    Meshes,
    TexturesAtlas,
    TexturesUV,
    TexturesVertex,
    join_meshes_as_batch,
)

from ._devices import as_device
from ._obj_parse import ObjArrays, parse_obj_bytes
from .mtl import MaterialWarning, load_mtl
from .texture_atlas import TEXTURE_WRAPS, make_texture_atlas

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
        texture_atlas: (F, R, R, 3) float32 per-face atlas with ``create_texture_atlas=True``
            (the layout of :class:`~diffmesh.meshcore.TexturesAtlas`), else None; None too
            when no material library was loaded.
        verts_colors: (V, 3) float32 colours from ``v x y z r g b`` lines, or None.
    """

    normals: torch.Tensor | None
    verts_uvs: torch.Tensor | None
    material_colors: dict[str, dict[str, torch.Tensor]] | None
    texture_images: dict[str, torch.Tensor] | None
    texture_atlas: torch.Tensor | None
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
    create_texture_atlas: bool = False,
    texture_atlas_size: int = 4,
    texture_wrap: str | None = "repeat",
    device: str | torch.device = "cpu",
    path_manager: object = None,
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
        load_textures: read the MTL files and texture images; if False, ``material_colors``,
            ``texture_images`` and ``texture_atlas`` are None.
        create_texture_atlas: also build ``aux.texture_atlas``, an (F, R, R, 3) per-face atlas
            (PyTorch3D's and SoftRasterizer's): a face is white, or its material's diffuse
            colour, or, when its material has a texture image and its corners have ``vt``,
            the image sampled (bilinearly, corner UVs at pixel centres) at the centroid of
            each of the R x R sub-triangles of the face.
        texture_atlas_size: R, the atlas resolution (>= 1).
        texture_wrap: how the atlas treats UVs outside [0, 1]: ``"repeat"`` (default; only the
            fractional part is kept), ``"clamp"`` (clamped to [0, 1]) or None (as they are:
            outside the image reads black).
        device: where the returned tensors live.
        path_manager: accepted for PyTorch3D compatibility (its iopath ``PathManager``) and
            unused: files are opened with the local file system, or read from ``f`` if it is
            an open file.

    Returns:
        ``(verts, faces, aux)``: verts is (V, 3) float32; faces is an :class:`ObjFaces`, aux an
        :class:`ObjAux`. An empty file gives V = F = 0.

    Raises:
        FileNotFoundError: the file does not exist.
        TypeError: ``f`` is neither a path nor a readable file, or ``texture_atlas_size`` is
            not an int.
        ValueError: ``"{file}:{line}: ..."`` for a malformed line (non-numeric or missing
            values, a number beyond float32's range, index 0 or out of range, a face with
            fewer than 3 corners, ...), a file that is not UTF-8 text (NUL bytes),
            ``texture_atlas_size < 1`` or an unknown ``texture_wrap``.

    Warns:
        MaterialWarning: a material library or texture image is missing or unreadable; the
            geometry still loads.
    """
    del path_manager  # accepted for PyTorch3D's signature; local files only
    _check_atlas_args(texture_atlas_size, texture_wrap)
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
    verts_uvs = floats(arrays.verts_uvs) if arrays.verts_uvs.shape[0] else None
    texture_atlas = None
    if create_texture_atlas and material_colors is not None:
        texture_atlas = make_texture_atlas(
            material_colors,
            texture_images or {},
            faces.materials_idx,
            faces.textures_idx,
            verts_uvs,
            texture_atlas_size,
            texture_wrap,
        )
    aux = ObjAux(
        normals=floats(arrays.normals) if arrays.normals.shape[0] else None,
        verts_uvs=verts_uvs,
        material_colors=material_colors,
        texture_images=texture_images,
        texture_atlas=texture_atlas,
        verts_colors=None if arrays.verts_colors is None else floats(arrays.verts_colors),
    )
    return floats(arrays.verts), faces, aux


def _check_atlas_args(texture_atlas_size: object, texture_wrap: object) -> None:
    if isinstance(texture_atlas_size, bool) or not isinstance(texture_atlas_size, int):
        raise TypeError(
            f"texture_atlas_size must be an int, got {type(texture_atlas_size).__name__}"
        )
    if texture_atlas_size < 1:
        raise ValueError(f"texture_atlas_size must be >= 1, got {texture_atlas_size}")
    if texture_wrap not in TEXTURE_WRAPS:
        raise ValueError(f"texture_wrap must be one of {TEXTURE_WRAPS}, got {texture_wrap!r}")


def _same_size(images: list[torch.Tensor]) -> torch.Tensor:
    """(K, H, W, 3): the images resized bilinearly to the largest height and width."""
    height = max(im.shape[0] for im in images)
    width = max(im.shape[1] for im in images)
    out = [
        im
        if im.shape[:2] == (height, width)
        else torch.nn.functional.interpolate(
            im.permute(2, 0, 1)[None], size=(height, width), mode="bilinear", align_corners=False
        )[0].permute(1, 2, 0)
        for im in images
    ]
    return torch.stack(out)


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
    # Several maps: one stack, each face reading its material's map (maps_ids). Material i
    # is list(material_colors)[i] (see _materials); faces of a material without a map, or
    # of none, read the first map.
    ordered = list(images)
    names = list(aux.material_colors or {})
    lookup = torch.tensor(
        [ordered.index(n) if n in images else 0 for n in names] + [0], dtype=torch.int64
    ).to(faces_uvs.device)
    mat = faces.materials_idx
    maps_ids = lookup[torch.where(mat < 0, len(names), mat)]
    maps = _same_size([images[n] for n in ordered])
    return TexturesUV(
        maps=[maps], faces_uvs=[faces_uvs], verts_uvs=[verts_uvs], maps_ids=[maps_ids]
    )


def _texture_atlas(faces: ObjFaces, aux: ObjAux, size: int) -> TexturesAtlas:
    """aux.texture_atlas as a TexturesAtlas (all white when the file has no materials)."""
    atlas = aux.texture_atlas
    if atlas is None:
        atlas = torch.ones(faces.verts_idx.shape[0], size, size, 3, device=faces.verts_idx.device)
    return TexturesAtlas(atlas=[atlas])


def load_objs_as_meshes(
    files: PathOrFile | Sequence[PathOrFile],
    device: str | torch.device | None = None,
    load_textures: bool = True,
    create_texture_atlas: bool = False,
    texture_atlas_size: int = 4,
    texture_wrap: str | None = "repeat",
    path_manager: object = None,
) -> Meshes:
    """Load OBJ files as one batch of meshes, textured when their materials name a map.

    Without ``create_texture_atlas``, each mesh gets a :class:`TexturesUV` when its used
    materials have ``map_Kd`` images and the file has ``vt`` coordinates: with one map, that
    map (PyTorch3D's behaviour); with several, all of them (resized to the largest) with
    ``maps_ids`` giving each face its material's map (faces of a material without a map read
    the first map). Files without maps but with ``v x y z r g b`` colours get a
    :class:`TexturesVertex` of those colours; others ``textures=None``. A batch must have one
    kind of texture (or none) throughout. With ``create_texture_atlas``, each mesh gets a
    :class:`TexturesAtlas` built as :func:`load_obj` describes (all white for a file without
    materials, where PyTorch3D fails).

    Args:
        files: one path or open file, or a sequence of them.
        device: where the meshes live (default CPU).
        load_textures: read materials and texture maps (if False, no textures).
        create_texture_atlas, texture_atlas_size, texture_wrap: as in :func:`load_obj`.
        path_manager: accepted for PyTorch3D compatibility and unused (see :func:`load_obj`).

    Returns:
        Meshes with one mesh per file.

    Raises:
        As :func:`load_obj`; ValueError for an empty ``files``.
    """
    del path_manager  # accepted for PyTorch3D's signature; local files only
    if isinstance(files, (str, os.PathLike)) or hasattr(files, "read"):
        files = [files]  # type: ignore[list-item]
    if not isinstance(files, Sequence) or isinstance(files, (bytes, bytearray)):
        raise TypeError(f"files must be a path or a sequence of paths, got {type(files).__name__}")
    if len(files) == 0:
        raise ValueError("files must name at least one OBJ file, got an empty sequence")
    device = as_device(device)
    meshes = []
    for f in files:  # one entry per file
        verts, faces, aux = load_obj(
            f,
            load_textures=load_textures,
            create_texture_atlas=create_texture_atlas,
            texture_atlas_size=texture_atlas_size,
            texture_wrap=texture_wrap,
            device=device,
        )
        textures = None
        if load_textures and create_texture_atlas:
            textures = _texture_atlas(faces, aux, texture_atlas_size)
        elif load_textures:
            textures = _textures_uv(faces, aux, str(getattr(f, "name", f)))
        if textures is None and load_textures and aux.verts_colors is not None:
            textures = TexturesVertex([aux.verts_colors])  # `v x y z r g b` without a map
        meshes.append(Meshes(verts=[verts], faces=[faces.verts_idx], textures=textures))
    return meshes[0] if len(meshes) == 1 else join_meshes_as_batch(meshes)
