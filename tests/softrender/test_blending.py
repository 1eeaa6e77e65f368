"""The sparse softmax blend (hand-written backward) against the dense PyTorch3D formula."""

from __future__ import annotations

import math

import pytest
import torch
from diffmesh.softrender import (
    BlendParams,
    Fragments,
    hard_rgb_blend,
    sigmoid_alpha_blend,
    softmax_rgb_blend,
)
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
    # Values in [0, 1], each a sum of at most 4 weighted colours summed in another order: a
    # few float32 ulps of 1 (a dropped pair of weight >= 1e-12 would not show below that, a
    # wrongly dropped one would: its weight is at least 1e-3 here).
    torch.testing.assert_close(image, expected, atol=16 * torch.finfo(torch.float32).eps, rtol=0)


# ----------------------------------------------------------- the dense blends by hand

# One image of 1x3 pixels, K = 2: pixel 0 has two faces, pixel 1 one face and a padded
# slot, pixel 2 none. Padding is PyTorch3D's -1 in every field, so a blend that forgot the
# pix_to_face mask would see dists -1 (coverage ~1) and zbuf -1 (the nearest depth).
_P2F = [[0, 1], [2, -1], [-1, -1]]
_ZBUF = [[2.0, 3.0], [5.0, -1.0], [-1.0, -1.0]]
_DISTS = [[-1e-4, 2e-4], [5e-5, -1.0], [-1.0, -1.0]]
_COLORS = [
    [[0.9, 0.1, 0.2], [0.1, 0.8, 0.3]],
    [[0.4, 0.5, 0.6], [0.7, 0.7, 0.7]],
    [[0.3, 0.6, 0.9], [0.5, 0.5, 0.5]],
]


def _hand_fragments() -> tuple[Fragments, torch.Tensor]:
    p2f = torch.tensor(_P2F).view(1, 1, 3, 2)
    zbuf = torch.tensor(_ZBUF, dtype=torch.float64).view(1, 1, 3, 2)
    dists = torch.tensor(_DISTS, dtype=torch.float64).view(1, 1, 3, 2)
    bary = torch.full((1, 1, 3, 2, 3), -1.0, dtype=torch.float64)
    colors = torch.tensor(_COLORS, dtype=torch.float64).view(1, 1, 3, 2, 3)
    return Fragments(p2f, zbuf, bary, dists), colors


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _coverage(pixel: int, sigma: float) -> list[float]:
    """p_k = sigmoid(-dists_k / sigma), 0 in padded slots."""
    return [_sigmoid(-d / sigma) if f >= 0 else 0.0 for f, d in zip(_P2F[pixel], _DISTS[pixel], strict=True)]


def test_blend_params_defaults():
    params = BlendParams()
    assert params.sigma == 1e-4
    assert params.gamma == 1e-4
    assert tuple(params.background_color) == (1.0, 1.0, 1.0)


def test_hard_rgb_blend_by_hand():
    fragments, colors = _hand_fragments()
    image = hard_rgb_blend(colors, fragments, BlendParams(background_color=(0.1, 0.2, 0.3)))
    expected = [
        [0.9, 0.1, 0.2, 1.0],  # the nearest face's colour
        [0.4, 0.5, 0.6, 1.0],
        [0.1, 0.2, 0.3, 0.0],  # no face: background, alpha 0
    ]
    torch.testing.assert_close(image, torch.tensor(expected, dtype=torch.float64).view(1, 1, 3, 4))


def test_sigmoid_alpha_blend_by_hand():
    fragments, colors = _hand_fragments()
    sigma = 1e-4
    image = sigmoid_alpha_blend(colors, fragments, BlendParams(sigma=sigma))
    expected = []
    for pixel in range(3):
        transmittance = math.prod(1.0 - p for p in _coverage(pixel, sigma))
        expected.append([*_COLORS[pixel][0], 1.0 - transmittance])  # RGB: slot 0's colour
    assert 0.5 < expected[0][3] < 1.0 and 0.0 < expected[1][3] < 0.5 and expected[2][3] == 0.0
    torch.testing.assert_close(image, torch.tensor(expected, dtype=torch.float64).view(1, 1, 3, 4))


@pytest.mark.parametrize(
    ("gamma", "planes"),
    [(1e-2, None), (0.5, (0.5, 10.0))],
    ids=["default-planes", "znear0.5-zfar10"],
)
def test_softmax_rgb_blend_by_hand(gamma, planes):
    """PyTorch3D's softmax_rgb_blend, pixel by pixel in Python floats.

    None: the default planes znear = 1, zfar = 100. With gamma 0.5 the background's
    weight delta is not negligible on covered pixels.
    """
    fragments, colors = _hand_fragments()
    sigma, eps, background = 1e-4, 1e-10, (0.1, 0.2, 0.3)
    params = BlendParams(sigma=sigma, gamma=gamma, background_color=background)
    if planes is None:
        znear, zfar = 1.0, 100.0
        image = softmax_rgb_blend(colors, fragments, params)
    else:
        znear, zfar = planes
        image = softmax_rgb_blend(colors, fragments, params, znear=znear, zfar=zfar)
    expected = []
    for pixel in range(3):
        prob = _coverage(pixel, sigma)
        depths = zip(_P2F[pixel], _ZBUF[pixel], strict=True)
        z_inv = [(zfar - z) / (zfar - znear) if f >= 0 else 0.0 for f, z in depths]
        z_inv_max = max(max(z_inv), eps)
        weights = [p * math.exp((z - z_inv_max) / gamma) for p, z in zip(prob, z_inv, strict=True)]
        delta = max(math.exp((eps - z_inv_max) / gamma), eps)
        denom = sum(weights) + delta
        rgb = []
        for ch in range(3):
            weighted = sum(w * c[ch] for w, c in zip(weights, _COLORS[pixel], strict=True))
            rgb.append((weighted + delta * background[ch]) / denom)
        expected.append([*rgb, 1.0 - math.prod(1.0 - p for p in prob)])
    assert expected[2] == [0.1, 0.2, 0.3, 0.0]  # no face: background, alpha 0
    torch.testing.assert_close(image, torch.tensor(expected, dtype=torch.float64).view(1, 1, 3, 4))
