"""Tests of rasterize_meshes against the dense, obviously correct reference rasterizer
(``dense_rasterize`` in conftest.py)."""

from __future__ import annotations

import pytest
import torch
from diffmesh.meshcore import Meshes
from diffmesh.softrender import BlendParams, Fragments, rasterize_meshes, softmax_rgb_blend
from diffmesh.softrender.blending import softmax_blend_pairs


def _reference(dense, meshes: Meshes, image_size, blur, k, persp=False, clip=False, cull=False):
    verts, faces = meshes.verts_packed(), meshes.faces_packed()
    return dense(
        verts[faces],
        meshes.faces_packed_to_mesh_idx(),
        len(meshes),
        image_size,
        blur,
        k,
        persp,
        clip,
        cull,
    )


def _scene(dtype: torch.dtype = torch.float32) -> Meshes:
    """Three meshes: random faces (some behind the camera, some off-image, a zero-area one),
    an empty mesh, and overlapping faces sharing vertices (z ties)."""
    g = torch.Generator().manual_seed(0)
    v0 = torch.rand(30, 3, generator=g, dtype=dtype) * 2.6 - 1.3
    v0[:, 2] = torch.rand(30, generator=g, dtype=dtype) * 3 + 0.2
    v0[3, 2] = -0.4  # faces using vertex 3 reach behind the camera
    v0[7] = v0[8]  # faces using both 7 and 8 have zero area
    f0 = torch.randint(0, 30, (25, 3), generator=g)
    f0[0] = torch.tensor([7, 8, 1])
    f0[1] = torch.tensor([3, 4, 5])
    fan = torch.tensor(
        [
            [0.0, 0.0, 1.0],
            [0.8, 0.1, 1.0],
            [0.1, 0.8, 1.0],
            [-0.7, 0.2, 1.0],
            [0.2, -0.7, 1.0],
            [5.0, 5.0, 1.0],
        ],
        dtype=dtype,
    )
    f2 = torch.tensor(
        [[0, 1, 2], [0, 2, 3], [0, 3, 4], [0, 4, 1], [1, 5, 2]]
    )  # z ties around vertex 0
    empty_v = torch.zeros(0, 3, dtype=dtype)
    empty_f = torch.zeros(0, 3, dtype=torch.long)
    return Meshes(verts=[v0, empty_v, fan], faces=[f0, empty_f, f2])


def _assert_matches(fr: Fragments, ref, meshes: Meshes, persp: bool, fragment_checks) -> None:
    """Same fragments as the float32 reference, within bounds derived from float32's
    epsilon and each face's conditioning (see ``fragment_checks`` in conftest.py)."""
    condition, assert_close = fragment_checks
    cond = condition(meshes.verts_packed()[meshes.faces_packed()], persp)
    p2f = ref[0]
    if cond.numel() == 0:
        cond = torch.ones(1, dtype=torch.float64)
    per_fragment = torch.where(p2f >= 0, cond[p2f.clamp(min=0)], 1.0)
    assert_close(fr, ref, per_fragment)


@pytest.mark.parametrize("image_size", [9, (8, 11), (12, 7)])
@pytest.mark.parametrize(("blur", "k"), [(0.0, 1), (0.0, 3), (0.05, 2), (0.05, 6)])
@pytest.mark.parametrize("persp", [False, True])
def test_matches_dense_reference(dense_rasterize, fragment_checks, image_size, blur, k, persp):
    meshes = _scene()
    clip = blur > 0
    fr = rasterize_meshes(
        meshes, image_size, blur, k, perspective_correct=persp, clip_barycentric_coords=clip
    )
    size = (image_size, image_size) if isinstance(image_size, int) else image_size
    ref = _reference(dense_rasterize, meshes, size, blur, k, persp, clip)
    _assert_matches(fr, ref, meshes, persp, fragment_checks)
    assert fr.pix_to_face.shape == (3, *size, k)
    assert bool((fr.pix_to_face[1] == -1).all())  # the empty mesh


