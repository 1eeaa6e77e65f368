"""``softmax_rgb_blend`` on sparse (pixel, face) pairs, with a hand-written backward.

Two phases. :func:`blend_weights` (no autograd) computes every pair's blend weight
``w = sigmoid(-d / sigma) * exp((z_inv - z_max) / gamma)``, the per-pixel normaliser and
the pairs whose weight matters (the only ones the shader colours). :class:`_SoftmaxBlend`
then forms the RGBA image from those values and the colours, and its backward gives the
gradients of the distances, depths and colours directly: a few passes over the pairs and
per-pixel sums, instead of autograd through two dozen small ops.

Formulas (PyTorch3D's; per pixel, sums over its pairs, eps = 1e-10)::

    z_max = max(max z_inv, eps)                # 0 counts too (padded slots), same value
    delta = max(exp((eps - z_max) / gamma), eps)
    rgb   = (sum w c + delta * background) / (sum w + delta)
    alpha = 1 - exp(sum logsigmoid(d / sigma))  # = 1 - prod(1 - sigmoid(-d / sigma))

``z_max`` carries gradient (to the pixel's nearest pair, by (z, face id)) where it is at
least eps, as the dense formula's ``max`` and ``clamp`` do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.autograd.function import FunctionCtx

from ._autograd import first_order_only
from .fragments import RasterPairs

__all__ = ["BlendWeights", "blend_weights", "softmax_blend_image"]

_EPS = 1e-10  # softmax_rgb_blend's epsilon
_CUT = 1e-12  # pairs below this fraction of their pixel's total weight are not coloured


@dataclass(frozen=True)
class BlendWeights:
    """Detached per-pair and per-pixel blend quantities (P pairs, M = N * H * W pixels).

    Attributes:
        prob: (P,) coverage ``sigmoid(-d / sigma)``.
        depth: (P,) depth factor ``exp((z_inv - z_max[pix]) / gamma)``.
        weight: (P,) ``prob * depth``.
        z_max: (M,) ``max(0, max z_inv)`` before the clamp at eps (0 for empty pixels).
        delta: (M,) background weight.
        denom: (M,) ``sum weight + delta``.
        needed: (Q,) long indices of the pairs with weight above 1e-12 of ``denom``.
    """

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
    """``exp(x)``, with 0 where it would be subnormal (x below log of the smallest normal).

    The depth factors of hidden faces underflow: exp() of such arguments takes a slow path on
    a CPU (several times slower over the whole array); a subnormal weight (< 1.2e-38 in
    float32) is below 1e-28 of any pixel's total (>= eps = 1e-10), so no output changes.
    """
    low = math.log(torch.finfo(x.dtype).tiny) + 1.0
    return torch.exp(x.clamp(min=low)).mul_(x >= low)


@torch.no_grad()
def blend_weights(pairs: RasterPairs, z_inv: torch.Tensor, sigma: float, gamma: float) -> BlendWeights:
    """The blend weights of all pairs and the pairs worth colouring (no autograd).

    Args:
        pairs: the rasterizer's pairs (``pix``, ``dists``).
        z_inv: (P,) normalised inverse depth of each pair (:func:`z_inverse`).
        sigma, gamma: the blend parameters.
    """
    npix = pairs.num_pixels
    pix = pairs.pix
    prob = torch.sigmoid(pairs.dists / -sigma)  # (-d) / s and d / (-s) round alike
    z_inv = z_inv.detach()
    # The max over the pixel's K slots; a pixel with fewer than K faces also has padded
    # slots with z 0, and clamping at eps > 0 makes the two cases the same value.
    z_max = z_inv.new_zeros(npix).scatter_reduce_(0, pix, z_inv, "amax")
    z_clamped = z_max.clamp(min=_EPS)
    depth = _exp_or_zero((z_inv - z_clamped.index_select(0, pix)) / gamma)
    weight = prob * depth
    delta = _exp_or_zero((_EPS - z_clamped) / gamma).clamp_(min=_EPS)  # the same values as exp()
    denom = weight.new_zeros(npix).index_add_(0, pix, weight).add_(delta)
    needed = (weight > _CUT * denom.index_select(0, pix)).nonzero().squeeze(1)
    return BlendWeights(prob, depth, weight, z_max, delta, denom, needed)


def _nearest(pairs: RasterPairs, z_inv: torch.Tensor, z_max: torch.Tensor) -> torch.Tensor:
    """Indices of each pixel's nearest pair (ties by face id), among pairs at ``z_max``."""
    cand = (z_inv == z_max.index_select(0, pairs.pix)).nonzero().squeeze(1)
    pix = pairs.pix.index_select(0, cand)
    z = pairs.zbuf.detach().index_select(0, cand)
    zmin = z.new_full((pairs.num_pixels,), float("inf")).scatter_reduce_(0, pix, z, "amin")
    is_min = z == zmin.index_select(0, pix)
    big = torch.iinfo(torch.long).max
    face = torch.where(is_min, pairs.face.index_select(0, cand), big)
    fmin = torch.full((pairs.num_pixels,), big, dtype=torch.long, device=z.device)
    fmin.scatter_reduce_(0, pix, face, "amin")
    return cand[is_min & (face == fmin.index_select(0, pix))]


