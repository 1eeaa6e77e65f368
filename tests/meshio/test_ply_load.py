"""load_ply / load_ply_data: hand-written files in the styles common writers produce, and errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from diffmesh.meshio import load_ply, load_ply_data

QUAD = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], np.float32)


def _binary(header: str, *blocks: np.ndarray) -> bytes:
    return header.encode("ascii") + b"".join(b.tobytes() for b in blocks)


def _faces_block(faces: list[list[int]], order: str, count: str = "u1", index: str = "i4"):
    rows = [np.array([len(f)], order + count).tobytes() + np.array(f, order + index).tobytes()
            for f in faces]  # fmt: skip
    return np.frombuffer(b"".join(rows), np.uint8)


def test_trimesh_style_binary_with_uchar_colors_and_alpha():
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment https://github.com/mikedh/trimesh\n"
        "element vertex 4\nproperty float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\nproperty uchar alpha\n"
        "element face 2\nproperty list uchar int vertex_indices\nend_header\n"
    )
    vertex = np.zeros(4, [("p", "<f4", 3), ("c", "u1", 4)])
    vertex["p"] = QUAD
    vertex["c"] = [[255, 0, 0, 255], [0, 255, 0, 255], [0, 0, 255, 128], [51, 102, 153, 0]]
    data = load_ply_data(
        io.BytesIO(_binary(header, vertex, _faces_block([[0, 1, 2], [0, 2, 3]], "<")))
    )
    assert torch.equal(data.verts, torch.from_numpy(QUAD))
    assert torch.equal(data.faces, torch.tensor([[0, 1, 2], [0, 2, 3]]))
    assert torch.equal(data.verts_colors, torch.from_numpy(vertex["c"][:, :3] / np.float32(255)))
    assert torch.equal(
        data.verts_properties["alpha"], torch.tensor([255, 255, 128, 0], dtype=torch.uint8)
    )
    assert data.verts_normals is None and data.comments == ["https://github.com/mikedh/trimesh"]


def test_open3d_style_big_endian_doubles_normals_and_uint_indices():
    header = (
        "ply\nformat binary_big_endian 1.0\ncomment Created by Open3D\nelement vertex 4\n"
        "property double x\nproperty double y\nproperty double z\nproperty double nx\n"
        "property double ny\nproperty double nz\nelement face 1\n"
        "property list uchar uint vertex_indices\nend_header\n"
    )
    vertex = np.concatenate([QUAD, np.tile([[0.0, 0.0, 1.0]], (4, 1))], 1).astype(">f8")
    data = load_ply_data(
        io.BytesIO(_binary(header, vertex, _faces_block([[0, 1, 2, 3]], ">", index="u4")))
    )
    assert torch.equal(data.verts, torch.from_numpy(QUAD))
    assert torch.equal(data.verts_normals, torch.tensor([[0.0, 0.0, 1.0]] * 4))
    assert torch.equal(data.faces, torch.tensor([[0, 1, 2], [0, 2, 3]]))  # fan of the quad


def test_blender_style_ascii_with_uvs_colors_and_polygons():
    text = """ply
