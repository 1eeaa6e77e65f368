"""Blending per-pair colours into images: PyTorch3D's softmax, sigmoid-alpha and hard blends.

Per-pixel sums are scattered into (N * H * W) buffers (no dense K axis). The soft blend is
two steps: :func:`blend_weights` (no autograd: weights, and the pairs worth colouring),
then :func:`softmax_blend` of those pairs' colours. The dense ``softmax_rgb_blend``,
``sigmoid_alpha_blend`` and ``hard_rgb_blend`` gather the fragments to pairs and call them.

Formulas (PyTorch3D's; per pixel, sums over its pairs, eps = 1e-10)::

    w     = sigmoid(-d / sigma) * exp((z_inv - z_max) / gamma),  z_inv = (zfar - z) / (zfar - znear)
    z_max = max(max z_inv, eps)                 # 0 counts too (padded slots), same value
    delta = max(exp((eps - z_max) / gamma), eps)
    rgb   = (sum w c + delta * background) / (sum w + delta)
    alpha = 1 - exp(sum logsigmoid(d / sigma))  # = 1 - prod(1 - sigmoid(-d / sigma))

``z_max`` carries gradient (to the pixel's nearest pair, by (z, face id)) where it is at
least eps, as the dense formula's ``max`` and ``clamp`` do.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.autograd.function import FunctionCtx

from .fragments import Fragments, RasterPairs, first_order_only, pair_rows, pairs_of_fragments

__all__ = [
    "BlendParams", "BlendWeights", "blend_weights", "hard_blend", "hard_rgb_blend", "sigmoid_alpha_blend",
    "silhouette_blend", "softmax_blend", "softmax_blend_pairs", "softmax_rgb_blend",
]


@dataclass(frozen=True)
class BlendParams:
    """Parameters of the blends: coverage ``sigmoid(-dist / sigma)``; depth temperature
    ``gamma`` (small: a z-buffer); ``background_color``, C values or a grey filling C channels."""

    sigma: float = 1e-4
    gamma: float = 1e-4
    background_color: Sequence[float] | torch.Tensor = (1.0, 1.0, 1.0)

    def __post_init__(self) -> None:
        for name in ("sigma", "gamma"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"BlendParams.{name}: expected a float, got {type(value).__name__}")
            if not value > 0:
                raise ValueError(f"BlendParams.{name}: expected a positive float, got {value}")
        bg = self.background_color
        n = bg.numel() if torch.is_tensor(bg) else len(bg) if isinstance(bg, Sequence) else -1
        if n < 1:
            raise ValueError(f"BlendParams.background_color: expected 3 values (RGB) or C values, got {bg!r}")


def _background(blend_params: BlendParams, like: torch.Tensor) -> torch.Tensor:
    """(C,) background of colours ``like`` (Q, C): C values, or a grey one filling every channel."""
    bg = blend_params.background_color
    channels = like.shape[-1]
    if torch.is_tensor(bg):
        bg = bg.to(device=like.device, dtype=like.dtype).reshape(-1)
    else:
        bg = torch.tensor([float(c) for c in bg], dtype=like.dtype, device=like.device)
    if bg.shape[0] == channels:
        return bg
    if bool((bg == bg[0]).all()):
        return bg[:1].expand(channels)
    raise ValueError(
        f"blend_params.background_color: expected {channels} values (the colours' channels) or "
        f"equal values, got {bg.shape[0]} values"
    )


def _per_image(value: float | torch.Tensor, pairs: RasterPairs, like: torch.Tensor) -> torch.Tensor | float:
    """A float, or an (N,) tensor gathered to (P,) by each pair's image (a 0-dim one if all equal)."""
    if not torch.is_tensor(value):
        return float(value)
    value = value.to(like.device, like.dtype).reshape(-1)
    if value.numel() == 1 or (not value.requires_grad and bool((value == value[0]).all())):
        return value[0]
    if value.numel() != pairs.num_images:
        raise ValueError(f"znear/zfar: expected a float or {pairs.num_images} values, got {value.numel()}")
    return value[pairs.image_index()]


_EPS = 1e-10  # softmax_rgb_blend's epsilon
_CUT = 1e-12  # pairs below this fraction of their pixel's total weight are not coloured


