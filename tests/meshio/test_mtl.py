"""MTL materials: colours, map_Kd paths, missing or broken files (warnings), malformed lines."""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np
import pytest
import torch
from diffmesh.meshio import (
    MaterialWarning,
    load_mtl,
    load_obj,
    load_objs_as_meshes,
    load_texture_image,
)
from PIL import Image

TRIANGLE = "v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 0 1\n"


def _png(path, color=(255, 0, 0), size=(3, 2)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), color, np.uint8)).save(path)


def test_colors_of_every_material(write_file):
    path = write_file(
        "m.mtl",
        "# materials\nnewmtl shiny\nKa 0.1 0.2 0.3\nKd 0.4 0.5 0.6  # diffuse\n"
        "Ks 0.7 0.8 0.9\nNs 250\nillum 2\n\nnewmtl grey\n\tKd 0.5\nd 1.0\n",
    )
    colors, images = load_mtl(path)
    assert list(colors) == ["shiny", "grey"] and images == {}
    shiny = colors["shiny"]
    torch.testing.assert_close(shiny["ambient_color"], torch.tensor([0.1, 0.2, 0.3]))
    torch.testing.assert_close(shiny["diffuse_color"], torch.tensor([0.4, 0.5, 0.6]))
    torch.testing.assert_close(shiny["specular_color"], torch.tensor([0.7, 0.8, 0.9]))
    assert shiny["shininess"].tolist() == [250.0]
    assert colors["grey"] == {"diffuse_color": colors["grey"]["diffuse_color"]}
    assert colors["grey"]["diffuse_color"].tolist() == [0.5, 0.5, 0.5]  # "Kd r" means r r r


def test_map_paths_relative_with_spaces_and_options(write_file, tmp_path):
    _png(tmp_path / "tex dir" / "my texture.png", (0, 255, 0))
    _png(tmp_path / "plain.png", (0, 0, 255))
    path = write_file(
        "m.mtl",
        "newmtl a\nmap_Kd tex dir/my texture.png\n"
        "newmtl b\nmap_Kd -s 1 1 1 -bm 0.5 plain.png\n"
        "newmtl c\nmap_Kd tex dir\\my texture.png\n",
    )
    _, images = load_mtl(path)
    assert images["a"][0, 0].tolist() == [0.0, 1.0, 0.0]
    assert images["b"][0, 0].tolist() == [0.0, 0.0, 1.0]
    assert torch.equal(images["c"], images["a"])
    _, images = load_mtl(path, material_names=["b"])
    assert list(images) == ["b"]


def test_texture_image_values(tmp_path):
    pixels = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4) * 10
    Image.fromarray(pixels, "RGBA").save(tmp_path / "rgba.png")
    image = load_texture_image(tmp_path / "rgba.png")
    assert image.shape == (2, 3, 3) and image.dtype == torch.float32
    torch.testing.assert_close(image, torch.from_numpy(pixels[..., :3] / 255.0).float())
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match=r"bad\.png"):
        load_texture_image(tmp_path / "bad.png")
    with pytest.raises(FileNotFoundError):
        load_texture_image(tmp_path / "missing.png")


def test_missing_mtl_warns_and_geometry_loads(write_file):
    path = write_file("a.obj", "mtllib missing.mtl\nusemtl x\n" + TRIANGLE + "f 1/1 2/2 3/3\n")
    with pytest.warns(MaterialWarning, match=r"missing\.mtl"):
        verts, faces, aux = load_obj(path)
    assert verts.shape == (3, 3) and faces.materials_idx.tolist() == [0]
    assert aux.material_colors is None and aux.texture_images is None
    with pytest.warns(MaterialWarning):
        mesh = load_objs_as_meshes(path)
    assert mesh.textures is None


def test_missing_or_broken_texture_warns_and_geometry_loads(write_file, tmp_path):
    write_file("m.mtl", "newmtl x\nKd 1 0 0\nmap_Kd gone.png\nnewmtl y\nmap_Kd broken.png\n")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG garbage")
    text = "mtllib m.mtl\n" + TRIANGLE + "usemtl x\nf 1/1 2/2 3/3\nusemtl y\nf 1/1 2/2 3/3\n"
    path = write_file("a.obj", text)
    with pytest.warns(MaterialWarning) as record:
        _, faces, aux = load_obj(path)
    messages = " ".join(str(w.message) for w in record)
    assert "gone.png" in messages and "broken.png" in messages
    assert aux.texture_images == {} and aux.material_colors["x"]["diffuse_color"].tolist() == [1, 0, 0]
    assert faces.verts_idx.shape == (2, 3)


def test_usemtl_without_mtllib_warns(write_file):
    with pytest.warns(MaterialWarning, match="without an mtllib"):
        load_obj(write_file("a.obj", TRIANGLE + "usemtl x\nf 1 2 3\n"))