format ascii 1.0
comment Created by Blender 2.79 - www.blender.org, source file: ''
element vertex 5
property float x
property float y
property float z
property float nx
property float ny
property float nz
property float s
property float t
property uchar red
property uchar green
property uchar blue
element face 2
property list uchar uint vertex_indices
end_header
0 0 0 0 0 1 0 0 255 255 255
1 0 0 0 0 1 1 0 255 0 0
1 1 0 0 0 1 1 1 0 255 0
0 1 0 0 0 1 0 1 0 0 255
0.5 2 0 0 0 1 0.5 1 10 20 30
4 0 1 2 3
3 3 2 4
"""
    data = load_ply_data(io.StringIO(text))
    assert torch.equal(data.faces, torch.tensor([[0, 1, 2], [0, 2, 3], [3, 2, 4]]))
    assert torch.equal(data.verts_properties["s"], torch.tensor([0, 1, 1, 0, 0.5]))
    assert data.verts_colors[4].tolist() == pytest.approx([10 / 255, 20 / 255, 30 / 255])
    assert data.comments == ["Created by Blender 2.79 - www.blender.org, source file: ''"]


def test_pcl_style_type_aliases_vertex_index_and_obj_info():
    text = (
        "ply\r\nformat ascii 1.0\r\nobj_info scanner 3\r\nelement vertex 3\r\n"
        "property float32 x\r\nproperty float32 y\r\nproperty float32 z\r\n"
        "property uint8 intensity\r\nelement face 1\r\n"
        "property list uint8 int32 vertex_index\r\nproperty int16 flags\r\nend_header\r\n"
        "0 0 0 7\r\n1 0 0 8\r\n\t0 1 0 9\r\n\r\n3 2 1 0 -3\r\n"
    )
    data = load_ply_data(io.BytesIO(text.encode()))
    assert torch.equal(data.faces, torch.tensor([[2, 1, 0]]))
    assert data.verts_properties["intensity"].dtype == torch.uint8
    assert data.faces_properties == {"flags": torch.tensor([-3], dtype=torch.int16)}
    assert data.comments == ["scanner 3"]


def test_point_cloud_without_faces_and_other_elements_kept():
    text = (
        "ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty float y\n"
        "property float z\nelement camera 1\nproperty float view_px\nproperty list uchar float k\n"
        "end_header\n1 2 3\n4 5 6\n0.5 2 7 8\n"
    )
    verts, faces = load_ply(io.StringIO(text))
    assert verts.tolist() == [[1, 2, 3], [4, 5, 6]] and faces.shape == (0, 3)
    assert faces.dtype == torch.int64
    data = load_ply_data(io.StringIO(text))
    assert torch.equal(data.elements["camera"]["k"], torch.tensor([[7.0, 8.0]]))
    assert torch.equal(data.elements["camera"]["view_px"], torch.tensor([0.5]))


def test_mixed_polygons_binary_match_ascii():
    polys = [[0, 1, 2], [0, 1, 2, 3], [0, 1, 2], [0, 1, 2], [4, 3, 2, 1, 0], [1, 2, 3]] * 7
    header = (
        "ply\nformat binary_little_endian 1.0\nelement vertex 5\nproperty float x\n"
        f"property float y\nproperty float z\nelement face {len(polys)}\n"
        "property list uchar int vertex_indices\nproperty float q\nend_header\n"
    )
    verts = np.arange(15, dtype="<f4").reshape(5, 3)
    rows = b"".join(
        _faces_block([p], "<").tobytes() + np.array([i], "<f4").tobytes()
        for i, p in enumerate(polys)
    )
    binary = load_ply_data(io.BytesIO(header.encode() + verts.tobytes() + rows))
    ascii_text = (
        header.replace("binary_little_endian", "ascii")
        + "".join(" ".join(map(str, row)) + "\n" for row in verts.tolist())
        + "".join(f"{len(p)} {' '.join(map(str, p))} {i}\n" for i, p in enumerate(polys))
    )
    text = load_ply_data(io.StringIO(ascii_text))
    expected = [[p[0], p[k + 1], p[k + 2]] for p in polys for k in range(len(p) - 2)]
    owner = [i for i, p in enumerate(polys) for _ in range(len(p) - 2)]
    for data in (binary, text):
        assert data.faces.tolist() == expected
        assert data.faces_properties["q"].tolist() == owner


def test_device_and_path_input(tmp_path):
    path = tmp_path / "m.ply"
    path.write_text("ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\n"
                    "property float z\nend_header\n1 2 3\n")  # fmt: skip
    verts, _ = load_ply(path, device="cpu")
    assert verts.device.type == "cpu" and verts.tolist() == [[1, 2, 3]]
    with pytest.raises(FileNotFoundError):
        load_ply(tmp_path / "missing.ply")
    with pytest.raises(TypeError, match="f must be"):
        load_ply(3)


HEADER = "ply\nformat {fmt} 1.0\nelement vertex {v}\nproperty float x\nproperty float y\nproperty float z\nelement face {f}\nproperty list uchar int vertex_indices\nend_header\n"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a PLY file"),
        (b"plx\n", "not a PLY file"),
        (b"ply\nformat ascii 1.0\nelement vertex 1\n", "end_header"),
        (b"ply\nformat ascii 2.0\nend_header\n", "format"),
        (b"ply\nend_header\n", "no 'format'"),
        (b"ply\nformat ascii 1.0\nproperty float x\nend_header\n", "property before any element"),
        (
            b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float128 x\nend_header\n",
            "unknown type 'float128'",
        ),
        (b"ply\nformat ascii 1.0\nelement vertex -1\nend_header\n", "count must be an integer"),
        (b"ply\nformat ascii 1.0\nelement v 1\nelement v 1\nend_header\n", "declared twice"),
        (
            b"ply\nformat ascii 1.0\nelement f 1\nproperty list float int i\nend_header\n",
            "float list length",
        ),
        (
            b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float y\nend_header\n1\n",
            "no x/z property",
        ),
        (b"ply\nformat ascii 1.0\nbogus\nend_header\n", "unknown keyword"),
        (b"ply\xff\nformat ascii 1.0\nend_header\n", "not ASCII"),
        (
            HEADER.format(fmt="ascii", v=3, f=1).encode() + b"0 0 0  \n1 0 0  \n0 1 0  \n",
            "'face' is truncated",
        ),
        (
            HEADER.format(fmt="ascii", v=3, f=1).encode() + b"0 0 0\n1 0 0\n0 1 0\n3 0 1 3\n",
            "out of range",
        ),
        (
            HEADER.format(fmt="ascii", v=3, f=1).encode() + b"0 0 0\n1 0 0\n0 1 0\n2 0 1\n",
            "at least 3 corners",
        ),
        (
            HEADER.format(fmt="ascii", v=3, f=1).encode() + b"0 0 0\n1 0 0\n0 1 0\n4 0 1 2\n",
            "list 'vertex_indices' is too short",
        ),
        (
            HEADER.format(fmt="ascii", v=3, f=1).encode() + b"0 0 0\n1 0 0\n0 1 0\n3 0 1 2 5\n",
            "more values",
        ),
        (
            HEADER.format(fmt="ascii", v=3, f=1).encode() + b"0 0 0\n1 0 x\n0 1 0\n3 0 1 2\n",
            ":11: PLY value 'x'",
        ),
        (
            HEADER.format(fmt="ascii", v=3, f=1).encode() + b"0 0 0\n1 0 0\n0 1 0\n3 0 1.5 2\n",
            "must be an integer",
        ),
        (
            HEADER.format(fmt="ascii", v=3, f=1).encode() + b"0 0 0\n1 0 nan\n0 1 0\n3 0 1 2\n",
            "non-finite",
        ),
        (HEADER.format(fmt="ascii", v=1, f=0).encode() + b"0 0          \n", "too few values"),
    ],
)
def test_malformed_files_raise_value_error_naming_the_file(data, message):
    stream = io.BytesIO(data)
    stream.name = "bad.ply"
    with pytest.raises(ValueError, match=message) as info:
        load_ply_data(stream)
    assert "bad.ply" in str(info.value)


@pytest.mark.parametrize("fmt", ["ascii", "binary_little_endian", "binary_big_endian"])
@pytest.mark.parametrize(("v", "f"), [(2**40, 0), (3, 2**45), (2**62, 2**62)])
def test_huge_declared_counts_fail_fast_without_allocating(fmt, v, f):
    data = HEADER.format(fmt=fmt, v=v, f=f).encode() + bytes(64)
    with pytest.raises(ValueError, match=r"declares \d+ rows, more than"):  # not a MemoryError
        load_ply_data(io.BytesIO(data))


def test_binary_truncated_at_every_byte_raises_value_error():
    header = HEADER.format(fmt="binary_little_endian", v=4, f=2).encode()
    body = QUAD.astype("<f4").tobytes() + _faces_block([[0, 1, 2], [0, 2, 3, 1]], "<").tobytes()
    assert load_ply(io.BytesIO(header + body))[1].shape == (3, 3)
    for cut in range(1, len(body) + 1):  # each cut is one small file
        with pytest.raises(ValueError, match=r"truncated|more than"):
            load_ply_data(io.BytesIO(header + body[:-cut]))


def test_binary_huge_and_negative_list_lengths():
    header = HEADER.format(fmt="binary_little_endian", v=3, f=1).replace("uchar int", "{} int")
    verts = QUAD[:3].astype("<f4").tobytes()
    big = header.format("uint").encode() + verts + np.array([2**32 - 1, 0, 1, 2], "<u4").tobytes()
    with pytest.raises(ValueError, match="truncated"):
        load_ply_data(io.BytesIO(big))
    negative = (
        header.format("char").encode() + verts + b"\xff" + np.array([0, 1, 2], "<i4").tobytes()
    )
    with pytest.raises(ValueError, match="negative length"):
        load_ply_data(io.BytesIO(negative))


@pytest.mark.parametrize(("order", "count"), [("<", "u1"), (">", "u1"), ("<", "u2"), (">", "i4")])
def test_random_mix_of_polygon_sizes_binary(order, count):
    """Short runs of equal sizes: the row-by-row scan, with and without the uchar fast path."""
    sizes = np.random.default_rng(0).integers(3, 7, 300)
    polys = [list(range(s)) for s in sizes]
    header = HEADER.format(fmt="binary_little_endian" if order == "<" else "binary_big_endian",
                           v=6, f=len(polys)).replace("list uchar", f"list {COUNT_NAMES[count]}")  # fmt: skip
    verts = np.arange(18, dtype=order + "f4").tobytes()
    body = verts + _faces_block(polys, order, count=count).tobytes()
    faces = load_ply(io.BytesIO(header.encode() + body))[1]
    assert faces.tolist() == [[p[0], p[k + 1], p[k + 2]] for p in polys for k in range(len(p) - 2)]
    for cut in (1, 5, 600):
        with pytest.raises(ValueError, match="'face' is truncated"):
            load_ply_data(io.BytesIO(header.encode() + body[:-cut]))


COUNT_NAMES = {"u1": "uchar", "u2": "ushort", "i4": "int"}


def test_face_element_without_vertex_list_is_kept_as_an_element():
    text = (
        "ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\n"
        "property float z\nelement face 2\nproperty uchar q\nend_header\n0 0 0\n4\n5\n"
    )
    data = load_ply_data(io.StringIO(text))
    assert data.faces.shape == (0, 3) and data.faces_properties == {}
    assert torch.equal(data.elements["face"]["q"], torch.tensor([4, 5], dtype=torch.uint8))


@pytest.mark.parametrize(
    ("header", "row", "message"),
    [
        ("property double x\nproperty double y\nproperty double z\n", "1e39 0 0", "position"),
        ("property float x\nproperty float y\nproperty float z\n", "1e39 0 0", "overflows"),
        (
            "property float x\nproperty float y\nproperty float z\n"
            "property double nx\nproperty double ny\nproperty double nz\n",
            "0 0 0 -1e39 0 0",
            "normal",
        ),
        (
            "property float x\nproperty float y\nproperty float z\n"
            "property double red\nproperty double green\nproperty double blue\n",
            "0 0 0 0 nan 0",
            "colour",
        ),
    ],
)
def test_values_beyond_float32_raise_instead_of_loading_inf(header, row, message):
    # a double (or ascii float) of 1e39 is finite in the file but inf once cast to float32
    data = f"ply\nformat ascii 1.0\nelement vertex 2\n{header}end_header\n1 2 3"
    data += " 0 0 0" * (header.count("property") // 3 - 1) + f"\n{row}\n"
    stream = io.BytesIO(data.encode())
    stream.name = "big.ply"
    with pytest.raises(ValueError, match=message) as info:
        load_ply_data(stream)
    assert "big.ply" in str(info.value)