@dataclass(frozen=True)
class BlendWeights:
    """Detached blend quantities: ``znear``, ``zfar`` (floats or (P,)); per pair (P,) ``prob``,
    ``depth`` ``exp((z_inv - z_max[pix]) / gamma)``, ``weight = prob * depth``; per pixel (M,)
    ``z_max`` (unclamped, 0 if empty), ``delta``, ``denom = sum weight + delta``; ``needed``
    (Q,) the pairs with weight above 1e-12 of ``denom``."""

    znear: float | torch.Tensor
    zfar: float | torch.Tensor

    prob: torch.Tensor
    depth: torch.Tensor
    weight: torch.Tensor
    z_max: torch.Tensor
    delta: torch.Tensor
    denom: torch.Tensor
    needed: torch.Tensor


def z_inverse(zbuf: torch.Tensor, znear: float | torch.Tensor, zfar: float | torch.Tensor) -> torch.Tensor:
    """(P,) ``(zfar - zbuf) / (zfar - znear)``: 1 at the near plane, 0 at the far one."""
    return (zfar - zbuf) / (zfar - znear)


def _exp_or_zero(x: torch.Tensor) -> torch.Tensor:
    """``exp(x)``, 0 where subnormal: exp()'s slow CPU path for hidden faces' underflowing
    factors, and a weight < 1.2e-38 is below 1e-28 of any pixel's total (no output changes)."""
    low = math.log(torch.finfo(x.dtype).tiny) + 1.0
    return torch.exp(x.clamp(min=low)).mul_(x >= low)


def blend_weights(
    pairs: RasterPairs, blend_params: BlendParams, znear: float | torch.Tensor = 1.0, zfar: float | torch.Tensor = 100
) -> BlendWeights:
    """The soft blend weights of all pairs and the pairs worth colouring, no autograd (below
    1e-12 of the pixel's total a pair changes no float32 output); znear, zfar floats or (N,)."""
    npix, pix = pairs.num_pixels, pairs.pix
    sigma, gamma = blend_params.sigma, blend_params.gamma
    znear, zfar = _per_image(znear, pairs, pairs.zbuf), _per_image(zfar, pairs, pairs.zbuf)
    with torch.no_grad():  # the clipping planes keep their graph for the blend
        z_inv = z_inverse(pairs.zbuf.detach(), znear, zfar)
        prob = torch.sigmoid(pairs.dists.detach() / -sigma)  # (-d) / s and d / (-s) round alike
        # The max over the pixel's K slots; a pixel with fewer than K faces also has padded
        # slots with z 0, and clamping at eps > 0 makes the two cases the same value.
        z_max = z_inv.new_zeros(npix).scatter_reduce_(0, pix, z_inv, "amax")
        z_clamped = z_max.clamp(min=_EPS)
        depth = _exp_or_zero((z_inv - z_clamped.index_select(0, pix)) / gamma)
        weight = prob * depth
        delta = _exp_or_zero((_EPS - z_clamped) / gamma).clamp_(min=_EPS)  # the same values as exp()
        denom = weight.new_zeros(npix).index_add_(0, pix, weight).add_(delta)
        needed = (weight > _CUT * denom.index_select(0, pix)).nonzero().squeeze(1)
        return BlendWeights(znear, zfar, prob, depth, weight, z_max, delta, denom, needed)


def _nearest(pairs: RasterPairs, z_inv: torch.Tensor, z_max: torch.Tensor) -> torch.Tensor:
    """Indices of each pixel's nearest pair (ties by face id), among pairs at ``z_max``."""
    cand = (z_inv == z_max.index_select(0, pairs.pix)).nonzero().squeeze(1)
    return cand[pairs.nearest(cand)]


