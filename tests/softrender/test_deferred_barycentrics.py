"""Deferred barycentrics (``defer_barycentrics=True``, asked for by shaders that read only
``dists``): the same fragments bit for bit and the same gradients, whichever outputs are
read, and the silhouette renderer's images unchanged."""

from __future__ import annotations

import pytest
import torch
from diffmesh.meshcore import Meshes
from diffmesh.softrender import (
    BlendParams,
    FoVPerspectiveCameras,
    MeshRasterizer,
    MeshRenderer,
    RasterizationSettings,
    SoftSilhouetteShader,
    look_at_view_transform,
)
from diffmesh.softrender._raster_eval import pair_barycentrics
from diffmesh.softrender._raster_pairs import select_pairs
from diffmesh.softrender.rasterize_meshes import rasterize_face_verts


def _face_verts(dtype: torch.dtype = torch.float32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random faces in two images (overlaps, z ties through shared vertices, a zero-area face)."""
    g = torch.Generator().manual_seed(seed)
    verts = torch.rand(20, 3, generator=g, dtype=dtype) * 2.2 - 1.1
    verts[:, 2] = torch.randint(1, 4, (20,), generator=g).to(dtype)
    verts[5] = verts[6]
    faces = torch.randint(0, 20, (30, 3), generator=g)
    faces[0] = torch.tensor([5, 6, 1])
    return verts[faces], torch.arange(30) % 2


@pytest.mark.parametrize(("persp", "clip"), [(False, False), (True, False), (False, True), (True, True)])
def test_pair_barycentrics_bit_identical(persp, clip):
    """Recomputed barycentric rows equal the ones the grids compute, bit for bit."""
    fv, f2m = _face_verts()
    g = select_pairs(fv, f2m, (13, 11), 0.03, 4, persp, clip, False, need_grad=True)
    qx, qy, b0, b1, b = pair_barycentrics(fv, g.pix, g.face, (13, 11), persp, clip)
    for got, want in ((qx, g.qx), (qy, g.qy), (b0, g.bary0), (b1, g.bary1), (b, g.bary_rows)):
        assert torch.equal(got, want)
    light = select_pairs(fv, f2m, (13, 11), 0.03, 4, persp, clip, False, need_grad=True, need_bary=False)
    assert light.bary is None and light.qx is None and light.bary0 is None
    for name in ("pix", "face", "zbuf", "dists", "edge", "edge_t", "edge_r"):
        assert torch.equal(getattr(light, name), getattr(g, name))


@pytest.mark.parametrize(("persp", "clip"), [(False, True), (True, False)])
@pytest.mark.parametrize("grad", [False, True])
def test_deferred_fragments_identical(persp, clip, grad):
    """Every dense field and every pair field is the same tensor value, bit for bit."""
    fv, f2m = _face_verts()
    fv = fv.requires_grad_(grad)
    args = (fv, f2m, 2, (13, 11), 0.03, 4, persp, clip)
    want, got = rasterize_face_verts(*args), rasterize_face_verts(*args, defer_barycentrics=True)
    for a, b in zip(got, want, strict=True):
        assert torch.equal(a, b)
    for name in ("pix", "face", "bary", "zbuf", "dists"):
        assert torch.equal(getattr(got.pairs, name), getattr(want.pairs, name))
    assert torch.equal(got.pairs.detach().bary, want.pairs.bary.detach())


@pytest.mark.parametrize(("persp", "clip"), [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("outputs", ["dists", "zbuf", "bary", "all"])
def test_deferred_gradients_match(persp, clip, outputs):
    """Gradients through whichever outputs are read equal the stored path's (float64: the
    two paths sum the same terms in a different order)."""
    fv0, f2m = _face_verts(torch.float64, seed=3)
    w = torch.randn(2000, 5, generator=torch.Generator().manual_seed(4), dtype=torch.float64)

    def grad(defer: bool) -> torch.Tensor:
        fv = fv0.clone().requires_grad_(True)
        pairs = rasterize_face_verts(fv, f2m, 2, (13, 11), 0.03, 4, persp, clip, defer_barycentrics=defer).pairs
        n = pairs.pix.shape[0]
        terms = {
            "dists": (pairs.dists * w[:n, 0]).sum(),
            "zbuf": (pairs.zbuf * w[:n, 1]).sum(),
            "bary": (pairs.bary * w[:n, 2:]).sum(),
        }
        loss = sum(terms.values()) if outputs == "all" else terms[outputs]
        (g,) = torch.autograd.grad(loss, fv)
        return g

    torch.testing.assert_close(grad(True), grad(False), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(("persp", "clip"), [(False, True), (True, False)])
def test_deferred_gradcheck(persp, clip):
    """float64 gradcheck of zbuf, lazily read bary_coords and dists on deferred fragments."""
    g = torch.Generator().manual_seed(1)
    verts = torch.rand(9, 3, generator=g, dtype=torch.float64) * 1.6 - 0.8
    verts[:, 2] = torch.rand(9, generator=g, dtype=torch.float64) * 2 + 1
    faces = torch.tensor([[0, 1, 2], [3, 4, 5], [6, 7, 8], [0, 4, 8]])
    w = torch.randn(3, 10, 10, 4, 3, generator=g, dtype=torch.float64)

    def fn(v: torch.Tensor) -> torch.Tensor:
        fr = rasterize_face_verts(v[faces], torch.zeros(4, dtype=torch.long), 1, 10, 0.02, 4, persp, clip,
                                  defer_barycentrics=True)
        return (fr.zbuf * w[0, ..., 0]).sum() + (fr.dists * w[1, ..., 0]).sum() + (fr.bary_coords * w[2]).sum()

    v = verts.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(fn, (v,), eps=1e-7, atol=1e-5, rtol=1e-4)


def test_deferred_degenerate_and_empty():
    """Zero-area faces, duplicate vertices and no faces at all: finite, no NaN."""
    verts = torch.tensor(
        [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.5, 0.5, 1.0], [0.5, 0.5, 1.0], [-0.5, 0.3, 2.0]],
        requires_grad=True,
    )
    faces = torch.tensor([[0, 1, 2], [2, 3, 4], [0, 2, 4], [1, 1, 1]])
    pairs = rasterize_face_verts(verts[faces], torch.zeros(4, dtype=torch.long), 1, 12, 0.05, 4, False, True,
                                 defer_barycentrics=True).pairs
    (pairs.bary.sum() + pairs.zbuf.sum() + pairs.dists.sum()).backward()
    assert bool(torch.isfinite(pairs.bary).all()) and bool(torch.isfinite(verts.grad).all())
    empty = rasterize_face_verts(torch.zeros(0, 3, 3, requires_grad=True), torch.zeros(0, dtype=torch.long), 1, 4,
                                 0.0, 2, defer_barycentrics=True)
    assert empty.bary_coords.shape == (1, 4, 4, 2, 3) and bool((empty.bary_coords == -1).all())


def test_silhouette_renderer_defers_and_matches(monkeypatch):
    """The renderer asks for deferred barycentrics for the silhouette shader; the image and
    the vertex gradients are those of the shader on fully stored fragments."""
    calls = []
    forward = MeshRasterizer.forward

    def spy(self, *args, **kwargs):
        calls.append(kwargs.get("defer_barycentrics", False))
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(MeshRasterizer, "forward", spy)
    sphere_v = torch.tensor(
        [[0.0, 0.0, 1.0], [0.9, 0.0, 0.0], [0.0, 0.9, 0.0], [-0.9, 0.0, 0.0], [0.0, -0.9, 0.0], [0.0, 0.0, -1.0]]
    )
    faces = torch.tensor([[0, 1, 2], [0, 2, 3], [0, 3, 4], [0, 4, 1], [5, 2, 1], [5, 3, 2], [5, 4, 3], [5, 1, 4]])
    R, T = look_at_view_transform(2.7, 20.0, 35.0)
    cameras = FoVPerspectiveCameras(R=R, T=T)
    settings = RasterizationSettings(image_size=24, blur_radius=1e-3, faces_per_pixel=6)
    rasterizer, shader = MeshRasterizer(cameras, settings), SoftSilhouetteShader(BlendParams(sigma=1e-4))

    def run(render) -> tuple[torch.Tensor, torch.Tensor]:
        v = sphere_v.clone().requires_grad_(True)
        image = render(Meshes([v], [faces]))
        (image * torch.linspace(0, 1, image.numel()).view(image.shape)).sum().backward()
        return image.detach(), v.grad

    got = run(MeshRenderer(rasterizer, shader))
    want = run(lambda m: shader(forward(rasterizer, m), m))
    assert calls == [True]
    assert torch.equal(got[0], want[0])
    torch.testing.assert_close(got[1], want[1], rtol=1e-6, atol=1e-7)


def test_deferred_with_z_clip_and_pairs_contract():
    """With z_clip_value the clipped path stores barycentrics anyway (same fragments); a
    RasterPairs needs bary or bary_fn, and its fields cannot be reassigned."""
    fv, f2m = _face_verts(seed=7)
    fv[3, 0, 2] = 0.05  # one face crosses the clip plane
    args = (fv, f2m, 2, (13, 11), 0.03, 4, True, True)
    want = rasterize_face_verts(*args, z_clip_value=0.5)
    got = rasterize_face_verts(*args, z_clip_value=0.5, defer_barycentrics=True)
    for a, b in zip(got, want, strict=True):
        assert torch.equal(a, b)
    pairs = got.pairs
    with pytest.raises(AttributeError, match="immutable"):
        pairs.zbuf = pairs.zbuf
    with pytest.raises(ValueError, match="bary"):
        type(pairs)(pairs.pix, pairs.face, None, pairs.zbuf, pairs.dists, 2, (13, 11), 4)
