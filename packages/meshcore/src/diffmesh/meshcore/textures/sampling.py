"""Image lookups for UV textures: bilinear or nearest, with grid_sample's padding modes.

Conventions (PyTorch3D's): ``u`` runs left to right over the image columns and ``v``
from the *bottom* row (``v = 0``) to the top row (``v = 1``); maps are ``(M, H, W, C)``
with row 0 at the top. With ``align_corners=False`` ``u = 0`` is the left edge of the
first pixel and pixel centres sit at ``(j + 0.5) / W``; with ``align_corners=True``
``u = 0`` and ``u = 1`` are the centres of the first and last pixels. The padding modes
are ``torch.nn.functional.grid_sample``'s: ``"zeros"`` (outside taps read 0),
``"border"`` (outside taps read the nearest border pixel) and ``"reflection"`` (the
coordinate is mirrored at the image border, then clipped).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..geometry import gather_rows

__all__ = ["PADDING_MODES", "SAMPLING_MODES", "sample_bilinear", "sample_maps"]

PADDING_MODES = ("zeros", "border", "reflection")
SAMPLING_MODES = ("bilinear", "nearest")


def _to_pixels(t: Tensor, size: int, align_corners: bool) -> Tensor:
    """Texture coordinate in [0, 1] (0 = first pixel) -> continuous pixel index."""
    return t * (size - 1) if align_corners else t * size - 0.5


def _reflect(x: Tensor, size: int, align_corners: bool) -> Tensor:
    """grid_sample's reflection: mirror ``x`` at the border (pixel centres of the edge
    pixels with ``align_corners``, the image edges without), then clip to the image."""
    lo, hi = (0.0, size - 1.0) if align_corners else (-0.5, size - 0.5)
    span = hi - lo
    if span <= 0:
        return torch.zeros_like(x)
    d = (x - lo).abs()
    flips = torch.floor(d.detach() / span)
    extra = d - flips * span
    out = torch.where(torch.remainder(flips, 2) == 0, lo + extra, hi - extra)
    return out.clamp(0.0, size - 1.0)


def sample_maps(
    maps: Tensor,
    map_idx: Tensor,
    uv: Tensor,
    *,
    align_corners: bool = False,
    padding_mode: str = "border",
    sampling_mode: str = "bilinear",
) -> Tensor:
    """Look up ``maps[map_idx]`` at ``uv``, as ``grid_sample`` would, one map per point.

    Args:
        maps: ``(M, H, W, C)`` float, row 0 at the top.
        map_idx: ``(...)`` long, which map each point reads, in ``[0, M)``.
        uv: ``(..., 2)`` float, ``u`` left->right, ``v`` bottom->top.
        align_corners: see the module docstring.
        padding_mode: ``"zeros"``, ``"border"`` or ``"reflection"``.
        sampling_mode: ``"bilinear"`` or ``"nearest"`` (ties round half to even, as
            grid_sample does).

    Returns:
        ``(..., C)`` float; differentiable with respect to ``maps``, and with respect to
        ``uv`` in bilinear mode (nearest mode gives a zero gradient to ``uv``).
    """
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
    if sampling_mode not in SAMPLING_MODES:
        raise ValueError(f"sampling_mode must be one of {SAMPLING_MODES}, got {sampling_mode!r}")
    m, h, w, c = maps.shape
    x = _to_pixels(uv[..., 0], w, align_corners)
    y = _to_pixels(1.0 - uv[..., 1], h, align_corners)
    if padding_mode == "reflection":
        x, y = _reflect(x, w, align_corners), _reflect(y, h, align_corners)
    flat = maps.reshape(m * h * w, c)
    base = map_idx.long() * (h * w)
    if sampling_mode == "nearest":
        xs, ys = [torch.round(x.detach()).long()], [torch.round(y.detach()).long()]
    else:
        x0f, y0f = torch.floor(x.detach()), torch.floor(y.detach())
        xs, ys = [x0f.long(), x0f.long() + 1], [y0f.long(), y0f.long() + 1]
    # Taps in the order (y0x0, y0x1, y1x0, y1x1) (one tap for nearest): one gather.
    pairs = [(yi, xi) for yi in ys for xi in xs]
    index = torch.stack(
        [base + yi.clamp(0, h - 1) * w + xi.clamp(0, w - 1) for yi, xi in pairs], dim=-1
    )
    taps = gather_rows(flat, index)  # (..., T, C)
    if padding_mode == "zeros":
        inside = torch.stack(
            [(yi >= 0) & (yi < h) & (xi >= 0) & (xi < w) for yi, xi in pairs], dim=-1
        )
        taps = taps * inside.unsqueeze(-1).to(taps.dtype)
    if sampling_mode == "nearest":
        return taps[..., 0, :]
    wx = (x - x0f).unsqueeze(-1)
    wy = (y - y0f).unsqueeze(-1)
    top = taps[..., 0, :] + (taps[..., 1, :] - taps[..., 0, :]) * wx
    bottom = taps[..., 2, :] + (taps[..., 3, :] - taps[..., 2, :]) * wx
    return top + (bottom - top) * wy


def sample_bilinear(
    maps: Tensor, map_idx: Tensor, uv: Tensor, align_corners: bool = False
) -> Tensor:
    """Bilinear lookup with border padding: :func:`sample_maps` with its defaults.

    Args:
        maps: ``(M, H, W, C)`` float, row 0 at the top.
        map_idx: ``(...)`` long, which map each point reads, in ``[0, M)``.
        uv: ``(..., 2)`` float, ``u`` left->right, ``v`` bottom->top.
        align_corners: see the module docstring.

    Returns:
        ``(..., C)`` float; differentiable with respect to ``maps`` and ``uv``.
    """
    return sample_maps(maps, map_idx, uv, align_corners=align_corners)