@pytest.mark.parametrize("cull", [False, True])
@pytest.mark.parametrize("clip", [False, True])
def test_culling_and_clipping_match_reference(dense_rasterize, fragment_checks, cull, clip):
    meshes = _scene()
    fr = rasterize_meshes(meshes, 10, 0.02, 4, clip_barycentric_coords=clip, cull_backfaces=cull)
    ref = _reference(dense_rasterize, meshes, (10, 10), 0.02, 4, False, clip, cull)
    _assert_matches(fr, ref, meshes, False, fragment_checks)


def _off_image_mesh(height: int, width: int) -> Meshes:
    """Faces wholly outside the image: far beyond each edge (faces 0-3), and just beyond the
    left (+X) and top (+Y) edges, within the blur radius of the border pixels (4, back-facing,
    and 5 wound the other way), plus a large back-facing face inside (6). The NDC half-extents are 1 on the
    short side and ``long / short`` on the long one (PyTorch3D's non-square convention)."""
    half_x, half_y = max(width / height, 1.0), max(height / width, 1.0)
    tri = torch.tensor([[0.0, 0.0], [0.4, 0.0], [0.0, 0.4]])
    offsets = torch.tensor([
        [half_x + 2.0, 0.0], [-half_x - 2.4, 0.1], [0.2, half_y + 1.5], [-0.1, -half_y - 1.9],
        [half_x + 0.03, -0.2], [0.1, half_y + 0.02],
    ])
    verts = (tri[None] + offsets[:, None]).reshape(-1, 2)
    inside = torch.tensor([[-0.6, -0.6], [0.6, -0.6], [-0.6, 0.6]])
    verts = torch.cat([verts, inside])
    z = torch.linspace(1.0, 2.0, verts.shape[0])[:, None]
    faces = torch.arange(verts.shape[0]).view(-1, 3)
    faces[5] = faces[5].flip(0)  # front-facing: of the faces in reach, culling keeps only 5
    return Meshes([torch.cat([verts, z], dim=1)], [faces])


@pytest.mark.parametrize("image_size", [9, (8, 11), (11, 8)])
@pytest.mark.parametrize("blur", [0.0, 0.05])
@pytest.mark.parametrize("persp", [False, True])
@pytest.mark.parametrize("cull", [False, True])
def test_faces_outside_the_image_match_reference(
    dense_rasterize, fragment_checks, image_size, blur, persp, cull
):
    size = (image_size, image_size) if isinstance(image_size, int) else image_size
    meshes = _off_image_mesh(*size)
    fr = rasterize_meshes(meshes, image_size, blur, 3, perspective_correct=persp,
                          clip_barycentric_coords=blur > 0, cull_backfaces=cull)
    ref = _reference(dense_rasterize, meshes, size, blur, 3, persp, blur > 0, cull)
    _assert_matches(fr, ref, meshes, persp, fragment_checks)
    p2f = fr.pix_to_face
    seen = set(p2f.unique().tolist()) - {-1}
    assert not seen & {0, 1, 2, 3}  # far outside: never a fragment
    near_border = seen & {4, 5}
    if blur == 0.0:
        assert not near_border  # no pixel centre inside them and no blur
    else:  # within sqrt(blur) of the border pixels: fragments, outside (positive distance)
        assert {4, 5} - near_border == ({4} if cull else set())  # 4 faces away
        assert bool((fr.dists[(p2f == 4) | (p2f == 5)] > 0).all())
    assert (6 in seen) != cull  # the face inside is wound like 4


def test_exact_bits_and_tie_order(dense_rasterize):
    """Bit-identical to the reference; a pixel with tied depths orders faces by id."""
    meshes = _scene()
    fr = rasterize_meshes(meshes, 16, 0.01, 5)
    ref = _reference(dense_rasterize, meshes, (16, 16), 0.01, 5)
    for a, b in zip((fr.pix_to_face, fr.zbuf, fr.bary_coords, fr.dists), ref, strict=True):
        assert torch.equal(a, b)
    p2f, zbuf = fr.pix_to_face[2], fr.zbuf[2]
    tied = (p2f[..., 1] >= 0) & (zbuf[..., 0] == zbuf[..., 1])
    assert bool(tied.any())
    assert bool((p2f[..., 0][tied] < p2f[..., 1][tied]).all())


