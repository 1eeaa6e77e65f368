"""save_ply: bit-exact round trips through load_ply_data, the header other tools expect, errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from diffmesh.meshio import load_ply, load_ply_data, save_ply


@pytest.fixture
def mesh():
    g = torch.Generator().manual_seed(0)
    verts = torch.randn(40, 3, generator=g) * 1e3
    verts[0] = torch.tensor([1e-30, -0.0, 3.4e38])  # tiny, negative zero, near float32 max
    faces = torch.randint(0, 40, (70, 3), generator=g)
    normals = torch.nn.functional.normalize(torch.randn(40, 3, generator=g), dim=1)
    colors = torch.rand(40, 3, generator=g)
    return verts, faces, normals, colors


@pytest.mark.parametrize("ascii", [False, True])
def test_round_trip_is_bit_exact(tmp_path, mesh, ascii):
    verts, faces, normals, colors = mesh
    extras = {
        "alpha": torch.arange(40, dtype=torch.uint8),
        "quality": torch.randn(40, dtype=torch.float64),
        "label": torch.arange(40, dtype=torch.int32) - 20,
        "s": torch.rand(40),
    }
    path = tmp_path / "m.ply"
    save_ply(path, verts, faces, normals, ascii=ascii, verts_colors=colors, colors_as_uint8=False,
             verts_properties=extras, faces_properties={"flag": torch.arange(70, dtype=torch.int16)})  # fmt: skip
    data = load_ply_data(path)
    assert torch.equal(data.verts, verts) and torch.equal(data.faces, faces)
    assert torch.equal(data.verts_normals, normals) and torch.equal(data.verts_colors, colors)
    assert data.verts_properties.keys() == extras.keys()
    for key, value in extras.items():
        assert data.verts_properties[key].dtype == value.dtype
        assert torch.equal(data.verts_properties[key], value)
    assert torch.equal(data.faces_properties["flag"], torch.arange(70, dtype=torch.int16))


@pytest.mark.parametrize("ascii", [False, True])
def test_uchar_colors_are_standard_and_exact_for_multiples_of_1_255(ascii, mesh):
    verts, faces, _, _ = mesh
    levels = torch.randint(0, 256, (40, 3), generator=torch.Generator().manual_seed(1))
    colors = levels.float() / 255
    stream = io.BytesIO()
    save_ply(stream, verts, faces, ascii=ascii, verts_colors=colors)
    raw = stream.getvalue()
    header = raw[: raw.index(b"end_header")].decode()
    assert "property uchar red\nproperty uchar green\nproperty uchar blue\n" in header
    assert "property list uchar int vertex_indices\n" in header
    assert header.startswith(
        "ply\nformat " + ("ascii" if ascii else "binary_little_endian") + " 1.0\n"
    )
    data = load_ply_data(io.BytesIO(raw))
    assert torch.equal(data.verts_colors, colors)
    assert torch.equal(torch.round(data.verts_colors * 255).long(), levels)


def test_binary_layout_matches_a_hand_built_reference():
    verts = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.5]])
    faces = torch.tensor([[0, 1, 2]])
    stream = io.BytesIO()
    save_ply(stream, verts, faces, verts_colors=torch.tensor([[1.0, 0.5, 0.0]] * 3))
    raw = stream.getvalue()
    body = raw[raw.index(b"end_header\n") + len(b"end_header\n") :]
    expected = (
        b"".join(np.array(v, "<f4").tobytes() + bytes([255, 128, 0]) for v in verts.tolist())
        + bytes([3])
        + np.array([0, 1, 2], "<i4").tobytes()
    )
    assert body == expected


def test_point_cloud_has_no_face_element_and_empty_mesh_round_trips():
    stream = io.BytesIO()
    save_ply(stream, torch.rand(5, 3), None)
    assert b"element face" not in stream.getvalue()
    verts, faces = load_ply(io.BytesIO(stream.getvalue()))
    assert verts.shape == (5, 3) and faces.shape == (0, 3)
    empty = io.BytesIO()
    save_ply(empty, torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.int64))
    verts, faces = load_ply(io.BytesIO(empty.getvalue()))
    assert verts.shape == (0, 3) and faces.shape == (0, 3)


def test_decimal_places_and_text_file_targets():
    stream = io.StringIO()
    save_ply(stream, torch.tensor([[0.123456, 1.0, 2.0]]), ascii=True, decimal_places=2)
    assert stream.getvalue().endswith("end_header\n0.12 1.00 2.00\n")
    with pytest.raises(TypeError, match="text-mode file"):
        save_ply(io.StringIO(), torch.zeros(1, 3))


def test_failed_write_leaves_an_existing_file_untouched(tmp_path, mesh):
    verts, faces, _, _ = mesh
    path = tmp_path / "m.ply"
    save_ply(path, verts, faces)
    before = path.read_bytes()
    with pytest.raises(ValueError):
        save_ply(path, verts, faces + 100)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.ply"]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"verts": torch.zeros(3, 2)}, ValueError, "verts must have shape"),
        ({"verts": torch.zeros(3, 3, dtype=torch.int64)}, TypeError, "verts must be a floating"),
        ({"verts": torch.full((3, 3), float("nan"))}, ValueError, "verts must be finite"),
        ({"faces": torch.tensor([[0, 1, 3]])}, ValueError, "faces must index verts"),
        ({"faces": torch.tensor([[0.0, 1.0, 2.0]])}, TypeError, "faces must be an integer"),
        ({"verts_normals": torch.zeros(2, 3)}, ValueError, "verts_normals must have one row"),
        ({"verts_colors": torch.zeros(3, 4)}, ValueError, "verts_colors must have shape"),
        ({"decimal_places": -1}, ValueError, "decimal_places"),
        ({"verts_properties": {"a b": torch.zeros(3)}}, ValueError, "without blanks"),
        ({"verts_properties": {"x": torch.zeros(3)}}, ValueError, "clashes"),
        ({"verts_properties": {"q": torch.zeros(4)}}, ValueError, r"must have shape \(3,\)"),
        (
            {"verts_properties": {"q": torch.zeros(3, dtype=torch.complex64)}},
            TypeError,
            "unsupported dtype",
        ),
        ({"verts_properties": {"q": torch.full((3,), 2**40)}}, ValueError, "fit a PLY int"),
        ({"faces": None, "faces_properties": {"q": torch.zeros(1)}}, ValueError, "needs faces"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, message):
    args = {"verts": torch.zeros(3, 3), "faces": torch.tensor([[0, 1, 2]])} | kwargs
    with pytest.raises(error, match=message):
        save_ply(io.BytesIO(), **args)


def test_path_manager_is_accepted_and_unused(tmp_path):
    """PyTorch3D's signatures: ``save_ply(f, verts, faces, normals, ascii, decimal_places,
    path_manager)`` and ``load_ply(f, path_manager=...)``."""
    verts = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    faces = torch.tensor([[0, 1, 2]])
    path = tmp_path / "t.ply"
    save_ply(path, verts, faces, None, False, None, object())
    loaded_verts, loaded_faces = load_ply(path, path_manager=object())
    assert torch.equal(loaded_verts, verts) and torch.equal(loaded_faces, faces)
