"""load_pointcloud / save_pointcloud: PLY, .xyz and .pts text, round trips, malformed files."""

from __future__ import annotations

import io

import pytest
import torch
from diffmesh.meshio import load_pointcloud, save_ply, save_pointcloud


def test_xyz_with_and_without_normals(write_file):
    plain = load_pointcloud(write_file("a.xyz", "# scan\n0 0 0\n1 2 3\n\n4.5 -6 7e-3\n"))
    expected = torch.tensor([[0, 0, 0], [1, 2, 3], [4.5, -6, 7e-3]], dtype=torch.float64)
    assert torch.equal(plain.points, expected.float())  # parsed in float64, rounded once
    assert plain.normals is None and plain.colors is None
    with_normals = load_pointcloud(write_file("b.xyz", "0 0 0 0 0 1\r\n1 2 3 0 1 0\r\n"))
    assert with_normals.normals.tolist() == [[0, 0, 1], [0, 1, 0]]


def test_pts_with_count_line_intensity_and_colors(write_file):
    cloud = load_pointcloud(write_file("c.pts", "2\n0 0 0 -500 255 0 0\n1 1 1 12 0 51 255\n"))
    assert cloud.points.tolist() == [[0, 0, 0], [1, 1, 1]]
    assert torch.equal(cloud.colors, torch.tensor([[1.0, 0, 0], [0, 0.2, 1]]))
    intensity_only = load_pointcloud(write_file("d.pts", "1 2 3 9\n"))
    assert intensity_only.points.tolist() == [[1, 2, 3]] and intensity_only.colors is None


def test_ply_point_cloud_keeps_normals_and_colors():
    stream = io.BytesIO()
    points, normals = torch.rand(6, 3), torch.rand(6, 3)
    colors = torch.randint(0, 256, (6, 3)).float() / 255
    save_ply(stream, points, None, normals, verts_colors=colors)
    cloud = load_pointcloud(io.BytesIO(stream.getvalue()), format="ply")
    assert torch.equal(cloud.points, points) and torch.equal(cloud.normals, normals)
    assert torch.equal(cloud.colors, colors)


@pytest.mark.parametrize("suffix", [".xyz", ".pts", ".ply"])
def test_save_round_trip_bit_exact(tmp_path, suffix):
    g = torch.Generator().manual_seed(0)
    points, normals = torch.randn(20, 3, generator=g), torch.randn(20, 3, generator=g)
    save_pointcloud(tmp_path / f"p{suffix}", points, normals)
    cloud = load_pointcloud(tmp_path / f"p{suffix}")
    assert torch.equal(cloud.points, points) and torch.equal(cloud.normals, normals)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.xyz", "0 0 0\n1 1\n", ":2: 2 values where the first point line has 3"),
        ("a.xyz", "0 0\n", "3 or 6 values"),
        ("a.xyz", "0 0 x\n", ":1: point cloud value 'x'"),
        ("a.xyz", "0 0 nan\n", "not finite"),
        ("a.xyz", "0 0 0\n1e39 0 0\n", ":2: a point value is not finite in float32"),
        ("a.xyz", "0 0 0 0 0 1\n0 0 0 0 -1e39 0\n", ":2: a point value is not finite"),
        ("a.pts", "1\n0 0 0 5 255 1e39 0\n", ":2: a point value is not finite"),
    ],
)
def test_malformed_text_raises_value_error(write_file, name, text, message):
    with pytest.raises(ValueError, match=message):
        load_pointcloud(write_file(name, text))


def test_format_choice_errors(write_file):
    with pytest.raises(ValueError, match="format must be one of"):
        load_pointcloud(write_file("a.obj", "v 0 0 0\n"))
    with pytest.raises(ValueError, match="format must be given"):
        load_pointcloud(io.BytesIO(b"0 0 0\n"))
    with pytest.raises(ValueError, match="colors cannot be written"):
        save_pointcloud(io.StringIO(), torch.zeros(1, 3), colors=torch.zeros(1, 3), format="xyz")
    assert load_pointcloud(write_file("empty.xyz", "# nothing\n")).points.shape == (0, 3)


def test_pts_intensity_is_not_read_so_not_checked(write_file):
    # x y z intensity r g b: the intensity column is ignored, whatever its value
    cloud = load_pointcloud(write_file("a.pts", "0 1 2 1e39 255 0 255\n"))
    assert torch.equal(cloud.points, torch.tensor([[0.0, 1.0, 2.0]]))
    assert torch.equal(cloud.colors, torch.tensor([[1.0, 0.0, 1.0]]))


def test_utf8_byte_order_mark_is_skipped():
    cloud = load_pointcloud(io.BytesIO(b"\xef\xbb\xbf1 2 3\n4 5 6\n"), format="xyz")
    assert torch.equal(cloud.points, torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
