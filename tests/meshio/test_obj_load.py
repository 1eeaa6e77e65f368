"""load_obj / load_objs_as_meshes: the bundled meshes, OBJ features, bad input."""

from __future__ import annotations

import io
import re
import tracemalloc
import warnings

import numpy as np
import pytest
import torch
from diffmesh.meshcore import Meshes, TexturesUV
from diffmesh.meshio import MaterialWarning, load_obj, load_objs_as_meshes
from PIL import Image

FEATURES = (
    "# a comment line\n"
    "mtllib nowhere.mtl\n"
    "o thing\n"
    "v 0 0 0\n"
    "  v 1 0 0 1.0   # w is ignored, trailing comment too\n"
    "\tv 1 1 0\r\n"
    "v 0 1 0\n"
    "\n"
    "vt 0.5\n"
    "vt 0.1 0.2 0.3\n"
    "vn 0 0 1\n"
    "f 1 2 3\n"
    "usemtl red\n"
    "f 1/1 2/2 3/2 4/1\n"
    "usemtl blue\n"
    "f -4//1 -3//1 -2//1\n"
    "g group\n"
    "s off\n"
    "usemtl red\n"
    "f 1/1/1 \\\n  2/2/1 4/1/1\n"
    "l 1 2\n"
    "vp 0.1 0.2\n"
    "f\t4 3 2 1 2\n"
)


def test_features_match_reference(write_file, assert_matches_reference):
    path = write_file("features.obj", FEATURES)
    with pytest.warns(MaterialWarning, match="nowhere.mtl"):
        verts, faces, aux = load_obj(path)
    assert_matches_reference(FEATURES, verts, faces, aux)
    assert verts.dtype == torch.float32 and faces.verts_idx.dtype == torch.int64
    # fan triangulation of the quad and the pentagon
    assert faces.verts_idx[1:3].tolist() == [[0, 1, 2], [0, 2, 3]]
    assert faces.verts_idx[-3:].tolist() == [[3, 2, 1], [3, 1, 0], [3, 0, 1]]
    assert faces.materials_idx.tolist() == [-1, 0, 0, 1, 0, 0, 0, 0]
    assert aux.verts_uvs[0].tolist() == [0.5, 0.0]  # "vt u" means v = 0
    assert aux.material_colors is None and aux.texture_images is None


def test_bundled_meshes_match_reference(data_dir, assert_matches_reference):
    for name in ("fish/fish_low_resolution.obj", "fish/fish.obj", "cow/cow.obj"):
        path = data_dir / name
        verts, faces, aux = load_obj(path, load_textures=False)
        assert_matches_reference(path.read_text(), verts, faces, aux)


def test_cow_has_uvs_and_texture(data_dir):
    verts, faces, aux = load_obj(data_dir / "cow/cow.obj")
    assert verts.shape == (2930, 3) and faces.verts_idx.shape == (5856, 3)
    assert aux.verts_uvs.shape == (3225, 2)
    assert int(faces.textures_idx.min()) >= 0 and int(faces.textures_idx.max()) < 3225
    assert (faces.normals_idx == -1).all() and aux.normals is None
    assert (faces.materials_idx == 0).all()
    assert list(aux.texture_images) == ["material_1"]
    image = aux.texture_images["material_1"]
    assert image.shape == (1024, 1024, 3) and image.dtype == torch.float32
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0
    expected = np.asarray(Image.open(data_dir / "cow/cow_texture.png").convert("RGB"))
    assert torch.equal(image, torch.from_numpy(expected.astype(np.float32) / 255.0))
    colors = aux.material_colors["material_1"]
    assert colors["diffuse_color"].tolist() == [1.0, 1.0, 1.0]
    assert colors["specular_color"].tolist() == [0.0, 0.0, 0.0]
    assert colors["shininess"].tolist() == [10.0]


