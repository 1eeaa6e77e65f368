"""The sparse softmax blend (hand-written backward) against the dense PyTorch3D formula."""

from __future__ import annotations

import pytest
import torch
from diffmesh.softrender import BlendParams, Fragments, softmax_rgb_blend
from diffmesh.softrender.blending import softmax_blend_pairs
from diffmesh.softrender.fragments import RasterPairs


def _random_pairs(seed: int, dtype: torch.dtype = torch.float64) -> tuple[RasterPairs, torch.Tensor]:
    """Pairs on 2 images of 3x4 pixels, up to 4 faces per pixel, with tied depths and
    pixels behind the far plane; and per-pair colours (P, 3) (leaves needing grad)."""
    g = torch.Generator().manual_seed(seed)
    num_images, height, width, k = 2, 3, 4, 4
    npix = num_images * height * width
    counts = torch.randint(0, k + 1, (npix,), generator=g)
    counts[0], counts[1] = k, 1  # a full pixel and a single-face one
    pix = torch.repeat_interleave(torch.arange(npix), counts)
    face = torch.cat([torch.randperm(9, generator=g)[:c] for c in counts.tolist()])
    zbuf = 1.0 + 2.0 * torch.rand(pix.shape[0], generator=g, dtype=dtype)
    first = torch.cumsum(counts, 0) - counts
    zbuf[first[0] + 1] = zbuf[first[0]]  # a tie in depth: broken by face id
    zbuf[first[2] : first[2] + counts[2]] = 5.0  # beyond zfar = 4: z_inv < 0
    dists = 0.02 * torch.randn(pix.shape[0], generator=g, dtype=dtype)
    bary = torch.rand(pix.shape[0], 3, generator=g, dtype=dtype)
    perm = torch.randperm(pix.shape[0], generator=g)  # pairs in no particular order
    pairs = RasterPairs(
        pix[perm], face[perm], bary[perm], zbuf[perm].requires_grad_(), dists[perm].requires_grad_(),
        num_images, (height, width), k,
    )
    colors = torch.rand(pix.shape[0], 3, generator=g, dtype=dtype, requires_grad=True)
    return pairs, colors


def _dense_colors(pairs: RasterPairs, colors: torch.Tensor) -> torch.Tensor:
    order, slot = pairs.slots()
    k = pairs.faces_per_pixel
    out = colors.new_zeros(pairs.num_pixels * k, 3).index_put((pairs.pix[order] * k + slot,), colors[order])
    return out.view(pairs.num_images, *pairs.image_size, k, 3)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("gamma", [1e-1, 1e-3])
def test_softmax_blend_pairs_matches_dense_with_gradients(seed, gamma):
    pairs, colors = _random_pairs(seed)
    blend = BlendParams(sigma=1e-2, gamma=gamma, background_color=(0.2, 0.3, 0.4))
    weights = torch.rand(pairs.num_images, *pairs.image_size, 4, dtype=torch.float64)
    image = softmax_blend_pairs(pairs, lambda idx: colors[idx], blend, znear=1.0, zfar=4.0)
    grads = torch.autograd.grad((image * weights).sum(), (pairs.zbuf, pairs.dists, colors))
    fragments = Fragments(*pairs.to_dense())
    expected = softmax_rgb_blend(_dense_colors(pairs, colors), fragments, blend, znear=1.0, zfar=4.0)
    expected_grads = torch.autograd.grad((expected * weights).sum(), (pairs.zbuf, pairs.dists, colors))
    torch.testing.assert_close(image, expected)
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want)


def test_softmax_blend_pairs_gradcheck():
    pairs, colors = _random_pairs(3)
    blend = BlendParams(sigma=1e-2, gamma=1e-1, background_color=(0.2, 0.3, 0.4))
    bg = torch.tensor([0.2, 0.3, 0.4], dtype=torch.float64, requires_grad=True)

    def fn(zbuf: torch.Tensor, dists: torch.Tensor, cols: torch.Tensor, bg: torch.Tensor) -> torch.Tensor:
        p = RasterPairs(pairs.pix, pairs.face, pairs.bary, zbuf, dists, pairs.num_images, pairs.image_size, 4)
        params = BlendParams(sigma=blend.sigma, gamma=blend.gamma, background_color=bg)
        return softmax_blend_pairs(p, lambda idx: cols[idx], params, znear=1.0, zfar=4.0)

    inputs = (pairs.zbuf.detach().requires_grad_(), pairs.dists.detach().requires_grad_(), colors, bg)
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


def test_softmax_blend_pairs_cut_changes_nothing():
    """Only pairs above 1e-12 of their pixel's weight are coloured: the image is that of all pairs."""
    pairs, colors = _random_pairs(4, torch.float32)
    blend = BlendParams(sigma=1e-2, gamma=1e-3)
    asked = []

    def colors_fn(idx: torch.Tensor) -> torch.Tensor:
        asked.append(idx.numel())
        return colors[idx]

    image = softmax_blend_pairs(pairs, colors_fn, blend, znear=1.0, zfar=4.0)
    expected = softmax_rgb_blend(_dense_colors(pairs, colors), Fragments(*pairs.to_dense()), blend, 1.0, 4.0)
    assert asked[0] < pairs.pix.shape[0]  # some pairs were skipped
    torch.testing.assert_close(image, expected, atol=1e-7, rtol=0)
