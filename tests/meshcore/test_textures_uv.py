"""TexturesUV: bilinear sampling against hand-computed values, gradcheck, batch ops."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from diffmesh.meshcore import Meshes, TexturesUV, join_meshes_as_batch, join_meshes_as_scene
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


def _multi_map_batch():
    """Two meshes; mesh 0 has 3 maps (faces read maps 2 and 0), mesh 1 has 2 maps."""
    _, faces, _, faces_uvs, verts_uvs = _two_mesh_uv_batch()
    g = torch.Generator().manual_seed(9)
    maps = [
        torch.rand(3, 6, 8, 3, dtype=torch.float64, generator=g),
        torch.rand(2, 6, 8, 3, dtype=torch.float64, generator=g),
    ]
    maps_ids = [torch.tensor([2, 0]), torch.tensor([1])]
    return faces, maps, faces_uvs, verts_uvs, maps_ids


def _face_uv(verts_uvs, faces_uvs, mesh, face, bary):
    corners = verts_uvs[mesh][faces_uvs[mesh][face]]
    return [float(x) for x in (bary[:, None] * corners).sum(0)]


def test_maps_ids_each_face_reads_its_map():
    _, maps, faces_uvs, verts_uvs, maps_ids = _multi_map_batch()
    tex = TexturesUV(maps, faces_uvs, verts_uvs, maps_ids=maps_ids)
    assert tex.maps_padded().shape == (2, 3, 6, 8, 3)  # mesh 1's stack padded to 3 maps
    assert (tex.maps_padded()[1, 2] == 0).all()
    assert tex.maps_ids_padded().tolist() == [[2, 0], [1, -1]]
    bary = torch.tensor([[0.2, 0.3, 0.5], [0.5, 0.4, 0.1], [0.3, 0.3, 0.4]], dtype=torch.float64)
    got = tex.sample_at(torch.tensor([0, 1, 2]), bary)
    for k, (mesh, face) in enumerate([(0, 0), (0, 1), (1, 0)]):
        u, v = _face_uv(verts_uvs, faces_uvs, mesh, face, bary[k])
        want = ref_bilinear(maps[mesh][maps_ids[mesh][face]], u, v, False)
        torch.testing.assert_close(got[k], want)
    # the corner texels are samples at the corner barycentrics
    corners = tex.faces_verts_textures_packed()
    eye = torch.eye(3, dtype=torch.float64)
    for f in range(3):
        torch.testing.assert_close(corners[f], tex.sample_at(torch.full((3,), f), eye))


def test_maps_ids_padded_inputs_batch_ops_and_joins():
    faces, maps, faces_uvs, verts_uvs, _ = _multi_map_batch()
    padded_maps = torch.stack([maps[0], torch.cat([maps[1], maps[1][:1]])])
    ids = torch.tensor([[2, 0], [1, 7]])  # 7: beyond mesh 1's faces, never read
    fpad = torch.tensor([[[0, 1, 2], [0, 2, 3]], [[2, 1, 0], [-1, -1, -1]]])
    tex = TexturesUV(padded_maps, fpad, verts_uvs, maps_ids=ids)
    assert [i.tolist() for i in tex.maps_ids_list()] == [[2, 0], [1]]
    verts = [torch.rand(4, 3, dtype=torch.float64), torch.rand(3, 3, dtype=torch.float64)]
    meshes = Meshes(verts, faces, textures=tex)
    bary = torch.tensor([[0.2, 0.3, 0.5]] * 3, dtype=torch.float64)
    face = torch.tensor([0, 1, 2])
    want = meshes.sample_textures(face, bary)
    ext = meshes.extend(2)
    assert [i.tolist() for i in ext.textures.maps_ids_list()] == [[2, 0], [2, 0], [1], [1]]
    torch.testing.assert_close(meshes[1].sample_textures(face[:1], bary[:1]), want[2:])
    scene = join_meshes_as_scene(meshes)  # the stacks of both meshes, ids offset: exact
    assert scene.textures.maps_padded().shape == (1, 6, 6, 8, 3)
    torch.testing.assert_close(scene.sample_textures(face, bary), want)
    # joining with a single-map texture makes it a stack of one map
    single = TexturesUV(maps[0][:1], faces_uvs[:1], verts_uvs[:1])
    joined = tex.join_batch([single])
    assert joined.maps_padded().shape == (3, 3, 6, 8, 3)
    assert [i.tolist() for i in joined.maps_ids_list()] == [[2, 0], [1], [0, 0]]
    torch.testing.assert_close(
        joined.sample_at(torch.tensor([3]), bary[:1]), single.sample_at(face[:1], bary[:1])
    )
    both = join_meshes_as_batch([meshes, meshes[0]])
    assert [i.tolist() for i in both.textures.maps_ids_list()] == [[2, 0], [1], [2, 0]]


@pytest.mark.parametrize("padding_mode", ["zeros", "reflection"])
def test_join_scene_other_padding_is_exact(padding_mode):
    _, _, maps, faces_uvs, verts_uvs = _two_mesh_uv_batch()
    verts_uvs = [v * 1.6 - 0.3 for v in verts_uvs]  # some samples outside the map
    tex = TexturesUV(maps, faces_uvs, verts_uvs, padding_mode=padding_mode)
    scene = tex.join_scene()
    assert scene.maps_padded().shape == (1, 2, 6, 8, 3)
    bary = torch.tensor([[0.9, 0.05, 0.05]] * 3, dtype=torch.float64)
    face = torch.arange(3)
    torch.testing.assert_close(scene.sample_at(face, bary), tex.sample_at(face, bary))


def test_modes_reach_the_lookup():
    _, _, maps, faces_uvs, verts_uvs = _two_mesh_uv_batch()
    bary = torch.tensor([[0.2, 0.3, 0.5], [0.6, 0.1, 0.3]], dtype=torch.float64)
    face = torch.tensor([0, 2])
    outside = [v + 2.0 for v in verts_uvs]
    zeros = TexturesUV(maps, faces_uvs, outside, "zeros")
    assert (zeros.sample_at(face, bary) == 0).all()
    nearest = TexturesUV(maps, faces_uvs, verts_uvs, sampling_mode="nearest", align_corners=True)
    got = nearest.sample_at(face, bary)
    for k, (mesh, f) in enumerate([(0, 0), (1, 0)]):
        u, v = _face_uv(verts_uvs, faces_uvs, mesh, f, bary[k])
        row, col = round((1 - v) * 5), round(u * 7)  # 6 x 8 map, pixel centres at 0 and 1
        torch.testing.assert_close(got[k], maps[mesh, row, col])
    for t in (nearest[0], nearest.extend(2), nearest.clone(), nearest.join_batch([nearest])):
        assert (t.padding_mode, t.align_corners, t.sampling_mode) == ("border", True, "nearest")


def test_maps_ids_gradcheck():
    _, maps, faces_uvs, verts_uvs, maps_ids = _multi_map_batch()
    maps = [m[:, :3, :4].clone().requires_grad_(True) for m in maps]
    vuv = verts_uvs[0].clone().requires_grad_(True)
    bary = torch.tensor([[0.2, 0.3, 0.5], [0.6, 0.1, 0.3], [0.3, 0.3, 0.4]], dtype=torch.float64)

    def fn(m0, m1, a):
        tex = TexturesUV([m0, m1], faces_uvs, [a, verts_uvs[1]], maps_ids=maps_ids)
        return tex.sample_at(torch.tensor([0, 1, 2]), bary)

    assert torch.autograd.gradcheck(fn, (*maps, vuv))


def test_maps_ids_and_mode_errors():
    _, maps, faces_uvs, verts_uvs, maps_ids = _multi_map_batch()
    with pytest.raises(ValueError, match=r"maps_ids\[0\] has id 3 but mesh 0 has 3 maps"):
        TexturesUV(maps, faces_uvs, verts_uvs, maps_ids=[torch.tensor([3, 0]), maps_ids[1]])
    with pytest.raises(ValueError, match=r"maps_ids\[1\] has id 2 but mesh 1 has 2 maps"):
        TexturesUV(maps, faces_uvs, verts_uvs, maps_ids=[maps_ids[0], torch.tensor([2])])
    with pytest.raises(ValueError, match=r"maps_ids\[1\] must have shape \(1,\)"):
        TexturesUV(maps, faces_uvs, verts_uvs, maps_ids=[maps_ids[0], torch.tensor([0, 1])])
    with pytest.raises(TypeError, match="maps_ids must be a long tensor"):
        TexturesUV(maps, faces_uvs, verts_uvs, maps_ids=torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"maps\[0\] must have shape \(M, H, W, C\)"):
        TexturesUV([m[0] for m in maps], faces_uvs, verts_uvs, maps_ids=maps_ids)
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        TexturesUV(maps[0][:2], faces_uvs, verts_uvs, padding_mode="repeat")
    with pytest.raises(ValueError, match="sampling_mode must be one of"):
        TexturesUV(maps[0][:2], faces_uvs, verts_uvs, sampling_mode="cubic")
    tex = TexturesUV(maps[0][:2], faces_uvs, verts_uvs)
    with pytest.raises(ValueError, match="others\\[0\\] has padding_mode='zeros'"):
        tex.join_batch([TexturesUV(maps[0][:2], faces_uvs, verts_uvs, "zeros")])


@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
def test_maps_ids_empty_mesh_and_zero_area_no_nan(padding_mode):
    maps = torch.rand(2, 2, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    vuv = torch.tensor([[1.0, 1.0]] * 3, dtype=torch.float64, requires_grad=True)
    tex = TexturesUV(
        maps,
        [torch.zeros(0, 3, dtype=torch.long), torch.tensor([[0, 1, 2]])],
        [torch.zeros(0, 2, dtype=torch.float64), vuv],
        padding_mode,
        maps_ids=[torch.zeros(0, dtype=torch.long), torch.tensor([1])],
    )
    bary = torch.tensor([[1 / 3] * 3, [-1.0] * 3], dtype=torch.float64, requires_grad=True)
    out = tex.sample_at(torch.tensor([0, -1]), bary)
    assert tex.faces_verts_textures_packed().shape == (1, 3, 3)
    out.sum().backward()
    for t in (out, maps.grad, vuv.grad, bary.grad):
        assert torch.isfinite(t).all()
    assert (out[1] == 0).all()
