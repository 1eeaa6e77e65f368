"""Tests of the pair rasterizer's internals: grid plans, buffer trims, K-nearest selection,
the no-gradient forward and pixel indices past float32's exact integers."""

from __future__ import annotations

import pytest
import torch
from diffmesh.meshcore import Meshes
from diffmesh.softrender import _raster_pairs, rasterize_meshes
from diffmesh.softrender._raster_eval import GridAxes
from diffmesh.softrender._raster_pairs import (
    _count_above,
    _k_nearest_drop,
    _plan_chunks,
    ndc_pixel_centers,
)


def _crowded_scene() -> Meshes:
    """Forty overlapping faces (many pixels with more than K of them), depths with ties
    (faces sharing vertices), and a fan of faces meeting at one vertex."""
    g = torch.Generator().manual_seed(5)
    verts = torch.rand(24, 3, generator=g) * 2.2 - 1.1
    verts[:, 2] = torch.randint(1, 4, (24,), generator=g).float()  # few distinct depths: ties
    faces = torch.randint(0, 24, (40, 3), generator=g)
    faces = faces[(faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])]
    fan = torch.tensor([[0.0, 0.0, 2.0], [0.9, 0.1, 2.0], [0.1, 0.9, 2.0], [-0.8, 0.2, 2.0], [0.2, -0.8, 2.0]])
    fan_faces = torch.tensor([[0, 1, 2], [0, 2, 3], [0, 3, 4], [0, 4, 1]])
    return Meshes([verts, fan], [faces, fan_faces])


@pytest.mark.parametrize(
    ("chunk", "trim", "few"),
    [(1, 1 << 20, 64), (48, 1 << 20, 64), (48, 16, 64), (200, 40, 0), (1 << 16, 1 << 20, 0)],
)
@pytest.mark.parametrize(("blur", "k", "clip"), [(0.0, 1, False), (0.03, 2, True), (0.03, 3, False)])
def test_grids_and_trims_match_reference(monkeypatch, dense_rasterize, chunk, trim, few, blur, k, clip):
    """Tiny grids (one face each, several per grid), early trims with buffer growth, and
    both ways of removing pairs beyond the K nearest give the reference's exact fragments."""
    monkeypatch.setattr(_raster_pairs, "_CHUNK_PAIRS", chunk)
    monkeypatch.setattr(_raster_pairs, "_TRIM_PAIRS", trim)
    monkeypatch.setattr(_raster_pairs, "_FEW_DROPS", few)
    meshes = _crowded_scene()
    fr = rasterize_meshes(meshes, (13, 11), blur, k, clip_barycentric_coords=clip)
    verts, faces = meshes.verts_packed(), meshes.faces_packed()
    ref = dense_rasterize(verts[faces], meshes.faces_packed_to_mesh_idx(), 2, (13, 11), blur, k, False, clip)
    over = (fr.pairs.pix.bincount() >= k).sum()
    assert int(over) > 0  # the scene does fill pixels
    for got, want in zip((fr.pix_to_face, fr.zbuf, fr.bary_coords, fr.dists), ref, strict=True):
        assert torch.equal(got, want)


def _brute_force_drop(pix: torch.Tensor, z: torch.Tensor, face: torch.Tensor, k: int) -> list[int]:
    drop = []
    for p in pix.unique().tolist():
        members = (pix == p).nonzero().squeeze(1).tolist()
        members.sort(key=lambda i: (float(z[i]), int(face[i])))
        drop += members[k:]
    return sorted(drop)


@pytest.mark.parametrize(
    ("dtype", "face_scale"),
    [(torch.float32, 1), (torch.float32, 1 << 22), (torch.float32, 1 << 40), (torch.float64, 1)],
)
def test_k_nearest_drop_orders_by_depth_then_face(dtype, face_scale):
    """One packed-key sort (float32), a (z, face) key then a pixel sort (no room for the
    pixel rank), and stable sorts (face ids past 2^32, float64) all keep each pixel's K
    smallest (z, face id), ties and -0.0 included."""
    g = torch.Generator().manual_seed(7)
    n = 400
    pix = torch.randint(0, 30, (n,), generator=g) * 7
    z = torch.randint(0, 4, (n,), generator=g).to(dtype) * 0.5
    z[torch.randperm(n, generator=g)[:20]] = -0.0
    face = torch.randperm(n, generator=g) * face_scale
    for k in (1, 3, 12):
        drop = _k_nearest_drop(pix, z, face, k)
        assert drop is not None
        assert drop.tolist() == _brute_force_drop(pix, z, face, k)
    assert _k_nearest_drop(pix, z, face, n) is None


