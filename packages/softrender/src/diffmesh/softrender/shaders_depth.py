"""Depth shaders: PyTorch3D's ``HardDepthShader`` and ``SoftDepthShader``.

Both return (N, H, W, 1) view-space depth (the rasterizer's ``zbuf``) with the far plane
``zfar`` where no face covers a pixel. They read only depths and distances from the
rasterizer's sparse pairs (``MeshRenderer`` lets the rasterizer defer the barycentrics).

Soft depth, PyTorch3D's formula: with the pixel's faces in depth order (slot k),
``p_k = sigmoid(-dists_k / sigma)`` and ``c_k = p_0 + ... + p_k``, face k weighs
``w_k = min(c_k, 1) - min(c_{k-1}, 1)`` and the far plane ``1 - min(c_K, 1)``:
``depth = sum_k w_k zbuf_k + (1 - min(c_K, 1)) zfar``. The nearest faces whose coverage
sums to 1 hide the ones behind.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .blending import BlendParams
from .fragments import Fragments, RasterPairs
from .shaders import _blend_params, _pairs, _ShaderBase

__all__ = ["HardDepthShader", "SoftDepthShader"]


class _DepthShader(_ShaderBase):
    """PyTorch3D's shader arguments (meshes, lights, materials unused); the far plane is the
    ``zfar=`` float or (N,) tensor, else the cameras' ``zfar``. Reads only ``zbuf``, ``dists``."""

    reads_barycentrics = False
    _depth: Callable[..., torch.Tensor]  # (N * H * W,) depth of the pairs, given the far plane and blend_params

    def _far(self, cameras: Any, zfar: Any, pairs: RasterPairs) -> torch.Tensor:
        """(N * H * W,) far plane of each pixel: ``zfar`` (a float or a (1,) / (N,) tensor), else
        the cameras' ``zfar`` (100 when they have none)."""
        if zfar is None:
            cameras = self.cameras if cameras is None else cameras
            if cameras is None:
                raise ValueError(
                    f"cameras: {type(self).__name__} needs cameras (at construction or per call) or zfar=, got None"
                )
            zfar = getattr(cameras, "zfar", 100.0)
        n, like = pairs.num_images, pairs.zbuf
        if torch.is_tensor(zfar):
            far = zfar.to(device=like.device, dtype=like.dtype).reshape(-1)
            if far.numel() not in (1, n):
                raise ValueError(f"zfar: expected a float or {n} values (one per image), got {far.numel()} values")
            far = far.expand(n)
        elif isinstance(zfar, (int, float)) and not isinstance(zfar, bool):
            far = like.new_full((n,), float(zfar))
        else:
            raise TypeError(f"zfar: expected a float or a tensor, got {type(zfar).__name__}")
        return far[:, None].expand(n, pairs.num_pixels // max(n, 1)).reshape(-1)

    def forward(
        self, fragments: Fragments, meshes: Any = None, *, cameras: Any = None, lights: Any = None,
        materials: Any = None, blend_params: BlendParams | None = None, zfar: float | torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(N, H, W, 1) depth, differentiable w.r.t. ``zbuf`` (soft: also ``dists``) and ``zfar``."""
        pairs = _pairs(fragments)
        depth = self._depth(pairs, self._far(cameras, zfar, pairs), blend_params)
        return depth.view(pairs.num_images, *pairs.image_size, 1)


class HardDepthShader(_DepthShader):
    """View depth of each pixel's nearest face, ``zfar`` where none: (N, H, W, 1)."""

    def _depth(self, pairs: RasterPairs, far: torch.Tensor, blend_params: BlendParams | None) -> torch.Tensor:
        nearest = pairs.nearest().nonzero().squeeze(1)  # 1. visible pairs: each pixel's nearest
        return far.index_put((pairs.pix.index_select(0, nearest),), pairs.zbuf.index_select(0, nearest))


class SoftDepthShader(_DepthShader):
    """Depth blended by coverage in depth order (PyTorch3D's formula, see the module): (N, H, W, 1)."""

    def _depth(self, pairs: RasterPairs, far: torch.Tensor, blend_params: BlendParams | None) -> torch.Tensor:
        blend = _blend_params(blend_params, self.blend_params)
        prob = torch.sigmoid(pairs.dists / -blend.sigma)
        # Group the pairs by slot (depth rank), each group by pixel: a pixel with a slot-k
        # pair has a slot-(k-1) one, found by a binary search in the previous group.
        order, slot = pairs.slots()
        by_slot = torch.sort(slot, stable=True)
        order, slot = order[by_slot.indices], by_slot.values
        counts = torch.bincount(slot, minlength=1).tolist() if slot.numel() else []
        weighted = far.new_zeros(far.shape[0])  # sum_k w_k zbuf_k per pixel
        covered = far.new_zeros(far.shape[0])  # sum_k w_k = min(c_K, 1) per pixel
        start, prev_pix, prev_cum = 0, None, None
        for count in counts:  # one step per slot k (at most K), vectorised over pixels
            idx = order[start : start + count]
            pix = pairs.pix.index_select(0, idx)
            p = prob.index_select(0, idx)
            cum_before = torch.zeros_like(p) if prev_pix is None else prev_cum.index_select(0, torch.searchsorted(prev_pix, pix))
            cum = cum_before + p
            w = cum.clamp(max=1.0) - cum_before.clamp(max=1.0)
            weighted = weighted.index_add(0, pix, w * pairs.zbuf.index_select(0, idx))
            covered = covered.index_add(0, pix, w)
            start, prev_pix, prev_cum = start + count, pix, cum
        return weighted + (1.0 - covered) * far
