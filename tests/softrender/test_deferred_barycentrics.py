"""Deferred barycentrics (``defer_barycentrics=True``, asked for by shaders that read only
``dists``): the same fragments bit for bit and the same gradients, whichever outputs are
read, and the silhouette renderer's images unchanged."""

from __future__ import annotations

import pickle

import pytest
import torch
from diffmesh.meshcore import Meshes
from diffmesh.softrender import (
    BlendParams,
    FoVPerspectiveCameras,
    Fragments,
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


@pytest.mark.parametrize(("persp", "clip", "cull", "k"),
                         [(False, False, False, 4), (False, True, True, 4), (True, False, False, 1),
                          (True, True, True, 4)])
def test_deferred_gradcheck(persp, clip, cull, k):
    """float64 gradcheck of zbuf, lazily read bary_coords and dists on deferred fragments."""
    g = torch.Generator().manual_seed(1)
    verts = torch.rand(9, 3, generator=g, dtype=torch.float64) * 1.6 - 0.8
    verts[:, 2] = torch.rand(9, generator=g, dtype=torch.float64) * 2 + 1
    faces = torch.tensor([[0, 1, 2], [3, 4, 5], [6, 7, 8], [0, 4, 8]])
    w = torch.randn(3, 10, 10, k, 3, generator=g, dtype=torch.float64)

    def fn(v: torch.Tensor) -> torch.Tensor:
        fr = rasterize_face_verts(v[faces], torch.zeros(4, dtype=torch.long), 1, 10, 0.02, k, persp, clip, cull,
                                  defer_barycentrics=True)
        return (fr.zbuf * w[0, ..., 0]).sum() + (fr.dists * w[1, ..., 0]).sum() + (fr.bary_coords * w[2]).sum()

    v = verts.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(fn, (v,), eps=1e-7, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("defer", [False, True])
def test_degenerate_and_empty_pairs(defer):
    """Zero-area faces, repeated vertex ids and no faces at all: finite, no NaN."""
    g = torch.Generator().manual_seed(11)
    verts = (torch.rand(5, 3, generator=g) - 0.5).requires_grad_(True)
    with torch.no_grad():
        verts[:, 2] += 1.5
        verts[1] = verts[0]  # a duplicate vertex: faces through it have zero area
    faces = torch.tensor([[0, 1, 2], [2, 3, 4], [0, 2, 4], [3, 3, 3]])
    pairs = rasterize_face_verts(verts[faces], torch.zeros(4, dtype=torch.long), 1, 12, 0.05, 4, False, True,
                                 defer_barycentrics=defer).pairs
    (pairs.bary.sum() + pairs.zbuf.sum() + pairs.dists.sum()).backward()
    assert bool(torch.isfinite(pairs.bary).all()) and bool(torch.isfinite(verts.grad).all())
    empty = rasterize_face_verts(torch.zeros(0, 3, 3, requires_grad=True), torch.zeros(0, dtype=torch.long), 1, 4,
                                 0.0, 2, defer_barycentrics=defer)
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
    # Same gradients up to float32 rounding: entries that are sums of cancelling terms err by
    # ulps of the largest entries, not of their own size.
    tol = 16 * torch.finfo(torch.float32).eps * float(want[1].abs().max())
    torch.testing.assert_close(got[1], want[1], rtol=1e-6, atol=tol)


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


def _bary_grad(defer: bool, read_mask_without_grad: bool) -> torch.Tensor:
    fv = _face_verts(torch.float64, seed=5)[0].requires_grad_(True)
    fr = rasterize_face_verts(fv, torch.arange(30) % 2, 2, (13, 11), 0.03, 4, True, False,
                              defer_barycentrics=defer)
    if read_mask_without_grad:
        with torch.no_grad():
            fr.pix_to_face.ge(0)  # materialises every dense field, bary_coords included
    (grad,) = torch.autograd.grad((fr.pairs.bary[:, 0] * fr.pairs.zbuf).sum(), fv)
    return grad


def test_deferred_read_first_without_grad_keeps_the_gradient():
    """Barycentrics first read under no_grad are still computed with their graph: the grad
    mode of the rasterization decides, not that of the first read."""
    want = _bary_grad(defer=False, read_mask_without_grad=True)
    torch.testing.assert_close(_bary_grad(defer=True, read_mask_without_grad=True), want)
    torch.testing.assert_close(_bary_grad(defer=True, read_mask_without_grad=False), want)


def test_deferred_rasterized_without_grad_reads_without_graph():
    fv = _face_verts()[0].requires_grad_(True)
    with torch.no_grad():
        stored = rasterize_face_verts(fv, torch.arange(30) % 2, 2, (13, 11), 0.03, 4)
        deferred = rasterize_face_verts(fv, torch.arange(30) % 2, 2, (13, 11), 0.03, 4, defer_barycentrics=True)
    assert not deferred.bary_coords.requires_grad and not deferred.zbuf.requires_grad
    assert torch.equal(deferred.bary_coords, stored.bary_coords)


def test_deferred_detach_pickles_and_drops_the_graph():
    fv = _face_verts()[0].requires_grad_(True)
    fr = rasterize_face_verts(fv * 1.0, torch.arange(30) % 2, 2, (13, 11), 0.03, 4, defer_barycentrics=True)
    detached = fr.detach()
    assert detached.pairs._bary is None  # still deferred
    copy = pickle.loads(pickle.dumps(detached.pairs))
    want = rasterize_face_verts(fv.detach(), torch.arange(30) % 2, 2, (13, 11), 0.03, 4).pairs.bary
    for pairs in (detached.pairs, copy):
        assert pairs.bary.grad_fn is None and torch.equal(pairs.bary, want)
    assert fr.pairs._bary is None  # detaching did not compute the original's


def test_deferred_after_in_place_change_raises():
    fv = _face_verts()[0]
    pairs = rasterize_face_verts(fv, torch.arange(30) % 2, 2, (13, 11), 0.03, 4, defer_barycentrics=True).pairs
    fv.add_(0.1)  # e.g. an optimizer step on the vertices themselves
    with pytest.raises(RuntimeError, match="modified in place"):
        pairs.bary  # noqa: B018


def test_assigning_bary_raises_without_computing_it():
    pairs = rasterize_face_verts(_face_verts()[0], torch.arange(30) % 2, 2, (13, 11), 0.03, 4,
                                 defer_barycentrics=True).pairs
    with pytest.raises(AttributeError, match="immutable"):
        pairs.bary = torch.zeros(1, 3)
    assert pairs._bary is None


def test_renderer_with_a_rasterizer_subclass_of_fixed_signature():
    """A MeshRasterizer subclass whose forward does not take the hint still renders."""

    class PlainRasterizer(MeshRasterizer):
        def forward(self, meshes_world: Meshes, cameras: FoVPerspectiveCameras | None = None) -> Fragments:
            return super().forward(meshes_world, cameras=cameras)

    R, T = look_at_view_transform(2.7, 10.0, 20.0)
    cameras = FoVPerspectiveCameras(R=R, T=T)
    settings = RasterizationSettings(image_size=16, blur_radius=1e-3, faces_per_pixel=4)
    verts = torch.tensor([[0.0, 0.0, 0.0], [0.8, 0.0, 0.0], [0.0, 0.8, 0.0]])
    mesh = Meshes([verts], [torch.tensor([[0, 1, 2]])])
    shader = SoftSilhouetteShader(BlendParams(sigma=1e-4))
    got = MeshRenderer(PlainRasterizer(cameras, settings), shader)(mesh)
    want = MeshRenderer(MeshRasterizer(cameras, settings), shader)(mesh)
    assert torch.equal(got, want)