class _SoftmaxBlend(torch.autograd.Function):
    """RGBA (M, C + 1) from dists (P,), z_inv (P,), colors (Q, C) of ``bw.needed``, background (C,)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: FunctionCtx, dists: torch.Tensor, z_inv: torch.Tensor, colors: torch.Tensor, background: torch.Tensor,
        bw: BlendWeights, pairs: RasterPairs, sigma: float, gamma: float,
    ) -> torch.Tensor:
        npix = pairs.num_pixels
        pix_q = pairs.pix.index_select(0, bw.needed)
        w_q = bw.weight.index_select(0, bw.needed)
        channels = colors.shape[1]
        planes = colors.t()  # (C, Q): contiguous rows when the shading wrote component planes
        out = colors.new_empty(npix, channels + 1)  # every element written below
        for c in range(channels):
            weighted = colors.new_zeros(npix).index_add_(0, pix_q, planes[c] * w_q)
            torch.add(weighted, bw.delta * background[c], out=out[:, c])
        out[:, :channels].div_(bw.denom[:, None])
        log_t = F.logsigmoid(dists / sigma)
        transmit = _exp_or_zero(log_t.new_zeros(npix).index_add_(0, pairs.pix, log_t))  # prod(1 - prob)
        torch.sub(1.0, transmit, out=out[:, channels])
        ctx.save_for_backward(colors, background, z_inv, pix_q, w_q, out, transmit)
        ctx.bw, ctx.pairs, ctx.sigma, ctx.gamma = bw, pairs, sigma, gamma
        return out

    @staticmethod
    @first_order_only
    def backward(ctx: FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        colors, background, z_inv, pix_q, w_q, out, transmit = ctx.saved_tensors
        bw, pairs, sigma, gamma = ctx.bw, ctx.pairs, ctx.sigma, ctx.gamma
        pix = pairs.pix
        needs = ctx.needs_input_grad
        grad = grad.contiguous()
        channels = colors.shape[1]
        # rgb = num / denom: d/dnum = g / denom, d/ddenom = -(g . rgb) / denom.
        g_num = (grad[:, :channels] / bw.denom[:, None]).t().contiguous()  # (C, M)
        g_den = (g_num * out[:, :channels].t()).sum(dim=0).neg_()  # (M,)
        planes = colors.t()
        g_w = g_den.index_select(0, pix)  # d/dweight: g_den, plus g_num . colour if coloured
        g_w_q = torch.zeros_like(w_q)
        grad_colors = colors.new_empty(channels, colors.shape[0]) if needs[2] else None  # rows written below
        for c in range(channels):
            g_num_q = g_num[c].index_select(0, pix_q)
            g_w_q.addcmul_(g_num_q, planes[c])
            if grad_colors is not None:
                torch.mul(g_num_q, w_q, out=grad_colors[c])
        g_w.index_add_(0, bw.needed, g_w_q)
        grad_colors = None if grad_colors is None else grad_colors.t()
        grad_bg = (g_num * bw.delta).sum(dim=1) if needs[3] else None
        grad_dists = grad_z = None
        if needs[1]:
            # weight = prob exp((z_inv - z_max) / gamma): d/dz_inv = weight / gamma = -d/dz_max.
            g_z = g_w * bw.weight / gamma
            z_clamped = bw.z_max.clamp(min=_EPS)
            raw_delta = _exp_or_zero((_EPS - z_clamped) / gamma)
            g_delta = (background @ g_num).add_(g_den)
            g_zmax = (g_delta * raw_delta).mul_(raw_delta >= _EPS).div_(-gamma)
            g_zmax.index_add_(0, pix, g_z, alpha=-1.0)
            g_zmax.mul_(bw.z_max >= _EPS)  # the clamp at eps passes no gradient below it
            nearest = _nearest(pairs, z_inv.detach(), bw.z_max)
            grad_z = g_z.index_add_(0, nearest, g_zmax.index_select(0, pix.index_select(0, nearest)))
        if needs[0]:
            # prob = sigmoid(-d / sigma); alpha = 1 - prod(1 - prob): d alpha / d d = -(1 - alpha) prob / sigma.
            g_alpha = (grad[:, channels] * transmit).index_select(0, pix)
            g_prob = (g_w * bw.depth).mul_(1.0 - bw.prob).add_(g_alpha)
            grad_dists = g_prob.mul_(bw.prob).div_(-sigma)
        return grad_dists, grad_z, grad_colors, grad_bg, None, None, None, None


def softmax_blend(
    pairs: RasterPairs, weights: BlendWeights, colors: torch.Tensor, blend_params: BlendParams
) -> torch.Tensor:
    """(N, H, W, C + 1) soft blend (the module's formulas) of ``colors`` (Q, C) of the pairs
    ``weights.needed``; differentiable w.r.t. zbuf, dists, colors and a background tensor."""
    z_inv = z_inverse(pairs.zbuf, weights.znear, weights.zfar)
    bg = _background(blend_params, colors)
    sigma, gamma = blend_params.sigma, blend_params.gamma
    rgba = _SoftmaxBlend.apply(pairs.dists, z_inv, colors, bg, weights, pairs, sigma, gamma)
    return rgba.view(pairs.num_images, *pairs.image_size, colors.shape[1] + 1)


def softmax_blend_pairs(
    pairs: RasterPairs, colors_fn: Callable[[torch.Tensor], torch.Tensor], blend_params: BlendParams,
    znear: float | torch.Tensor = 1.0, zfar: float | torch.Tensor = 100,
) -> torch.Tensor:
    """:func:`softmax_blend` with the colours of the needed pairs ``idx`` from ``colors_fn(idx)``."""
    weights = blend_weights(pairs, blend_params, znear, zfar)
    return softmax_blend(pairs, weights, colors_fn(weights.needed), blend_params)


def silhouette_blend(pairs: RasterPairs, blend_params: BlendParams, rgb: torch.Tensor | None = None) -> torch.Tensor:
    """(N, H, W, 4): ``rgb`` (N*H*W, 3) (None: white) and alpha ``1 - prod(1 - sigmoid(-d / sigma))``."""
    log_t = F.logsigmoid(pairs.dists / blend_params.sigma)  # log(1 - sigmoid(-d / sigma))
    alpha = 1.0 - torch.exp(log_t.new_zeros(pairs.num_pixels).index_add(0, pairs.pix, log_t))
    rgb = alpha.new_ones(pairs.num_pixels, 3) if rgb is None else rgb
    return torch.cat((rgb, alpha[:, None].to(rgb.dtype)), dim=1).view(pairs.num_images, *pairs.image_size, 4)


def hard_blend(pairs: RasterPairs, idx: torch.Tensor, colors: torch.Tensor, blend_params: BlendParams) -> torch.Tensor:
    """(N, H, W, C + 1): each covered pixel the colour (Q, C) of its pair ``idx`` (Q,), alpha
    1; the background and alpha 0 elsewhere."""
    pix = pairs.pix.index_select(0, idx)
    channels = colors.shape[1]
    covered = torch.zeros(pairs.num_pixels, dtype=colors.dtype, device=pix.device).index_fill_(0, pix, 1.0)
    rgb = _background(blend_params, colors).expand(pairs.num_pixels, channels).index_put((pix,), colors)
    return torch.cat((rgb, covered[:, None]), dim=1).view(pairs.num_images, *pairs.image_size, channels + 1)


# PyTorch3D's dense functions: (N, H, W, K, C) colours gathered to the pairs


def _dense_pairs(
    colors: torch.Tensor, fragments: Fragments, fn: str
) -> tuple[RasterPairs, torch.Tensor, torch.Tensor]:
    """(pairs, their slots, their colours (P, C)) of dense ``colors`` (N, H, W, K, C)."""
    pairs, slots = pairs_of_fragments(fragments)
    return pairs, slots, pair_rows(f"{fn}: colors", colors, pairs, slots)


def hard_rgb_blend(colors: torch.Tensor, fragments: Fragments, blend_params: BlendParams) -> torch.Tensor:
    """(N, H, W, C + 1): each pixel the colour of its slot 0 (alpha 1), else the background."""
    pairs, slots, pair_colors = _dense_pairs(colors, fragments, "hard_rgb_blend")
    first = (slots % pairs.faces_per_pixel == 0).nonzero().squeeze(1)
    return hard_blend(pairs, first, pair_colors.index_select(0, first), blend_params)


def sigmoid_alpha_blend(colors: torch.Tensor, fragments: Fragments, blend_params: BlendParams) -> torch.Tensor:
    """(N, H, W, 4): slot 0's RGB, alpha = 1 - prod_k (1 - sigmoid(-dists_k / sigma))."""
    pairs, _, _ = _dense_pairs(colors, fragments, "sigmoid_alpha_blend")
    return silhouette_blend(pairs, blend_params, colors[..., 0, :3].reshape(-1, 3))


def softmax_rgb_blend(
    colors: torch.Tensor, fragments: Fragments, blend_params: BlendParams, znear: float | torch.Tensor = 1.0,
    zfar: float | torch.Tensor = 100,
) -> torch.Tensor:
    """(N, H, W, C + 1) Soft Rasterizer blend (Liu et al. 2019; the module's formulas) of
    (N, H, W, K, C) colours; znear, zfar floats or (N,). PyTorch3D's blends RGB only."""
    pairs, _, pair_colors = _dense_pairs(colors, fragments, "softmax_rgb_blend")
    weights = blend_weights(pairs, blend_params, znear, zfar)
    return softmax_blend(pairs, weights, pair_colors.index_select(0, weights.needed), blend_params)
