"""load_off / read_off / save_off: hand-written files, round trips, malformed files."""

from __future__ import annotations

import io

import pytest
import torch
from diffmesh.meshio import load_off, save_off
from diffmesh.meshio.off_io import read_off
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def test_counts_on_the_keyword_line_comments_and_polygons():
    text = "# made by hand\nOFF 4 2 0\n# vertices\n0 0 0\n1 0 0\n\n1 1 0\n0 1 0  # last\n4 0 1 2 3\n3 3 2 1 255 0 0\n"
    verts, faces = load_off(io.StringIO(text))
    assert verts.tolist() == [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]]
    assert faces.tolist() == [[0, 1, 2], [0, 2, 3], [3, 2, 1]]  # face colour ignored


def test_coff_colors_as_bytes_or_floats():
    text = "COFF\n3 1 0\n0 0 0 255 0 0 255\n1 0 0 0 255 0 255\n0 1 0 0 0 51 255\n3 0 1 2\n"
    colors = read_off(io.StringIO(text))[2]
    assert torch.equal(colors, torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 0.2]]))
    floats = text.replace("255 0 0 255", "1 0 0 1").replace("0 255 0 255", "0 1 0 1")
    floats = floats.replace("0 0 51 255", "0 0 0.2 1")
    assert torch.allclose(read_off(io.StringIO(floats))[2], colors)


def test_round_trip_bit_exact_with_colors(tmp_path):
    g = torch.Generator().manual_seed(0)
    verts = torch.randn(30, 3, generator=g)
    faces = torch.randint(0, 30, (50, 3), generator=g)
    colors = torch.randint(0, 256, (30, 3), generator=g).float() / 255
    path = tmp_path / "m.off"
    save_off(path, verts, faces, verts_colors=colors)
    assert path.read_text().startswith("COFF\n30 50 0\n")
    v2, f2, c2 = read_off(path)
    assert torch.equal(v2, verts) and torch.equal(f2, faces) and torch.equal(c2, colors)
    save_off(path, verts, faces)
    assert torch.equal(load_off(path)[0], verts)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not an OFF file"),
        ("STOFF\n", "unsupported OFF variant"),
        ("OFF\n", "counts line"),
        ("OFF\n1.5 0 0\n", "integers"),
        ("OFF\n99999999999 0 0\n0 0 0\n", "declares 99999999999 vertices"),
        ("OFF\n3 1 0\n0 0 0\n1 0\n0 1 0\n3 0 1 2\n", ":4: OFF vertex has too few"),
        ("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n2 0 1\n", ":6: OFF face"),
        ("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 3\n", "out of range"),
        ("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n4 0 1 2\n", "OFF face must be"),
        ("OFF\n3 1 0\n0 0 0\n1 0 inf\n0 1 0\n3 0 1 2\n", "not finite"),
        ("OFF\n3 1 0\n0 0 0\n1 0 1e39\n0 1 0\n3 0 1 2\n", ":4: OFF vertex position is not finite"),
        (
            "COFF\n3 1 0\n0 0 0 1 1 1\n1 0 0 1e39 1 1\n0 1 0 1 1 1\n3 0 1 2\n",
            ":4: OFF vertex colour",
        ),
        ("OFF\n3 1 0\n0 0 0\n1 0 zero\n0 1 0\n3 0 1 2\n", ":4: OFF value 'zero'"),
    ],
)
def test_malformed_files_raise_value_error(text, message):
    stream = io.StringIO(text)
    stream.name = "bad.off"
    with pytest.raises(ValueError, match=message) as info:
        load_off(stream)
    assert "bad.off" in str(info.value)


def test_save_off_checks_arguments():
    with pytest.raises(ValueError, match="faces must index"):
        save_off(io.StringIO(), torch.zeros(3, 3), torch.tensor([[0, 1, 3]]))
    with pytest.raises(ValueError, match="verts_colors must have one row"):
        save_off(
            io.StringIO(),
            torch.zeros(3, 3),
            torch.tensor([[0, 1, 2]]),
            verts_colors=torch.zeros(2, 3),
        )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet="OFC0123456789.-e #\n\t", max_size=200))
def test_off_like_text_only_raises_value_error(text):
    try:
        verts, faces = load_off(io.StringIO("OFF\n" + text))
    except ValueError as err:
        assert "<stream>" in str(err)
        return
    assert faces.shape[1] == 3 and torch.isfinite(verts).all()
    if faces.numel():
        assert int(faces.min()) >= 0 and int(faces.max()) < verts.shape[0]


def test_utf8_byte_order_mark_is_skipped():
    text = "OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n"
    verts, faces = load_off(io.BytesIO(b"\xef\xbb\xbf" + text.encode()))
    want_verts, want_faces = load_off(io.BytesIO(text.encode()))
    assert torch.equal(verts, want_verts) and torch.equal(faces, want_faces)
    assert verts.shape == (3, 3)