class _SoftmaxBlend(torch.autograd.Function):
    """RGBA (M, 4) from distances, inverse depths and the colours of the needed pairs.

    Inputs: ``dists`` (P,), ``z_inv`` (P,), ``colors`` (Q, 3) of ``bw.needed``, and
    ``background`` (3,); ``bw`` and ``pairs`` are the detached context.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: FunctionCtx,
        dists: torch.Tensor,
        z_inv: torch.Tensor,
        colors: torch.Tensor,
        background: torch.Tensor,
        bw: BlendWeights,
        pairs: RasterPairs,
        sigma: float,
        gamma: float,
    ) -> torch.Tensor:
        npix = pairs.num_pixels
        pix_q = pairs.pix.index_select(0, bw.needed)
        w_q = bw.weight.index_select(0, bw.needed)
        planes = colors.t()  # (3, Q): contiguous rows when the shading wrote component planes
        out = colors.new_empty(npix, 4)  # every element written below
        for c in range(3):
            weighted = colors.new_zeros(npix).index_add_(0, pix_q, planes[c] * w_q)
            torch.add(weighted, bw.delta * background[c], out=out[:, c])
        out[:, :3].div_(bw.denom[:, None])
        log_t = F.logsigmoid(dists / sigma)
        transmit = _exp_or_zero(log_t.new_zeros(npix).index_add_(0, pairs.pix, log_t))  # prod(1 - prob)
        torch.sub(1.0, transmit, out=out[:, 3])
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
        # rgb = num / denom: d/dnum = g / denom, d/ddenom = -(g . rgb) / denom.
        g_num = (grad[:, :3] / bw.denom[:, None]).t().contiguous()  # (3, M)
        g_den = (g_num * out[:, :3].t()).sum(dim=0).neg_()  # (M,)
        planes = colors.t()
        g_w = g_den.index_select(0, pix)  # d/dweight: g_den, plus g_num . colour if coloured
        g_w_q = torch.zeros_like(w_q)
        grad_colors = colors.new_empty(3, colors.shape[0]) if needs[2] else None  # rows written below
        for c in range(3):
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
            g_alpha = (grad[:, 3] * transmit).index_select(0, pix)
            g_prob = (g_w * bw.depth).mul_(1.0 - bw.prob).add_(g_alpha)
            grad_dists = g_prob.mul_(bw.prob).div_(-sigma)
        return grad_dists, grad_z, grad_colors, grad_bg, None, None, None, None


def softmax_blend_image(
    pairs: RasterPairs,
    z_inv: torch.Tensor,
    colors: torch.Tensor,
    background: torch.Tensor,
    bw: BlendWeights,
    sigma: float,
    gamma: float,
) -> torch.Tensor:
    """(N * H * W, 4) RGBA: the soft blend of the ``bw.needed`` pairs' ``colors`` (Q, 3).

    Differentiable w.r.t. ``pairs.dists``, ``z_inv``, ``colors`` and ``background``.
    """
    return _SoftmaxBlend.apply(pairs.dists, z_inv, colors, background, bw, pairs, sigma, gamma)
