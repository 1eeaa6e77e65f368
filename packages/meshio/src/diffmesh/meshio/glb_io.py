"""Binary glTF 2.0 (``.glb``): ``save_glb`` for viewers, and ``load_glb`` for its meshes.

Layout written (glTF 2.0 specification, "GLB File Format Specification"): a 12-byte header
(magic ``glTF``, version 2, total length), a JSON chunk padded with spaces and a BIN chunk
padded with zeros, each to a multiple of 4 bytes; one buffer view per attribute, each starting
at a multiple of 4 bytes; POSITION (float VEC3, with the ``min``/``max`` the specification
requires), NORMAL (unit float VEC3), COLOR_0 (float VEC3) and indices (unsigned int SCALAR).
"""

from __future__ import annotations

import json
import struct

import numpy as np
import torch

from ._devices import as_device
from ._source import PathOrFile, read_source, write_target
from ._tables import float_table, index_table

__all__ = ["load_glb", "save_glb"]

_MAGIC, _JSON, _BIN = 0x46546C67, 0x4E4F534A, 0x004E4942
_FLOAT, _UINT, _USHORT, _UBYTE = 5126, 5125, 5123, 5121
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_TRIANGLES, _POINTS = 4, 0
_COMPONENTS = {_FLOAT: "<f4", _UINT: "<u4", _USHORT: "<u2", _UBYTE: "<u1", 5122: "<i2", 5120: "<i1"}
_WIDTHS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}


def _pad(data: bytes, fill: bytes) -> bytes:
    return data + fill * (-len(data) % 4)


def save_glb(
    f: PathOrFile,
    verts: torch.Tensor,
    faces: torch.Tensor | None = None,
    verts_normals: torch.Tensor | None = None,
    verts_colors: torch.Tensor | None = None,
) -> None:
    """Save a mesh (or, without faces, a point cloud) as a binary glTF 2.0 file, atomically.

    The file holds one scene with one node and one mesh primitive (triangles, or points when
    ``faces`` is None). glTF's axes are +Y up and +Z towards the viewer, which is how
    PyTorch3D-style meshes are usually modelled; no transform is applied.

    Args:
        f: destination path (temporary file + rename) or an open binary file.
        verts: (V, 3) float positions (V >= 1), written as float32.
        faces: (F, 3) integer 0-based indices into verts (counter-clockwise front faces, as
            glTF expects), or None (or F = 0) for a point cloud.
        verts_normals: (V, 3) float normals, normalized to unit length on writing (the
            specification requires it; a zero normal stays zero), or None.
        verts_colors: (V, 3) float colours, clamped to [0, 1], written as given (glTF reads
            COLOR_0 as linear RGB), or None.

    Raises:
        TypeError: an argument of the wrong type.
        ValueError: wrong shapes, no vertices, indices out of range, non-finite values.
    """
    v = float_table(verts, "verts", 3).astype(np.float32)
    if v.shape[0] == 0:
        raise ValueError("verts must hold at least one vertex (glTF accessors cannot be empty)")
    num_verts = v.shape[0]
    blobs: list[tuple[bytes, int | None]] = [(v.tobytes(), _ARRAY_BUFFER)]
    accessors = [{"bufferView": 0, "componentType": _FLOAT, "count": num_verts, "type": "VEC3",
                  "min": v.min(axis=0).tolist(), "max": v.max(axis=0).tolist()}]  # fmt: skip
    attributes = {"POSITION": 0}

    def attribute(key: str, table: np.ndarray) -> None:
        if table.shape[0] != num_verts:
            raise ValueError(
                f"{key} must have one row per vertex ({num_verts}), got {table.shape[0]}"
            )
        blobs.append((table.astype("<f4").tobytes(), _ARRAY_BUFFER))
        accessors.append({"bufferView": len(blobs) - 1, "componentType": _FLOAT,
                          "count": num_verts, "type": "VEC3"})  # fmt: skip

    if verts_normals is not None:
        n = float_table(verts_normals, "verts_normals", 3)
        length = np.linalg.norm(n, axis=1, keepdims=True)
        attribute("verts_normals", n / np.where(length > 0, length, 1.0))
        attributes["NORMAL"] = len(accessors) - 1
    if verts_colors is not None:
        attribute("verts_colors", np.clip(float_table(verts_colors, "verts_colors", 3), 0.0, 1.0))
        attributes["COLOR_0"] = len(accessors) - 1
    primitive: dict = {"attributes": attributes, "mode": _POINTS}
    if faces is not None:
        fv = index_table(faces, "faces", num_verts)
        if fv.shape[0]:  # no faces: points (triangles without indices would join vertices)
            primitive["mode"] = _TRIANGLES
            blobs.append((fv.astype("<u4").tobytes(), _ELEMENT_ARRAY_BUFFER))
            accessors.append({"bufferView": len(blobs) - 1, "componentType": _UINT,
                              "count": int(fv.size), "type": "SCALAR"})  # fmt: skip
            primitive["indices"] = len(accessors) - 1

    views, offset = [], 0
    for blob, target in blobs:  # one buffer view per attribute, each 4-byte aligned
        views.append({"buffer": 0, "byteOffset": offset, "byteLength": len(blob), "target": target})
        offset += len(blob) + (-len(blob) % 4)
    binary = b"".join(_pad(blob, b"\x00") for blob, _ in blobs)
    document = {
        "asset": {"version": "2.0", "generator": "diffmesh"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [primitive]}],
        "buffers": [{"byteLength": len(binary)}],
        "bufferViews": views,
        "accessors": accessors,
    }
    text = _pad(json.dumps(document, separators=(",", ":")).encode("utf-8"), b" ")
    total = 12 + 8 + len(text) + 8 + len(binary)
    out = b"".join([
        struct.pack("<III", _MAGIC, 2, total),
        struct.pack("<II", len(text), _JSON), text,
        struct.pack("<II", len(binary), _BIN), binary,
    ])  # fmt: skip
    write_target(f, out, text_ok=False)


