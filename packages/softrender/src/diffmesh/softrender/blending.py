"""Blending per-face colours into RGBA images: PyTorch3D's soft and hard blend functions.

Each function exists twice: the public dense form on (N, H, W, K) fragments, exactly
PyTorch3D's formulas, and a private pair form used by the shaders, which works on the
sparse pairs and scatters per-pixel sums into (N * H * W) buffers (no dense K axis).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ._softmax_blend import blend_weights, softmax_blend_image, z_inverse
from .fragments import Fragments, RasterPairs

__all__ = ["BlendParams", "hard_rgb_blend", "sigmoid_alpha_blend", "softmax_rgb_blend"]

_EPS = 1e-10  # softmax_rgb_blend's epsilon


@dataclass(frozen=True)
class BlendParams:
    """Parameters of the soft blends.

    Attributes:
        sigma: width of the sigmoid turning a signed squared distance into coverage
            ``sigmoid(-dist / sigma)`` (NDC units squared).
        gamma: depth temperature of ``softmax_rgb_blend``; small values approach a z-buffer.
        background_color: RGB of pixels no face covers, a 3-sequence or (3,) tensor.
    """

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
        if n != 3:
            raise ValueError(f"BlendParams.background_color: expected 3 values (RGB), got {bg!r}")


def _background(blend_params: BlendParams, like: torch.Tensor) -> torch.Tensor:
    bg = blend_params.background_color
    if torch.is_tensor(bg):
        return bg.to(device=like.device, dtype=like.dtype).reshape(3)
    return torch.tensor([float(c) for c in bg], dtype=like.dtype, device=like.device)


def _check_dense(colors: torch.Tensor, fragments: Fragments, fn: str) -> None:
    if not isinstance(fragments, Fragments):
        raise TypeError(f"{fn}: fragments: expected Fragments, got {type(fragments).__name__}")
    shape = tuple(fragments.pix_to_face.shape)
    if not torch.is_tensor(colors) or colors.dim() != 5 or tuple(colors.shape[:4]) != shape:
        got = tuple(colors.shape) if torch.is_tensor(colors) else type(colors).__name__
        raise ValueError(f"{fn}: colors: expected shape {(*shape, 'C')} (N, H, W, K, C), got {got}")


def hard_rgb_blend(colors: torch.Tensor, fragments: Fragments, blend_params: BlendParams) -> torch.Tensor:
    """Naive blending: each pixel takes the colour of its nearest face.

    Args:
        colors: (N, H, W, K, 3) float per-face colours.
        fragments: the rasterizer output.
        blend_params: gives the background colour of pixels no face covers.

    Returns:
        (N, H, W, 4) RGBA; alpha is 1 where a face covers the pixel, 0 elsewhere.
    """
    _check_dense(colors, fragments, "hard_rgb_blend")
    is_background = fragments.pix_to_face[..., 0] < 0
    bg = _background(blend_params, colors)
    rgb = torch.where(is_background[..., None], bg, colors[..., 0, :3])
    alpha = (~is_background).to(colors.dtype)[..., None]
    return torch.cat((rgb, alpha), dim=-1)


def sigmoid_alpha_blend(colors: torch.Tensor, fragments: Fragments, blend_params: BlendParams) -> torch.Tensor:
    """Silhouette blending: alpha = 1 - prod_k (1 - sigmoid(-dists_k / sigma)).

    Args:
        colors: (N, H, W, K, 3) float per-face colours; the RGB is the nearest face's.
        fragments: the rasterizer output.
        blend_params: sigma.

    Returns:
        (N, H, W, 4) RGBA.
    """
    _check_dense(colors, fragments, "sigmoid_alpha_blend")
    mask = fragments.pix_to_face >= 0
    prob = torch.sigmoid(-fragments.dists / blend_params.sigma) * mask
    alpha = torch.prod(1.0 - prob, dim=-1)
    return torch.cat((colors[..., 0, :3], (1.0 - alpha)[..., None]), dim=-1)


def softmax_rgb_blend(
    colors: torch.Tensor,
    fragments: Fragments,
    blend_params: BlendParams,
    znear: float | torch.Tensor = 1.0,
    zfar: float | torch.Tensor = 100,
) -> torch.Tensor:
    """Soft Rasterizer's RGB blending (Liu et al. 2019), PyTorch3D's formula.

    With ``p_k = sigmoid(-dists_k / sigma)``, ``z_k = (zfar - zbuf_k) / (zfar - znear)``,
    ``z_max = max(max_k z_k, eps)`` and ``w_k = p_k exp((z_k - z_max) / gamma)``:
    ``rgb = (sum_k w_k c_k + delta * background) / (sum_k w_k + delta)`` with
    ``delta = max(exp((eps - z_max) / gamma), eps)``, eps = 1e-10, and
    ``alpha = 1 - prod_k (1 - p_k)``. Padded slots have p_k = 0 and z_k = 0.

    Args:
        colors: (N, H, W, K, 3) float per-face colours.
        fragments: the rasterizer output.
        blend_params: sigma, gamma, background colour.
        znear: near plane, float or (N,) tensor.
        zfar: far plane, float or (N,) tensor.

    Returns:
        (N, H, W, 4) RGBA.
    """
    _check_dense(colors, fragments, "softmax_rgb_blend")
    mask = fragments.pix_to_face >= 0
    prob = torch.sigmoid(-fragments.dists / blend_params.sigma) * mask
    alpha = torch.prod(1.0 - prob, dim=-1)
    if torch.is_tensor(zfar):
        zfar = zfar.reshape(-1, 1, 1, 1)
    if torch.is_tensor(znear):
        znear = znear.reshape(-1, 1, 1, 1)
    z_inv = (zfar - fragments.zbuf) / (zfar - znear) * mask
    z_inv_max = torch.max(z_inv, dim=-1).values[..., None].clamp(min=_EPS)
    weights = prob * torch.exp((z_inv - z_inv_max) / blend_params.gamma)
    delta = torch.exp((_EPS - z_inv_max) / blend_params.gamma).clamp(min=_EPS)
    denom = weights.sum(dim=-1)[..., None] + delta
    rgb = ((weights[..., None] * colors[..., :3]).sum(dim=-2) + delta * _background(blend_params, colors)) / denom
    return torch.cat((rgb, (1.0 - alpha)[..., None]), dim=-1)


# ----------------------------------------------------------------------------- pair forms


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


def pairs_alpha(pairs: RasterPairs, sigma: float) -> torch.Tensor:
    """(N*H*W,) coverage ``1 - prod(1 - sigmoid(-d / sigma))`` as ``1 - exp(sum logsigmoid(d / sigma))``."""
    log_t = F.logsigmoid(pairs.dists / sigma)
    total = log_t.new_zeros(pairs.num_pixels).index_add(0, pairs.pix, log_t)
    return 1.0 - torch.exp(total)


def _image(rgb: torch.Tensor, alpha: torch.Tensor, pairs: RasterPairs) -> torch.Tensor:
    height, width = pairs.image_size
    return torch.cat((rgb, alpha[:, None]), dim=1).view(pairs.num_images, height, width, 4)


def softmax_blend_pairs(
    pairs: RasterPairs,
    colors_fn: Callable[[torch.Tensor], torch.Tensor],
    blend_params: BlendParams,
    znear: Any = 1.0,
    zfar: Any = 100,
) -> torch.Tensor:
    """``softmax_rgb_blend`` on sparse pairs.

    ``colors_fn(idx)`` returns the (len(idx), 3) colours of the pairs ``idx``; it is only
    asked for pairs whose blend weight is not negligible (below 1e-12 of its pixel's
    total weight, which changes no float32 output), so shading skips hidden faces.
    The blend itself has a hand-written backward (``_softmax_blend``).

    Returns:
        (N, H, W, 4) RGBA.
    """
    zbuf = pairs.zbuf
    z_inv = z_inverse(zbuf, _per_image(znear, pairs, zbuf), _per_image(zfar, pairs, zbuf))
    bw = blend_weights(pairs, z_inv, blend_params.sigma, blend_params.gamma)
    colors = colors_fn(bw.needed)
    if colors.shape[1] != 3:  # (a full slice would cost a zero-fill and copy in backward)
        colors = colors[:, :3]
    bg = _background(blend_params, colors)
    rgba = softmax_blend_image(pairs, z_inv, colors, bg, bw, blend_params.sigma, blend_params.gamma)
    height, width = pairs.image_size
    return rgba.view(pairs.num_images, height, width, 4)


def silhouette_pairs(pairs: RasterPairs, blend_params: BlendParams) -> torch.Tensor:
    """``sigmoid_alpha_blend`` of all-ones colours (the silhouette shader) on sparse pairs."""
    alpha = pairs_alpha(pairs, blend_params.sigma)
    rgb = alpha.new_ones(pairs.num_pixels, 3)
    return _image(rgb, alpha, pairs)


def hard_blend_pairs(
    pairs: RasterPairs, colors_fn: Callable[[torch.Tensor], torch.Tensor], blend_params: BlendParams
) -> torch.Tensor:
    """``hard_rgb_blend`` on sparse pairs: only the nearest pair of each pixel is shaded."""
    nearest = pairs.nearest().nonzero().squeeze(1)
    colors = colors_fn(nearest)
    pix = pairs.pix[nearest]
    covered = torch.zeros(pairs.num_pixels, dtype=torch.bool, device=pix.device)
    covered[pix] = True
    bg = _background(blend_params, colors)
    rgb = bg.expand(pairs.num_pixels, 3).index_put((pix,), colors[:, :3])
    return _image(rgb, covered.to(rgb.dtype), pairs)
