"""save_glb against the glTF 2.0 GLB layout (read back by hand with struct), and load_glb."""

from __future__ import annotations

import io
import json
import struct

import numpy as np
import pytest
import torch
from diffmesh.meshio import ico_sphere, load_glb, save_glb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# unit vectors (normals, colours in [0, 1]) after float32 normalisation or a float32 round trip
UNIT_ATOL = 8 * float(np.finfo(np.float32).eps)

COMPONENT = {5126: "<f4", 5125: "<u4"}


def _parse(raw: bytes) -> tuple[dict, bytes]:
    """A reference GLB reader following the specification's text, one check per rule."""
    magic, version, length = struct.unpack_from("<III", raw, 0)
    assert magic == 0x46546C67 and version == 2 and length == len(raw)
    json_len, json_type = struct.unpack_from("<II", raw, 12)
    assert json_type == 0x4E4F534A and json_len % 4 == 0
    text = raw[20 : 20 + json_len]
    assert text == text.rstrip(b" ") + b" " * (len(text) - len(text.rstrip(b" ")))  # space padding
    bin_len, bin_type = struct.unpack_from("<II", raw, 20 + json_len)
    assert bin_type == 0x004E4942 and bin_len % 4 == 0
    assert 28 + json_len + bin_len == len(raw)
    document = json.loads(text)
    binary = raw[28 + json_len :]
    assert document["buffers"] == [{"byteLength": bin_len}]
    return document, binary


def _read(document: dict, binary: bytes, index: int) -> np.ndarray:
    acc = document["accessors"][index]
    view = document["bufferViews"][acc["bufferView"]]
    width = {"SCALAR": 1, "VEC3": 3}[acc["type"]]
    dtype = np.dtype(COMPONENT[acc["componentType"]])
    assert view["byteOffset"] % 4 == 0 and acc.get("byteOffset", 0) == 0
    assert view["byteLength"] == acc["count"] * width * dtype.itemsize
    assert view["byteOffset"] + view["byteLength"] <= len(binary)
    start = view["byteOffset"]
    return np.frombuffer(binary[start : start + view["byteLength"]], dtype).reshape(-1, width)


def test_layout_follows_the_specification():
    mesh = ico_sphere(1)
    verts, faces = mesh.verts_packed() * torch.tensor([1.0, 2.0, 3.0]), mesh.faces_packed()
    normals = mesh.verts_normals_packed() * 3.0  # not unit: the writer normalizes
    colors = (verts - verts.min()) / (verts.max() - verts.min())
    stream = io.BytesIO()
    save_glb(stream, verts, faces, verts_normals=normals, verts_colors=colors)
    document, binary = _parse(stream.getvalue())
    assert document["asset"]["version"] == "2.0"
    scene = document["scenes"][document["scene"]]
    primitive = document["meshes"][document["nodes"][scene["nodes"][0]]["mesh"]]["primitives"][0]
    assert primitive["mode"] == 4
    attrs = primitive["attributes"]
    position = document["accessors"][attrs["POSITION"]]
    assert position["componentType"] == 5126 and position["type"] == "VEC3"
    got = _read(document, binary, attrs["POSITION"])
    assert np.array_equal(got, verts.numpy())
    assert position["min"] == got.min(0).tolist() and position["max"] == got.max(0).tolist()
    indices = document["accessors"][primitive["indices"]]
    assert indices["componentType"] == 5125 and indices["type"] == "SCALAR"
    assert np.array_equal(
        _read(document, binary, primitive["indices"]).reshape(-1, 3), faces.numpy()
    )
    unit = _read(document, binary, attrs["NORMAL"])
    assert np.allclose(np.linalg.norm(unit, axis=1), 1.0, atol=UNIT_ATOL)
    assert np.array_equal(_read(document, binary, attrs["COLOR_0"]), colors.numpy())
    targets = {v["target"] for v in document["bufferViews"]}
    assert targets == {34962, 34963}


