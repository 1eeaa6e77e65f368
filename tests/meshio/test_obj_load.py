"""load_obj / load_objs_as_meshes: the bundled meshes, OBJ features, bad input."""

from __future__ import annotations

import io

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