def test_cow_as_meshes_has_1024_texture_uv(data_dir):
    mesh = load_objs_as_meshes([data_dir / "cow/cow.obj"])
    assert isinstance(mesh, Meshes) and len(mesh) == 1
    assert isinstance(mesh.textures, TexturesUV)
    assert mesh.textures.maps_padded().shape == (1, 1024, 1024, 3)
    assert mesh.verts_packed().shape == (2930, 3)
    _, faces, aux = load_obj(data_dir / "cow/cow.obj", load_textures=False)
    assert torch.equal(mesh.textures.faces_uvs_list()[0], faces.textures_idx)
    assert torch.equal(mesh.textures.verts_uvs_list()[0], aux.verts_uvs)


def test_fish_has_normals(data_dir):
    verts, faces, aux = load_obj(data_dir / "fish/fish_low_resolution.obj")
    assert verts.shape == (945, 3) and faces.verts_idx.shape == (1886, 3)
    assert aux.normals.shape == (1886, 3)
    assert int(faces.normals_idx.min()) >= 0 and int(faces.normals_idx.max()) < 1886
    torch.testing.assert_close(aux.normals.norm(dim=1), torch.ones(1886), atol=1e-4, rtol=0)
    mesh = load_objs_as_meshes(data_dir / "fish/fish.obj")
    assert mesh.textures is None and mesh.faces_packed().shape == (21568, 3)


def test_batch_of_files(data_dir):
    paths = [data_dir / "fish/fish_low_resolution.obj", data_dir / "fish/fish.obj"]
    meshes = load_objs_as_meshes(paths)
    assert len(meshes) == 2
    assert meshes.num_faces_per_mesh().tolist() == [1886, 21568]


def test_vertex_colors(write_file):
    text = "v 0 0 0 1 0 0\nv 1 0 0 0 1 0\nv 0 1 0 0 0 0.5\nf 1 2 3\n"
    _, _, aux = load_obj(write_file("c.obj", text))
    assert aux.verts_colors.tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 0.5]]
    _, _, aux = load_obj(write_file("n.obj", "v 0 0 0\n"))
    assert aux.verts_colors is None


def test_open_files_and_streams(data_dir):
    path = data_dir / "fish/fish_low_resolution.obj"
    expected = load_obj(path)[0]
    with open(path, "rb") as handle:
        assert torch.equal(load_obj(handle)[0], expected)
    with open(path) as handle:
        assert torch.equal(load_obj(handle)[0], expected)
    assert torch.equal(load_obj(io.BytesIO(path.read_bytes()))[0], expected)
    assert torch.equal(load_obj(str(path))[0], expected)


def test_textures_follow_a_named_stream(data_dir):
    with open(data_dir / "cow/cow.obj", "rb") as handle:
        _, _, aux = load_obj(handle)
    assert aux.texture_images["material_1"].shape == (1024, 1024, 3)


def test_device_argument(data_dir):
    verts, faces, aux = load_obj(data_dir / "cow/cow.obj", device="cpu", load_textures=False)
    assert verts.device.type == "cpu" and faces.materials_idx.device.type == "cpu"
    assert aux.material_colors is None and aux.texture_images is None


def test_empty_and_blank_files_give_empty_meshes(write_file):
    for name, content in (("empty.obj", b""), ("blank.obj", b"\n  \n\t\r\n# only a comment\n")):
        verts, faces, aux = load_obj(write_file(name, content))
        assert verts.shape == (0, 3) and faces.verts_idx.shape == (0, 3)
        assert faces.normals_idx.shape == (0, 3) and faces.materials_idx.shape == (0,)
        assert aux.normals is None and aux.verts_uvs is None
    mesh = load_objs_as_meshes(write_file("empty2.obj", b""))
    assert mesh.verts_packed().shape == (0, 3)


def test_degenerate_geometry_loads_without_nan(write_file):
    # duplicate points and a zero-area face
    text = "v 0 0 0\nv 0 0 0\nv 1 0 0\nv 2 0 0\nf 1 2 3\nf 1 3 4\n"
    mesh = load_objs_as_meshes(write_file("flat.obj", text))
    assert torch.isfinite(mesh.faces_normals_packed()).all()
    assert mesh.faces_areas_packed().tolist() == [0.0, 0.0]


def test_unknown_directives_are_ignored(write_file):
    verts, faces, _ = load_obj(write_file("u.obj", "foo 1 2\nv 0 0 0\nbar\nvx 1\nf 1 1 1\nvp 2\n"))
    assert verts.shape == (1, 3) and faces.verts_idx.tolist() == [[0, 0, 0]]


