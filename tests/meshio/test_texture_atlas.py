"""load_obj(create_texture_atlas=...) and load_objs_as_meshes -> TexturesAtlas: the atlas
against a per-texel reference written from the layout, texture_wrap, keywords, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffmesh.meshcore import TexturesAtlas
from diffmesh.meshio import load_obj, load_objs_as_meshes
from PIL import Image

MTL = "newmtl img\nKd 0.2 0.3 0.4\nmap_Kd tex.png\nnewmtl flat\nKd 0.5 0.25 1.0\nnewmtl bare\n"


def obj_text(uvs: list[tuple[float, float]]) -> str:
    """Five triangles: one before any usemtl (white), two with the image, one with a plain
    Kd colour, one with a material without colours (white)."""
    vt = "".join(f"vt {u} {v}\n" for u, v in uvs)
    return (
        "mtllib m.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 0\n" + vt + "f 1 2 3\n"
        "usemtl img\nf 1/1 2/2 3/3\nf 2/2 4/4 3/3\n"
        "usemtl flat\nf 1/1 2/2 3/3\n"
        "usemtl bare\nf 1 2 3\n"
    )


@pytest.fixture
def textured(write_file, tmp_path):
    """Write the image (3 x 4 random colours) and the MTL; return the OBJ writer."""
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (3, 4, 3), dtype=np.uint8)).save(tmp_path / "tex.png")
    write_file("m.mtl", MTL)

    def write(name: str, uvs: list[tuple[float, float]]):
        return write_file(name, obj_text(uvs))

    return write


#: The atlas is bilinear in float32 over a 3 x 4 image of values in [0, 1]: uv errors of
#: a few eps are magnified by the image size (<= 4 texels per unit uv) and the texel jumps
#: (<= 1), plus a few eps of rounding in the blend itself.
ATOL32 = 32 * torch.finfo(torch.float32).eps

UVS = [(0.1, 0.2), (0.9, 0.3), (0.4, 0.8), (0.7, 0.95)]


def centroid(i: int, j: int, r: int) -> tuple[float, float, float]:
    """Barycentrics of the centroid of cell (row i, column j)'s sub-triangle, from its
    corners in the (w0, w1) plane (lower triangles of squares with i + j < R; the other
    cells hold the upper triangles of squares (R-1-i, R-1-j))."""
    if i + j < r:
        corners = [(j, i), (j + 1, i), (j, i + 1)]
    else:
        a, b = r - 1 - i, r - 1 - j
        corners = [(b + 1, a + 1), (b + 1, a), (b, a + 1)]
    w0 = sum(c[0] for c in corners) / (3 * r)
    w1 = sum(c[1] for c in corners) / (3 * r)
    return w0, w1, 1 - w0 - w1


def bilinear_zero_pad(image: torch.Tensor, u: float, v: float) -> torch.Tensor:
    """u = 0 / 1 at the centres of the first / last column, v = 0 the bottom row; taps
    outside the image read 0."""
    h, w, _ = image.shape
    x, y = u * (w - 1), (1 - v) * (h - 1)
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    out = torch.zeros(3, dtype=torch.float64)
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= yy < h and 0 <= xx < w:
                out += wy * wx * image[yy, xx].double()
    return out


def reference_atlas(aux, faces, uvs: list[tuple[float, float]], r: int) -> torch.Tensor:
    image = aux.texture_images["img"]
    names = list(aux.material_colors)
    out = torch.ones(faces.verts_idx.shape[0], r, r, 3, dtype=torch.float64)
    for f in range(out.shape[0]):
        m = int(faces.materials_idx[f])
        name = names[m] if m >= 0 else None
        if name is not None and "diffuse_color" in aux.material_colors[name]:
            out[f] = aux.material_colors[name]["diffuse_color"].double()
        corners = faces.textures_idx[f].tolist()
        if name != "img" or min(corners) < 0:
            continue
        for i in range(r):
            for j in range(r):
                w = centroid(i, j, r)
                u = sum(w[k] * uvs[corners[k]][0] for k in range(3))
                v = sum(w[k] * uvs[corners[k]][1] for k in range(3))
                out[f, i, j] = bilinear_zero_pad(image, u, v)
    return out


@pytest.mark.parametrize("r", [1, 2, 4])
def test_atlas_matches_reference(textured, r):
    path = textured("a.obj", UVS)
    _, faces, aux = load_obj(path, create_texture_atlas=True, texture_atlas_size=r)
    assert aux.texture_atlas.shape == (5, r, r, 3) and aux.texture_atlas.dtype == torch.float32
    want = reference_atlas(aux, faces, UVS, r)
    torch.testing.assert_close(aux.texture_atlas.double(), want, atol=ATOL32, rtol=0)
    assert (aux.texture_atlas[0] == 1).all() and (aux.texture_atlas[4] == 1).all()
    torch.testing.assert_close(aux.texture_atlas[3, 0, 0], torch.tensor([0.5, 0.25, 1.0]))


def test_texture_wrap(textured):
    outside = [(1.1, -0.8), (2.9, 0.3), (-0.6, 1.8), (0.7, 0.95)]
    wrapped = [(0.1, 0.2), (0.9, 0.3), (0.4, 0.8), (0.7, 0.95)]
    clamped = [(1.0, 0.0), (1.0, 0.3), (0.0, 1.0), (0.7, 0.95)]

    def atlas(uvs, wrap):
        path = textured(f"w{abs(hash((tuple(uvs), wrap)))}.obj", uvs)
        return load_obj(path, create_texture_atlas=True, texture_wrap=wrap)[2].texture_atlas

    torch.testing.assert_close(atlas(outside, "repeat"), atlas(wrapped, "repeat"))
    torch.testing.assert_close(atlas(outside, "clamp"), atlas(clamped, None))
    _, faces, aux = load_obj(
        textured("n.obj", outside), create_texture_atlas=True, texture_wrap=None
    )
    torch.testing.assert_close(
        aux.texture_atlas.double(), reference_atlas(aux, faces, outside, 4), atol=ATOL32, rtol=0
    )
    # uvs of exactly 0 and 1 are kept (not wrapped to 0) under "repeat"
    edges = [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)]
    torch.testing.assert_close(atlas(edges, "repeat"), atlas(edges, None))


def test_load_objs_as_meshes_gives_textures_atlas(textured, write_file):
    path = textured("a.obj", UVS)
    mesh = load_objs_as_meshes([path], create_texture_atlas=True, texture_atlas_size=3)
    assert isinstance(mesh.textures, TexturesAtlas)
    atlas = load_obj(path, create_texture_atlas=True, texture_atlas_size=3)[2].texture_atlas
    assert torch.equal(mesh.textures.atlas_packed(), atlas)
    plain = write_file("plain.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    assert load_obj(plain, create_texture_atlas=True)[2].texture_atlas is None
    both = load_objs_as_meshes([path, plain], create_texture_atlas=True, texture_atlas_size=3)
    assert [a.shape[0] for a in both.textures.atlas_list()] == [5, 1]
    assert (both.textures.atlas_list()[1] == 1).all()  # no materials: white
    # vertex 2 of face 1 reads cell (0, 0): the image at that corner's uv, nearly
    colors = both.sample_textures(torch.tensor([1]), torch.tensor([[0.0, 0.0, 1.0]]))
    torch.testing.assert_close(colors[0], atlas[1, 0, 0])
    assert (
        load_objs_as_meshes([path], load_textures=False, create_texture_atlas=True).textures is None
    )


def test_keywords_in_pytorch3d_order(textured):
    path = textured("a.obj", UVS)
    _, _, aux = load_obj(path, True, True, 2, "clamp", "cpu", None)
    assert aux.texture_atlas.shape == (5, 2, 2, 3)
    _, _, aux = load_obj(path, path_manager=object())  # accepted, unused
    assert aux.texture_atlas is None
    _, _, aux = load_obj(path, load_textures=False, create_texture_atlas=True)
    assert aux.texture_atlas is None and aux.material_colors is None
    mesh = load_objs_as_meshes([path], None, True, False, 4, "repeat", object())
    assert mesh.textures is not None and not isinstance(mesh.textures, TexturesAtlas)


def test_degenerate_files(write_file, textured):
    textured("unused.obj", UVS)  # writes m.mtl and tex.png
    path = write_file("nofaces.obj", "mtllib m.mtl\nv 0 0 0\nusemtl img\n")
    _, _, aux = load_obj(path, create_texture_atlas=True, texture_atlas_size=3)
    assert aux.texture_atlas.shape == (0, 3, 3, 3)
    # a zero-area face and a face without vt: finite; the face without vt keeps its colour
    text = (
        "mtllib m.mtl\nv 0 0 0\nv 0 0 0\nv 0 0 0\nvt 0.5 0.5\nusemtl img\nf 1/1 2/1 3/1\nf 1 2 3\n"
    )
    _, _, aux = load_obj(write_file("zero.obj", text), create_texture_atlas=True)
    assert torch.isfinite(aux.texture_atlas).all()
    torch.testing.assert_close(aux.texture_atlas[1, 0, 0], torch.tensor([0.2, 0.3, 0.4]))
    torch.testing.assert_close(aux.texture_atlas[0], aux.texture_atlas[0, :1, :1].expand(4, 4, 3))


def test_bad_arguments(textured):
    path = textured("a.obj", UVS)
    with pytest.raises(ValueError, match="texture_atlas_size must be >= 1"):
        load_obj(path, create_texture_atlas=True, texture_atlas_size=0)
    with pytest.raises(TypeError, match="texture_atlas_size must be an int"):
        load_obj(path, create_texture_atlas=True, texture_atlas_size=2.0)
    with pytest.raises(ValueError, match="texture_wrap must be one of"):
        load_objs_as_meshes([path], create_texture_atlas=True, texture_wrap="mirror")