def _chunks(data: bytes, name: str) -> tuple[dict, bytes]:
    if len(data) < 20 or struct.unpack_from("<I", data, 0)[0] != _MAGIC:
        raise ValueError(f"{name}: not a binary glTF file (no 'glTF' magic)")
    version, total = struct.unpack_from("<II", data, 4)
    if version != 2:
        raise ValueError(f"{name}: glTF version {version} is not supported (expected 2)")
    if total > len(data):
        raise ValueError(f"{name}: GLB header declares {total} bytes, the file has {len(data)}")
    document, binary, pos = None, b"", 12
    while pos + 8 <= total:  # one iteration per chunk; each advances pos by >= 8
        length, kind = struct.unpack_from("<II", data, pos)
        if pos + 8 + length > total:
            raise ValueError(f"{name}: GLB chunk at byte {pos} runs past the end of the file")
        payload = data[pos + 8 : pos + 8 + length]
        if kind == _JSON and document is None:
            try:
                document = json.loads(payload.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as err:
                raise ValueError(f"{name}: GLB JSON chunk is not valid JSON: {err}") from None
        elif kind == _BIN and not binary:
            binary = payload
        pos += 8 + length
    if not isinstance(document, dict):
        raise ValueError(f"{name}: GLB file has no JSON chunk holding an object")
    return document, binary


def _accessor(document: dict, binary: bytes, index: object, name: str, types: tuple) -> np.ndarray:
    """The (count, width) values of accessor ``index`` (tightly packed or strided)."""
    try:
        acc = document["accessors"][index]
        view = document["bufferViews"][acc["bufferView"]]
        dtype = np.dtype(_COMPONENTS[acc["componentType"]])
        width, count = _WIDTHS[acc["type"]], int(acc["count"])
        start = int(view.get("byteOffset", 0)) + int(acc.get("byteOffset", 0))
        stride = int(view.get("byteStride", 0)) or dtype.itemsize * width
        if int(view.get("buffer", 0)) != 0:
            raise ValueError("only the GLB's own buffer (0) is supported")
    except (AttributeError, KeyError, IndexError, TypeError, ValueError) as err:
        raise ValueError(
            f"{name}: glTF accessor {index!r} is malformed or unsupported: {err}"
        ) from None
    if acc["type"] not in types:
        raise ValueError(f"{name}: glTF accessor {index} has type {acc['type']}, expected {types}")
    end = start + (count - 1) * stride + dtype.itemsize * width if count else start
    if start < 0 or count < 0 or end > len(binary) or stride < dtype.itemsize * width:
        raise ValueError(f"{name}: glTF accessor {index} reaches outside the binary chunk")
    if count == 0:
        return np.zeros((0, width), dtype)
    rows = np.lib.stride_tricks.as_strided(
        np.frombuffer(binary, np.uint8, end - start, start), (count, dtype.itemsize * width),
        (stride, 1), writeable=False,
    )  # fmt: skip
    values = np.ascontiguousarray(rows).view(dtype).reshape(count, width)
    if acc.get("normalized") and dtype.kind == "u":
        return values / float(np.iinfo(dtype).max)
    return values


def load_glb(
    f: PathOrFile, *, device: str | torch.device = "cpu"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Load the triangle meshes of a binary glTF 2.0 file, joined into one.

    Reads every triangle primitive (mode 4) of every mesh in ``meshes`` (node transforms,
    materials and textures are not applied): POSITION, indices (or none: consecutive
    triangles), NORMAL and COLOR_0 (RGB of VEC3/VEC4, float or normalized integers).

    Args:
        f: a path (str or os.PathLike) or an open binary file.
        device: where the returned tensors live.

    Returns:
        ``(verts, faces, verts_normals, verts_colors)``: (V, 3) float32, (F, 3) int64, and
        (V, 3) float32 or None (None unless every primitive has them).

    Raises:
        ValueError: naming the file, for anything but a well-formed GLB whose accessors lie
            inside its binary chunk.
    """
    device = as_device(device)
    data, name = read_source(f)
    document, binary = _chunks(data, name)
    verts, faces, normals, colors = [], [], [], []
    base = 0
    meshes = document.get("meshes", [])
    if not isinstance(meshes, list):
        raise ValueError(f"{name}: glTF 'meshes' must be a list")
    for mesh in meshes:  # one iteration per glTF mesh
        prims = mesh.get("primitives") if isinstance(mesh, dict) else None
        for prim in prims if isinstance(prims, list) else []:
            if not isinstance(prim, dict) or prim.get("mode", _TRIANGLES) != _TRIANGLES:
                continue
            attrs = prim.get("attributes", {})
            if not isinstance(attrs, dict) or "POSITION" not in attrs:
                raise ValueError(f"{name}: glTF primitive without POSITION")
            v = _accessor(document, binary, attrs["POSITION"], name, ("VEC3",))
            if "indices" in prim:
                idx = _accessor(document, binary, prim["indices"], name, ("SCALAR",))
                idx = idx.reshape(-1).astype(np.int64)
            else:
                idx = np.arange(v.shape[0] - v.shape[0] % 3, dtype=np.int64)
            if idx.size % 3 or (idx.size and (idx.min() < 0 or idx.max() >= v.shape[0])):
                raise ValueError(
                    f"{name}: glTF indices are not triangles into {v.shape[0]} vertices"
                )
            verts.append(v.astype(np.float32))
            faces.append(idx.reshape(-1, 3) + base)
            base += v.shape[0]
            n = attrs.get("NORMAL")
            normals.append(None if n is None else _accessor(document, binary, n, name, ("VEC3",)))
            c = attrs.get("COLOR_0")
            colors.append(
                None if c is None else _accessor(document, binary, c, name, ("VEC3", "VEC4"))[:, :3]
            )
    if not verts:
        raise ValueError(f"{name}: GLB file has no triangle mesh")

    def joined(parts: list) -> torch.Tensor | None:
        if any(p is None for p in parts):
            return None
        return torch.from_numpy(np.concatenate(parts).astype(np.float32)).to(device)

    positions = np.concatenate(verts)
    if not np.isfinite(positions).all():
        raise ValueError(f"{name}: glTF POSITION values are not finite")
    return (
        torch.from_numpy(positions).to(device),
        torch.from_numpy(np.concatenate(faces)).to(device),
        joined(normals),
        joined(colors),
    )