@pytest.mark.parametrize(
    ("content", "line", "fragment"),
    [
        ("v 0 0 0\nv 1 2\n", 2, "needs 3, 4 or 6 numbers, got 2"),  # truncated line
        ("v 0 0 0\nv 1 2 abc\n", 2, "'abc' is not a number"),
        ("v 0 0 0\nvt 0 x\n", 2, "'x' is not a number"),
        ("vn 1 0\n", 1, "needs 3 numbers, got 2"),
        ("v 0 0 0\nv nan 0 0\n", 2, "non-finite"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 0 1 2\n", 4, "index 0 is invalid"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 4\n", 4, "vertex index 4 is out of range"),
        ("v 0 0 0\nv 1 0 0\nf 1 2 -3\nv 0 1 0\n", 3, "relative vertex index -3"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2\n", 4, "at least 3 vertices, got 2"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf\n", 4, "at least 3 vertices, got 0"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 x\n", 4, "'x' is not an integer"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3.0\n", 4, "not an integer"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 -\n", 4, "'-' is not an integer"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nf 1/+ 2/1 3/1\n", 5, "'\\+' is not an integer"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nf 1/1 2 3\n", 5, "mixes corners"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1/1/1/1 2 3\n", 4, "more than 3 fields"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf /1 2 3\n", 4, "no vertex index"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1/2 2/2 3/2\n", 4, "texture coordinate index 2"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1//1 2//1 3//1\n", 4, "normal index 1 is out of range"),
        ("v 0 0 0 1 1 1\nv 1 0 0\n", 2, "all vertices or none"),
        ("v 0 0 0\r\n\r\nv 1 0 0\r\nf 1 2 3\r\n", 4, "out of range"),  # CRLF line numbers
        ("v 0 0 \\\n 0\nv 1 0 0\nf 1 2 3\n", 4, "out of range"),  # continuation keeps numbers
    ],
)
def test_malformed_lines_name_file_and_line(write_file, content, line, fragment):
    path = write_file("bad.obj", content)
    with pytest.raises(ValueError, match=f"bad.obj:{line}: .*{fragment}"):
        load_obj(path)


def test_binary_files_are_value_errors(write_file):
    for name, content in (
        ("nul.obj", b"v 0 0 0\n\x00\x01\x02"),
        ("latin1.obj", "v 0 0 0\n# caf\xe9\n".encode("latin-1")),
        ("png.obj", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
    ):
        with pytest.raises(ValueError, match=name):
            load_obj(write_file(name, content))


def test_non_ascii_utf8_comments_and_names_are_fine(write_file):
    verts, _, _ = load_obj(write_file("utf8.obj", "# café ☕\no объект\nv 1 2 3\n"))
    assert verts.tolist() == [[1.0, 2.0, 3.0]]


def test_missing_file_and_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_obj(tmp_path / "missing.obj")
    with pytest.raises(TypeError, match="f must be a path"):
        load_obj(42)
    with pytest.raises(ValueError, match="at least one"):
        load_objs_as_meshes([])
    with pytest.raises(TypeError, match="files must be"):
        load_objs_as_meshes(3.5)
    with pytest.raises(ValueError, match="device must name a torch device"):
        load_obj(tmp_path / "missing.obj", device="gpu")
    with pytest.raises(TypeError, match=r"device must be a str or torch\.device, got float"):
        load_objs_as_meshes([tmp_path / "missing.obj"], device=1.5)


def test_slow_path_converts_spellings_numpy_does_not_read(write_file):
    verts, _, _ = load_obj(write_file("u.obj", "v 1_0 0 0\nv 0 0 0\n"))
    assert verts[0].tolist() == [10.0, 0.0, 0.0]


def test_two_texture_maps_become_a_multi_map_texture(write_file, tmp_path):
    red = np.zeros((2, 2, 3), np.uint8)
    red[..., 0] = 255
    blue = np.zeros((4, 2, 3), np.uint8)
    blue[..., 2] = 255
    Image.fromarray(red).save(tmp_path / "red.png")
    Image.fromarray(blue).save(tmp_path / "blue.png")
    write_file("two.mtl", "newmtl r\nmap_Kd red.png\nnewmtl b\nmap_Kd blue.png\nnewmtl k\n")
    text = (
        "mtllib two.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\n"
        "vt 0.5 0.5\nvt 0.25 0.75\nvt 1.75 -0.25\n"
        "f 1/1 2/2 3/3\nusemtl r\nf 1/1 2/2 3/3\nusemtl b\nf 1/1 2/2 3/3\n"
        "usemtl k\nf 1/1 2/2 3/3\n"
    )
    mesh = load_objs_as_meshes(write_file("two.obj", text))
    tex = mesh.textures
    # both maps, resized to the largest (4 x 2), one per material; uvs untouched
    assert tex.maps_padded().shape == (1, 2, 4, 2, 3)
    assert tex.maps_ids_list()[0].tolist() == [0, 0, 1, 0]  # no material / no map: map 0
    _, faces, aux = load_obj(write_file("two.obj", text))
    assert torch.equal(tex.verts_uvs_list()[0], aux.verts_uvs)
    assert torch.equal(tex.faces_uvs_list()[0], faces.textures_idx)
    # each face gets its own colour, also where the uvs leave [0, 1] (border padding)
    bary = torch.tensor([[1 / 3, 1 / 3, 1 / 3]] * 4 + [[0, 0, 1.0]])
    colors = mesh.sample_textures(torch.tensor([0, 1, 2, 3, 2]), bary)
    red_c, blue_c = torch.tensor([1.0, 0, 0]), torch.tensor([0, 0, 1.0])
    torch.testing.assert_close(colors, torch.stack([red_c, red_c, blue_c, red_c, blue_c]))


def test_long_blank_runs_are_fine(write_file):
    text = " " * 5000 + "v 1 2 3 \\" + " " * 3000 + "\n  0\n" + "\t" * 40 + "f 1 1 1\n"
    verts, faces, _ = load_obj(write_file("blank.obj", text))
    assert verts.tolist() == [[1.0, 2.0, 3.0]] and faces.verts_idx.tolist() == [[0, 0, 0]]
    # long lines are shortened in messages
    with pytest.raises(ValueError, match=r"blank2\.obj:2: .*'v 1 2 x{71}\.\.\.'\)$"):
        load_obj(write_file("blank2.obj", "\nv 1 2" + " " * 500 + "x" * 200 + "\n"))


def test_utf8_byte_order_mark_is_skipped(write_file):
    text = "v 1 2 3\nv 4 5 6\nv 7 8 9\nf 1 2 3\n"
    expected_verts, expected_faces, _ = load_obj(write_file("plain.obj", text))
    for f in (
        write_file("bom.obj", b"\xef\xbb\xbf" + text.encode()),
        io.StringIO("\ufeff" + text),  # a text stream opened as "utf-8", not "utf-8-sig"
    ):
        verts, faces, _ = load_obj(f)
        assert torch.equal(verts, expected_verts)
        assert torch.equal(faces.verts_idx, expected_faces.verts_idx)
    with pytest.raises(ValueError, match=r"bom\.obj:2: .*index 0 is invalid"):
        load_obj(write_file("bom.obj", b"\xef\xbb\xbfv 0 0 0\nf 0 1 1\n"))  # lines still count


@pytest.mark.parametrize(
    ("content", "line", "what"),
    [
        ("v 0 0 0\nv 1e39 0 0\n", 2, "vertex"),
        ("v 0 0 0\nv 0 0 -3.5e38\n", 2, "vertex"),
        ("v 0 0 0 1 1 1\nv 0 0 0 0 1e39 0\n", 2, "vertex"),  # a colour
        ("v 0 0 0\nvt 0 1e39\n", 2, "texture coordinate"),
        ("vn 0 0 1\nvn 1e300 0 0\n", 2, "normal"),
    ],
)
def test_numbers_beyond_float32_name_file_and_line(write_file, content, line, what):
    with pytest.raises(ValueError, match=f"bad.obj:{line}: {what}.*overflows float32"):
        load_obj(write_file("bad.obj", content))


def test_largest_float32_still_loads(write_file):
    verts, _, _ = load_obj(write_file("big.obj", "v 3.4028234e38 -3.4028234e38 0\n"))
    assert torch.isfinite(verts).all()
    assert verts[0, 0] == torch.finfo(torch.float32).max


class _ReadRecorder(io.RawIOBase):
    """A binary stream of ``size`` NUL bytes that records the size of every read."""

    def __init__(self, size):
        self.left, self.reads, self.name = size, [], "nul.obj"

    def readable(self):
        return True

    def read(self, size=-1):
        self.reads.append(size)
        size = self.left if size is None or size < 0 else min(size, self.left)
        self.left -= size
        return b"\0" * size


def test_binary_content_is_refused_from_the_first_block(tmp_path):
    stream = _ReadRecorder(1 << 31)  # a 2 GiB stream: reading it whole would need 2 GiB
    with pytest.raises(ValueError, match=r"nul\.obj: not an OBJ text file"):
        load_obj(stream)
    assert stream.reads == [1 << 16]
    path = tmp_path / "sparse.obj"
    with open(path, "wb") as handle:
        handle.truncate(64 << 20)  # 64 MiB of NUL bytes (sparse: nothing written)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"sparse\.obj: not an OBJ text file .*NUL"):
            load_obj(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20  # one 64 KiB block, not the file
    with pytest.raises(ValueError, match=r"not an OBJ text file .*UTF-8 at byte 8"):
        load_obj(io.BytesIO(b"v 0 0 0\n\xff" + b" " * (1 << 20)))


def test_multibyte_character_cut_by_the_first_block_is_fine():
    text = ("#" + "é" * 40000 + "\nv 1 2 3\n").encode()  # a 2-byte character spans byte 65536
    assert text[(1 << 16) - 1 : (1 << 16) + 1].decode() == "é"
    verts, _, _ = load_obj(io.BytesIO(text))
    assert verts.tolist() == [[1.0, 2.0, 3.0]]


def _numpy1_fromstring(string, dtype=float, sep=""):
    """``np.fromstring(text, dtype, sep=" ")`` as numpy 1.x behaves: it reads numbers while it
    can and, at the first text that is not one, stops with a DeprecationWarning and returns
    what it read ("3.0" as an integer gives 3, then the rest is dropped); numpy 2 raises."""
    integer = np.issubdtype(dtype, np.integer)
    number = re.compile(
        rb"[+-]?\d+" if integer else rb"[+-]?(nan|inf(inity)?|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)",
        re.IGNORECASE,
    )
    values = []
    for token in string.split():
        match = number.match(token)
        if match is not None:
            values.append(int(match.group()) if integer else float(match.group()))
        if match is None or match.end() != len(token):
            warnings.warn("string or file could not be read to its end due to unmatched data",
                          DeprecationWarning, stacklevel=2)
            break
    return np.array(values, dtype=dtype)


def test_parser_raises_under_numpy_1_fromstring(monkeypatch, write_file):
    """numpy 1.24-1.26 (which the dependency floors allow) return a partial parse with a
    DeprecationWarning where numpy 2 raises: the parser must raise on both."""
    good = "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 0\nvt .5 1e-1\nf 1 2 3\nf 2/1 4/1 -2/1\n"
    expected = load_obj(write_file("good.obj", good))
    monkeypatch.setattr(np, "fromstring", _numpy1_fromstring)
    verts, faces, aux = load_obj(write_file("good.obj", good))  # the emulation reads good files
    assert torch.equal(verts, expected[0]) and torch.equal(aux.verts_uvs, expected[2].verts_uvs)
    assert torch.equal(faces.verts_idx, expected[1].verts_idx)
    for content, line, fragment in (
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3.0\n", 4, "'3.0' is not an integer"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3e0\n", 4, "'3e0' is not an integer"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nf 1/1 2/1.5 3/1\n", 5, "'1.5' is not an integer"),
        ("v 0 0 0\nv 1 2 3abc\n", 2, "'3abc' is not a number"),
    ):
        with pytest.raises(ValueError, match=f"bad.obj:{line}: .*{fragment}"):
            load_obj(write_file("bad.obj", content))