def test_over_full_pixels_keep_k_nearest():
    """Ten stacked faces at distinct depths cover the centre; K=3 keeps the three nearest."""
    tri = torch.tensor([[-1.0, -1.0, 0.0], [1.0, -1.0, 0.0], [0.0, 1.0, 0.0]])
    depths = torch.tensor([5.0, 2.0, 9.0, 1.0, 7.0, 3.0, 8.0, 4.0, 6.0, 10.0])
    verts = (
        tri[None] + torch.stack([torch.zeros(10), torch.zeros(10), depths], 1)[:, None]
    ).reshape(-1, 3)
    faces = torch.arange(30).reshape(10, 3)
    fr = rasterize_meshes(Meshes([verts], [faces]), 5, 0.0, 3)
    centre = fr.pix_to_face[0, 2, 2]
    assert centre.tolist() == [3, 1, 5]
    assert fr.zbuf[0, 2, 2].tolist() == [1.0, 2.0, 3.0]


def test_pixel_conventions():
    """Pixel (0, 0) is top-left at NDC (+1, +1): a face in the +x +y corner lands there."""
    verts = torch.tensor([[1.0, 1.0, 1.0], [0.5, 1.0, 1.0], [1.0, 0.5, 1.0]])
    fr = rasterize_meshes(Meshes([verts], [torch.tensor([[0, 1, 2]])]), 8, 0.0, 1)
    hit = (fr.pix_to_face[0, ..., 0] >= 0).nonzero()
    assert hit.numel() > 0
    assert int(hit[:, 0].max()) <= 1 and int(hit[:, 1].max()) <= 1


def test_gradcheck_through_softmax_blend():
    """float64 gradcheck of rasterize + softmax_rgb_blend w.r.t. the vertex positions."""
    verts = torch.tensor(
        [
            [-0.61, -0.53, 1.5],
            [0.71, -0.43, 2.0],
            [0.03, 0.69, 1.8],
            [0.52, 0.61, 1.2],
            [-0.33, 0.17, 2.5],
        ],
        dtype=torch.float64,
    )  # no pixel centre exactly on an edge (where dists and clipping have kinks)
    faces = torch.tensor([[0, 1, 2], [1, 3, 2], [0, 2, 4]])
    g = torch.Generator().manual_seed(3)
    colors = torch.rand(3, 3, 3, generator=g, dtype=torch.float64)
    params = BlendParams(sigma=2e-3, gamma=0.05)

    def render(v: torch.Tensor) -> torch.Tensor:
        fr = rasterize_meshes(Meshes([v], [faces]), 8, 0.01, 3, clip_barycentric_coords=True)
        from diffmesh.softrender import interpolate_face_attributes

        c = interpolate_face_attributes(fr.pix_to_face, fr.bary_coords, colors)
        return softmax_rgb_blend(c, fr, params, znear=1.0, zfar=4.0)

    v = verts.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(render, (v,), eps=1e-7, atol=1e-6, rtol=1e-4, fast_mode=True)