def test_undefined_material_warns_and_keeps_index_order(write_file):
    write_file("m.mtl", "newmtl unused\nKd 0 0 1\nnewmtl b\nKd 0 1 0\n")
    text = "mtllib m.mtl\n" + TRIANGLE + "usemtl a\nf 1 2 3\nusemtl b\nf 1 2 3\n"
    with pytest.warns(MaterialWarning, match="'a'"):
        _, faces, aux = load_obj(write_file("a.obj", text))
    # list(material_colors)[materials_idx] names each face's material
    assert list(aux.material_colors) == ["a", "b", "unused"]
    names = [list(aux.material_colors)[i] for i in faces.materials_idx.tolist()]
    assert names == ["a", "b"] and aux.material_colors["a"] == {}


def test_load_textures_false_skips_materials(write_file):
    path = write_file("a.obj", "mtllib missing.mtl\n" + TRIANGLE + "f 1 2 3\n")
    _, _, aux = load_obj(path, load_textures=False)  # no warning: nothing is read
    assert aux.material_colors is None


def test_obj_with_map_but_no_uvs_loads_untextured(write_file, tmp_path):
    _png(tmp_path / "t.png")
    write_file("m.mtl", "newmtl x\nmap_Kd t.png\n")
    path = write_file("a.obj", "mtllib m.mtl\nusemtl x\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    with pytest.warns(MaterialWarning, match="no vt"):
        mesh = load_objs_as_meshes(path)
    assert mesh.textures is None


def test_faces_without_uvs_sample_the_map_corner(write_file, tmp_path):
    _png(tmp_path / "t.png", (0, 0, 255), size=(1, 1))
    write_file("m.mtl", "newmtl x\nmap_Kd t.png\n")
    text = "mtllib m.mtl\nusemtl x\n" + TRIANGLE + "f 1/1 2/2 3/3\nf 1 2 3\n"
    mesh = load_objs_as_meshes(write_file("a.obj", text))
    faces_uvs = mesh.textures.faces_uvs_list()[0]
    assert faces_uvs[1].tolist() == [3, 3, 3]
    assert mesh.textures.verts_uvs_list()[0][3].tolist() == [0.0, 0.0]


@pytest.mark.parametrize(
    ("content", "line"),
    [("newmtl a\nKd 1 x 0\n", 2), ("newmtl a\nKa 1 1\n", 2), ("newmtl a\n\nNs 1 2\n", 3)],
)
def test_malformed_mtl_lines(write_file, content, line):
    with pytest.raises(ValueError, match=f"m.mtl:{line}:"):
        load_mtl(write_file("m.mtl", content))


def test_binary_mtl_is_value_error(write_file):
    with pytest.raises(ValueError, match="UTF-8"):
        load_mtl(write_file("m.mtl", b"newmtl \xff\xfe\n"))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_map_kd_naming_a_fifo_warns_instead_of_hanging(write_file, tmp_path):
    os.mkfifo(tmp_path / "pipe.png")  # opening it for reading would block until a writer comes
    write_file("m.mtl", "newmtl a\nKd 1 1 1\nmap_Kd pipe.png\n")
    path = write_file("a.obj", "mtllib m.mtl\nusemtl a\n" + TRIANGLE + "f 1/1 2/2 3/3\n")
    with pytest.warns(MaterialWarning, match=r"pipe\.png.*not a regular file"):
        verts, _, aux = load_obj(path)
    assert verts.shape == (3, 3) and aux.texture_images == {}
    with pytest.raises(ValueError, match="not a regular file"):
        load_texture_image(tmp_path)  # a folder
    with pytest.raises(ValueError, match="material library is not a regular file"):
        load_mtl(tmp_path / "pipe.png")


def _png_header_only(path, width, height):
    """A PNG whose header declares width x height pixels, with no image data."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


def test_decompression_bomb_texture_warns(write_file, tmp_path):
    _png_header_only(tmp_path / "bomb.png", 100000, 100000)
    with pytest.raises(ValueError, match=r"bomb\.png"):
        load_texture_image(tmp_path / "bomb.png")
    write_file("m.mtl", "newmtl a\nmap_Kd bomb.png\n")
    path = write_file("a.obj", "mtllib m.mtl\nusemtl a\n" + TRIANGLE + "f 1/1 2/2 3/3\n")
    with pytest.warns(MaterialWarning, match=r"bomb\.png.*DecompressionBomb|bomb\.png.*pixels"):
        _, _, aux = load_obj(path)
    assert aux.texture_images == {}


def test_mtl_byte_order_mark_and_float32_range(write_file):
    colors, _ = load_mtl(write_file("m.mtl", b"\xef\xbb\xbfnewmtl a\nKd 0.5 0.25 1\n"))
    assert list(colors) == ["a"]
    assert colors["a"]["diffuse_color"].tolist() == [0.5, 0.25, 1.0]
    for line in ("Kd 1e39 0 0", "Ka nan 0 0", "Ns inf"):
        with pytest.raises(ValueError, match=r"m\.mtl:2: .*finite float32"):
            load_mtl(write_file("m.mtl", f"newmtl a\n{line}\n"))