def test_plan_chunks_covers_every_face_once(monkeypatch):
    counts = torch.tensor([1] * 70 + [2] * 5 + [3] * 40 + [9] * 3 + [30] * 2 + [500])
    for chunk in (1, 64, 100):
        monkeypatch.setattr(_raster_pairs, "_CHUNK_PAIRS", chunk)
        plan = _plan_chunks(counts)
        assert [a for a, _, _ in plan] == [0] + [b for _, b, _ in plan[:-1]]
        assert plan[-1][1] == counts.shape[0]
        for a, b, w in plan:
            assert w == int(counts[a:b].max())
            assert (b - a) * w <= max(chunk, w)  # one face alone may exceed the chunk
            assert int(counts[a:b].max()) <= 2 * int(counts[a:b].min())


def test_no_grad_forward_gives_the_same_fragments():
    """Without gradients the rasterizer skips the backward's rows, not any output."""
    meshes = _crowded_scene()
    with torch.no_grad():
        plain = rasterize_meshes(meshes, 12, 0.02, 3, perspective_correct=True, clip_barycentric_coords=True)
    verts = [v.clone().requires_grad_(True) for v in meshes.verts_list()]
    graded = rasterize_meshes(Meshes(verts, meshes.faces_list()), 12, 0.02, 3, perspective_correct=True,
                              clip_barycentric_coords=True)
    assert graded.zbuf.requires_grad and not plain.zbuf.requires_grad
    for got, want in zip(graded, plain, strict=True):
        assert torch.equal(got.detach(), want)


def test_pixel_indices_past_float32_integers():
    """On an image with more than 2^24 pixels the pair's pixel index is still exact."""
    size = 4100  # 16.81M pixels > 2^24
    xs = ndc_pixel_centers(size, size, torch.float32, torch.device("cpu"))
    # a thin face in the bottom rows (pixel indices above 2^24)
    tri = torch.tensor([[-0.930, -0.9976, 1.0], [-0.950, -0.9978, 1.0], [-0.940, -0.9994, 1.0]])
    fr = rasterize_meshes(Meshes([tri], [torch.tensor([[0, 1, 2]])]), size, 0.0, 1)
    pix = fr.pairs.pix
    assert pix.shape[0] > 10 and int(pix.min()) > 1 << 24
    y, x = pix // size, pix % size
    # every pixel centre around the face, inside test in float64
    yy, xx = torch.meshgrid(torch.arange(int(y.min()) - 3, min(int(y.max()) + 4, size)),
                            torch.arange(int(x.min()) - 3, min(int(x.max()) + 4, size)), indexing="ij")
    px, py = xs[xx].double(), xs[yy].double()
    t = tri.double()

    def edge(a: int, b: int) -> torch.Tensor:
        return (px - t[a, 0]) * (t[b, 1] - t[a, 1]) - (py - t[a, 1]) * (t[b, 0] - t[a, 0])

    e0, e1, e2 = edge(1, 2), edge(2, 0), edge(0, 1)
    inside = ((e0 > 0) & (e1 > 0) & (e2 > 0)) | ((e0 < 0) & (e1 < 0) & (e2 < 0))
    expected = sorted((yy[inside] * size + xx[inside]).tolist())
    assert sorted(pix.tolist()) == expected


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("size", "other"), [(512, 512), (7, 5), (5, 7), (1, 3), (2, 9), (300, 17), (4100, 4100)])
def test_box_bounds_match_a_search(dtype, size, other):
    """Face boxes in pixels: the estimate-and-correct count of centres above a value equals
    a binary search of the float centres, at and next to every centre and at infinities."""
    xs = ndc_pixel_centers(size, other, dtype, torch.device("cpu"))
    axis = GridAxes(other, size, dtype, torch.device("cpu")).x  # an axis of `size` pixels
    g = torch.Generator().manual_seed(size)
    v = torch.cat([
        torch.rand(5000, generator=g, dtype=dtype) * 6 - 3, xs, xs.nextafter(xs + 1), xs.nextafter(xs - 1),
        torch.tensor([float("inf"), -float("inf")], dtype=dtype),
    ])
    up = xs.flip(0)
    for strict in (True, False):
        want = size - torch.searchsorted(up, v, side="right" if strict else "left")
        assert torch.equal(_count_above(axis, v.clone(), strict).long(), want)


@pytest.mark.parametrize(
    "drop", [[0], [9], [38], [39], [2, 3, 30], [30, 31, 37], [0, 39], [5, 20, 21, 22]]
)
@pytest.mark.parametrize("block", [1, 3, 1 << 14])
def test_shift_out_either_side(monkeypatch, drop, block):
    """Dropped columns are removed in place, from the shorter side, with the others in order."""
    monkeypatch.setattr(_raster_pairs, "_SHIFT_BLOCK", block)
    t = torch.arange(2 * 50).view(2, 50).clone()
    lo, hi = _raster_pairs._shift_out(t, drop, 40)
    want = [c for c in range(40) if c not in drop]
    assert hi - lo == len(want)
    assert torch.equal(t[0, lo:hi], torch.tensor(want)) and torch.equal(t[1, lo:hi], torch.tensor(want) + 50)
    assert (lo == 0) == (40 - drop[0] <= drop[-1])
    assert torch.equal(t[:, 40:], torch.arange(100).view(2, 50)[:, 40:])  # past size: untouched