@pytest.mark.parametrize(
    ("persp", "clip"), [(False, False), (True, False), (False, True), (True, True)]
)
def test_gradcheck_pairs(persp, clip):
    """float64 gradcheck of zbuf, bary_coords and dists for every option combination."""
    g = torch.Generator().manual_seed(1)
    verts = torch.rand(9, 3, generator=g, dtype=torch.float64) * 1.6 - 0.8
    verts[:, 2] = torch.rand(9, generator=g, dtype=torch.float64) * 2 + 1
    faces = torch.tensor([[0, 1, 2], [3, 4, 5], [6, 7, 8], [0, 4, 8]])
    w = torch.randn(3, 10, 10, 4, 5, generator=g, dtype=torch.float64)

    def fn(v: torch.Tensor) -> torch.Tensor:
        fr = rasterize_meshes(
            Meshes([v], [faces]),
            10,
            0.02,
            4,
            perspective_correct=persp,
            clip_barycentric_coords=clip,
        )
        return (
            (fr.zbuf * w[0, ..., 0]).sum()
            + (fr.dists * w[1, ..., 0]).sum()
            + (fr.bary_coords * w[2, ..., :3]).sum()
        )

    v = verts.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(fn, (v,), eps=1e-7, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("output", ["zbuf", "bary_coords", "dists"])
def test_gradcheck_single_output(output):
    """Unused outputs give no gradient channels; each output alone still has exact gradients."""
    g = torch.Generator().manual_seed(2)
    verts = torch.rand(6, 3, generator=g, dtype=torch.float64) * 1.6 - 0.8
    verts[:, 2] = torch.rand(6, generator=g, dtype=torch.float64) * 2 + 1
    faces = torch.tensor([[0, 1, 2], [3, 4, 5], [0, 4, 2]])
    w = torch.randn(8, 8, 3, 3, generator=g, dtype=torch.float64)

    def fn(v: torch.Tensor) -> torch.Tensor:
        fr = rasterize_meshes(Meshes([v], [faces]), 8, 0.02, 3, perspective_correct=True,
                              clip_barycentric_coords=True)
        value = getattr(fr, output)
        return (value * (w if output == "bary_coords" else w[..., 0])).sum()

    v = verts.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(fn, (v,), eps=1e-7, atol=1e-5, rtol=1e-4)


def test_degenerate_inputs_no_nan():
    """Empty meshes, zero-area faces and duplicate vertices: finite values and gradients."""
    verts = torch.tensor(
        [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.5, 0.5, 1.0], [0.5, 0.5, 1.0], [-0.5, 0.3, 2.0]],
        requires_grad=True,
    )
    faces = torch.tensor([[0, 1, 2], [2, 3, 4], [0, 2, 4], [1, 1, 1]])
    meshes = Meshes([verts, torch.zeros(0, 3)], [faces, torch.zeros(0, 3, dtype=torch.long)])
    fr = rasterize_meshes(meshes, 12, 0.05, 4, clip_barycentric_coords=True)
    colors = torch.ones(*fr.pix_to_face.shape, 3)
    img = softmax_rgb_blend(colors, fr, BlendParams())
    img.sum().backward()
    for t in (fr.zbuf, fr.bary_coords, fr.dists, img, verts.grad):
        assert bool(torch.isfinite(t).all())
    assert int(fr.pix_to_face.max()) == 2  # only the one proper face is drawn
    empty = rasterize_meshes(
        Meshes([torch.zeros(0, 3)], [torch.zeros(0, 3, dtype=torch.long)]), 4, 0.0, 2
    )
    assert bool((empty.pix_to_face == -1).all()) and bool((empty.zbuf == -1).all())


def test_bad_arguments():
    meshes = _scene()
    with pytest.raises(ValueError, match="faces_per_pixel"):
        rasterize_meshes(meshes, 8, 0.0, 0)
    with pytest.raises(ValueError, match="blur_radius"):
        rasterize_meshes(meshes, 8, -1.0, 1)
    with pytest.raises(TypeError, match="image_size"):
        rasterize_meshes(meshes, "big", 0.0, 1)
    with pytest.raises(TypeError, match="meshes"):
        rasterize_meshes(torch.zeros(3, 3), 8, 0.0, 1)


def test_double_backward_is_refused():
    """The hand-written backward passes are not themselves differentiable: a second-order
    gradient must raise, not silently miss the terms through the saved per-pair values
    (as ``once_differentiable`` does when another path reaches the inputs)."""
    verts = torch.tensor(
        [[-0.5, -0.5, 1.0], [0.5, -0.4, 1.2], [0.0, 0.6, 1.1]], dtype=torch.float64, requires_grad=True
    )
    fr = rasterize_meshes(Meshes([verts], [torch.tensor([[0, 1, 2]])]), 8, 0.01, 2)
    with pytest.raises(RuntimeError, match="second-order"):
        torch.autograd.grad((fr.zbuf**2).sum() + (verts**3).sum(), verts, create_graph=True)
    colors = torch.rand(fr.pairs.pix.shape[0], 3, dtype=torch.float64, requires_grad=True)
    image = softmax_blend_pairs(fr.pairs.detach(), lambda idx: colors[idx], BlendParams())
    with pytest.raises(RuntimeError, match="second-order"):  # the sparse blend's own backward
        torch.autograd.grad(image.sum(), colors, create_graph=True)
    (grad,) = torch.autograd.grad((fr.zbuf**2).sum(), verts)  # first order as usual
    assert bool(torch.isfinite(grad).all())