def test_round_trip_through_load_glb(tmp_path):
    mesh = ico_sphere(2)
    verts, faces = mesh.verts_packed(), mesh.faces_packed()
    colors = torch.rand(verts.shape[0], 3, generator=torch.Generator().manual_seed(0))
    path = tmp_path / "m.glb"
    save_glb(path, verts, faces, verts_normals=mesh.verts_normals_packed(), verts_colors=colors)
    v2, f2, n2, c2 = load_glb(path)
    assert torch.equal(v2, verts) and torch.equal(f2, faces) and torch.equal(c2, colors)
    assert torch.allclose(n2, mesh.verts_normals_packed(), atol=UNIT_ATOL)


def test_point_cloud_and_odd_sizes_stay_aligned():
    stream = io.BytesIO()
    save_glb(stream, torch.rand(5, 3))  # 60 bytes of positions, no indices
    document, _ = _parse(stream.getvalue())
    assert document["meshes"][0]["primitives"][0]["mode"] == 0
    assert "indices" not in document["meshes"][0]["primitives"][0]
    stream = io.BytesIO()
    save_glb(stream, torch.rand(3, 3), torch.tensor([[0, 1, 2]]), verts_normals=torch.zeros(3, 3))
    document, binary = _parse(stream.getvalue())
    assert np.array_equal(
        _read(document, binary, 1), np.zeros((3, 3), np.float32)
    )  # zero stays zero


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"verts": torch.zeros(0, 3)}, ValueError, "at least one vertex"),
        ({"verts": torch.zeros(3, 3, dtype=torch.int32)}, TypeError, "floating point"),
        ({"faces": torch.tensor([[0, 1, 5]])}, ValueError, "faces must index"),
        ({"verts_colors": torch.zeros(2, 3)}, ValueError, "verts_colors must have one row"),
        ({"verts_normals": torch.full((3, 3), float("inf"))}, ValueError, "finite"),
    ],
)
def test_bad_arguments(kwargs, error, message):
    args = {"verts": torch.rand(3, 3), "faces": torch.tensor([[0, 1, 2]])} | kwargs
    with pytest.raises(error, match=message):
        save_glb(io.BytesIO(), **args)


def test_malformed_glb_raises_value_error():
    stream = io.BytesIO()
    save_glb(stream, torch.rand(3, 3), torch.tensor([[0, 1, 2]]))
    raw = stream.getvalue()
    with pytest.raises(ValueError, match="no 'glTF' magic"):
        load_glb(io.BytesIO(b"GLTF" + raw[4:]))
    for cut in (1, 8, len(raw) - 20):
        with pytest.raises(ValueError, match=r"declares|runs past|accessor"):
            load_glb(io.BytesIO(raw[:-cut]))
    document, binary = _parse(raw)
    document["accessors"][0]["count"] = 10**9
    text = json.dumps(document).encode()
    text += b" " * (-len(text) % 4)
    forged = struct.pack("<III", 0x46546C67, 2, 28 + len(text) + len(binary))
    forged += struct.pack("<II", len(text), 0x4E4F534A) + text
    forged += struct.pack("<II", len(binary), 0x004E4942) + binary
    with pytest.raises(ValueError, match="outside the binary chunk"):
        load_glb(io.BytesIO(forged))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_corrupted_glb_only_raises_value_error(data):
    stream = io.BytesIO()
    g = torch.Generator().manual_seed(0)  # the same file for every example
    save_glb(stream, torch.rand(4, 3, generator=g), torch.tensor([[0, 1, 2], [0, 2, 3]]),
             verts_colors=torch.rand(4, 3, generator=g))  # fmt: skip
    raw = bytearray(stream.getvalue())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    try:
        verts, faces, _, _ = load_glb(io.BytesIO(bytes(raw)))
    except ValueError as err:
        assert "<stream>" in str(err)
        return
    if faces.numel():
        assert int(faces.min()) >= 0 and int(faces.max()) < verts.shape[0]
