"""TexturesUV: bilinear sampling against hand-computed values, gradcheck, batch ops."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from diffmesh.meshcore import Meshes, TexturesUV
from diffmesh.meshcore.textures.uv import sample_bilinear

# A 2 x 2 single-channel map; row 0 is the TOP of the image.
#   top row:    10  20
#   bottom row: 30  40
MAP = torch.tensor([[[10.0], [20.0]], [[30.0], [40.0]]], dtype=torch.float64)[None]


def ref_bilinear(img: torch.Tensor, u: float, v: float, align_corners: bool) -> torch.Tensor:
    """Slow per-point reference: img (H, W, C), border clamp, v = 0 at the bottom."""
    h, w, _ = img.shape
    if align_corners:
        x, y = u * (w - 1), (1 - v) * (h - 1)
    else:
        x, y = u * w - 0.5, (1 - v) * h - 0.5
    x0, y0 = int(torch.floor(torch.tensor(x))), int(torch.floor(torch.tensor(y)))
    out = torch.zeros(img.shape[2], dtype=img.dtype)
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            out += wy * wx * img[min(max(yy, 0), h - 1), min(max(xx, 0), w - 1)]
    return out


@pytest.mark.parametrize(
    ("u", "v", "want"),
    [
        (0.25, 0.75, 10.0),  # centre of the top-left pixel (v = 0.75 is the top row)
        (0.75, 0.75, 20.0),
        (0.25, 0.25, 30.0),  # bottom-left pixel: v = 0 is the bottom row
        (0.75, 0.25, 40.0),
        (0.5, 0.5, 25.0),  # image centre: mean of the four
        (0.0, 1.0, 10.0),  # corner: border clamp
        (1.0, 0.0, 40.0),
        (0.5, 0.75, 15.0),  # halfway along the top row
        (0.25, 0.5, 20.0),  # halfway down the left column
        (-3.0, 0.25, 30.0),  # far outside: border
    ],
)
def test_hand_computed_values(u, v, want):
    uv = torch.tensor([[u, v]], dtype=torch.float64)
    got = sample_bilinear(MAP, torch.zeros(1, dtype=torch.long), uv)
    torch.testing.assert_close(got, torch.tensor([[want]], dtype=torch.float64))


def test_align_corners_true_corners_are_pixel_centres():
    uv = torch.tensor(
        [[0.0, 1.0], [1.0, 1.0], [0.0, 0.0], [1.0, 0.0], [0.5, 0.5]], dtype=torch.float64
    )
    got = sample_bilinear(MAP, torch.zeros(5, dtype=torch.long), uv, align_corners=True)
    torch.testing.assert_close(got[:, 0], torch.tensor([10.0, 20, 30, 40, 25], dtype=torch.float64))


@pytest.mark.parametrize("align_corners", [False, True])
def test_matches_reference_and_grid_sample(align_corners):
    g = torch.Generator().manual_seed(0)
    maps = torch.rand(2, 5, 7, 3, generator=g, dtype=torch.float64)
    uv = torch.rand(40, 2, generator=g, dtype=torch.float64) * 1.4 - 0.2
    idx = torch.randint(0, 2, (40,), generator=g)
    got = sample_bilinear(maps, idx, uv, align_corners)
    want = torch.stack(
        [
            ref_bilinear(maps[i], float(p[0]), float(p[1]), align_corners)
            for i, p in zip(idx, uv, strict=True)
        ]
    )
    torch.testing.assert_close(got, want)
    # grid_sample: x = 2u - 1, y = 1 - 2v (grid y = -1 is the top row)
    grid = torch.stack([2 * uv[:, 0] - 1, 1 - 2 * uv[:, 1]], dim=1)
    gs = F.grid_sample(
        maps.permute(0, 3, 1, 2)[idx],
        grid[:, None, None],
        mode="bilinear",
        padding_mode="border",
        align_corners=align_corners,
    )[:, :, 0, 0]
    torch.testing.assert_close(got, gs)


def _two_mesh_uv_batch():
    verts = [torch.rand(4, 3, dtype=torch.float64), torch.rand(3, 3, dtype=torch.float64)]
    faces = [torch.tensor([[0, 1, 2], [0, 2, 3]]), torch.tensor([[0, 1, 2]])]
    verts_uvs = [
        torch.tensor([[0.1, 0.1], [0.9, 0.2], [0.8, 0.9], [0.2, 0.7]], dtype=torch.float64),
        torch.tensor([[0.5, 0.5], [0.6, 0.5], [0.5, 0.6]], dtype=torch.float64),
    ]
    faces_uvs = [torch.tensor([[0, 1, 2], [0, 2, 3]]), torch.tensor([[2, 1, 0]])]
    maps = torch.rand(2, 6, 8, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    return verts, faces, maps, faces_uvs, verts_uvs


def test_sample_at_each_mesh_reads_its_own_map():
    verts, faces, maps, faces_uvs, verts_uvs = _two_mesh_uv_batch()
    tex = TexturesUV(maps, faces_uvs, verts_uvs)
    m = Meshes(verts, faces, textures=tex)
    face_idx = torch.tensor([[0, 1], [2, -1]])
    bary = torch.tensor(
        [[[1.0, 0, 0], [0.2, 0.3, 0.5]], [[0, 0, 1.0], [0.3, 0.3, 0.4]]], dtype=torch.float64
    )
    got = m.sample_textures(face_idx, bary)
    assert got.shape == (2, 2, 3)
    torch.testing.assert_close(got[0, 0], ref_bilinear(maps[0], 0.1, 0.1, False))
    uv = 0.2 * verts_uvs[0][0] + 0.3 * verts_uvs[0][2] + 0.5 * verts_uvs[0][3]
    torch.testing.assert_close(got[0, 1], ref_bilinear(maps[0], float(uv[0]), float(uv[1]), False))
    torch.testing.assert_close(got[1, 0], ref_bilinear(maps[1], 0.5, 0.5, False))  # uv index 0
    assert (got[1, 1] == 0).all()


def test_sample_at_gradcheck():
    _verts, _faces, maps, faces_uvs, verts_uvs = _two_mesh_uv_batch()
    maps = maps[:, :3, :4].clone().requires_grad_(True)
    vuv = [t.clone().requires_grad_(True) for t in verts_uvs]
    bary = torch.tensor(
        [[0.2, 0.3, 0.5], [0.6, 0.1, 0.3], [0.3, 0.3, 0.4]], dtype=torch.float64, requires_grad=True
    )
    face_idx = torch.tensor([0, 1, 2])
    fp = torch.zeros(3, 3, dtype=torch.long)

    def fn(maps, a, b, bary):
        return TexturesUV(maps, faces_uvs, [a, b]).sample_at(face_idx, bary, fp)

    assert torch.autograd.gradcheck(fn, (maps, *vuv, bary))


def test_views_and_padded_inputs():
    _, _, maps, faces_uvs, verts_uvs = _two_mesh_uv_batch()
    fpad = torch.full((2, 2, 3), -1, dtype=torch.long)
    fpad[0] = faces_uvs[0]
    fpad[1, :1] = faces_uvs[1]
    vpad = torch.zeros(2, 4, 2, dtype=torch.float64)
    vpad[0] = verts_uvs[0]
    vpad[1, :3] = verts_uvs[1]
    tex = TexturesUV(maps, fpad, vpad)
    assert [f.shape[0] for f in tex.faces_uvs_list()] == [2, 1]
    assert torch.equal(tex.faces_uvs_padded(), fpad)
    torch.testing.assert_close(tex.verts_uvs_padded(), vpad)
    assert tex.maps_padded() is maps and len(tex.maps_list()) == 2
    assert tex.faces_verts_uvs_packed().shape == (3, 3, 2)
    assert tex.faces_uvs_packed().tolist()[2] == [6, 5, 4]  # offset by mesh 0's 4 uvs


def test_maps_list_resized_and_batch_ops():
    _, _, maps, faces_uvs, verts_uvs = _two_mesh_uv_batch()
    tex = TexturesUV([maps[0], maps[1, :3, :4]], faces_uvs, verts_uvs)
    assert tex.maps_padded().shape == (2, 6, 8, 3)
    ext = tex.extend(2)
    assert len(ext) == 4 and [f.shape[0] for f in ext.faces_uvs_list()] == [2, 2, 1, 1]
    assert torch.equal(tex[1].maps_padded()[0], tex.maps_padded()[1])
    joined = tex.join_batch([tex[0]])
    assert len(joined) == 3
    assert tex.to("cpu").device.type == "cpu"


@pytest.mark.parametrize("align_corners", [False, True])
def test_join_scene_preserves_interior_samples(align_corners):
    _, _, maps, faces_uvs, verts_uvs = _two_mesh_uv_batch()
    tex = TexturesUV(maps, faces_uvs, verts_uvs, align_corners=align_corners)
    scene = tex.join_scene()
    assert len(scene) == 1 and scene.maps_padded().shape == (1, 6, 16, 3)
    bary = torch.tensor([[0.2, 0.3, 0.5]] * 3, dtype=torch.float64)
    face_idx = torch.tensor([0, 1, 2])
    fp = torch.zeros(3, 3, dtype=torch.long)
    torch.testing.assert_close(
        scene.sample_at(face_idx, bary, fp), tex.sample_at(face_idx, bary, fp)
    )


def test_degenerate_no_nan():
    maps = torch.rand(1, 4, 4, 3, dtype=torch.float64, requires_grad=True)
    vuv = torch.tensor(
        [[0.5, 0.5]] * 3, dtype=torch.float64, requires_grad=True
    )  # zero-area uv face
    tex = TexturesUV(maps, [torch.tensor([[0, 1, 2]])], [vuv])
    bary = torch.tensor(
        [[1 / 3, 1 / 3, 1 / 3], [0.0, 0.0, 0.0]], dtype=torch.float64, requires_grad=True
    )
    out = tex.sample_at(torch.tensor([0, -1]), bary, torch.zeros(1, 3, dtype=torch.long))
    out.sum().backward()
    for t in (out, maps.grad, vuv.grad, bary.grad):
        assert torch.isfinite(t).all()


def test_errors():
    _, _, maps, faces_uvs, verts_uvs = _two_mesh_uv_batch()
    with pytest.raises(TypeError, match="maps must be a float"):
        TexturesUV(maps.long(), faces_uvs, verts_uvs)
    with pytest.raises(ValueError, match=r"maps must have shape \(N, H, W, C\)"):
        TexturesUV(maps[0], faces_uvs, verts_uvs)
    with pytest.raises(ValueError, match="same batch size"):
        TexturesUV(maps, faces_uvs[:1], verts_uvs)
    with pytest.raises(
        ValueError, match=r"faces_uvs\[1\] has index 3 but verts_uvs\[1\] has only 3"
    ):
        TexturesUV(maps, [faces_uvs[0], torch.tensor([[0, 1, 3]])], verts_uvs)
    with pytest.raises(TypeError, match=r"faces_uvs\[0\] must be a long"):
        TexturesUV(maps, [faces_uvs[0].double(), faces_uvs[1]], verts_uvs)
    with pytest.raises(ValueError, match=r"verts_uvs\[1\] must have shape \(T, 2\)"):
        TexturesUV(maps, faces_uvs, [verts_uvs[0], torch.rand(3, 3)])
    tex = TexturesUV(maps, faces_uvs, verts_uvs)
    with pytest.raises(ValueError, match="faces_packed has 5 faces"):
        tex.sample_at(
            torch.zeros(1, dtype=torch.long), torch.rand(1, 3), torch.zeros(5, 3, dtype=torch.long)
        )
    with pytest.raises(ValueError, match=r"TexturesUV\) has faces_uvs for \[2, 1\]"):
        Meshes([torch.rand(3, 3)] * 2, [torch.tensor([[0, 1, 2]])] * 2, textures=tex)
