"""Rasterizer outputs: sparse (pixel, face) pairs and the dense PyTorch3D-style ``Fragments``.

The render path works on :class:`RasterPairs` (one row per kept pixel-face pair) and never
builds dense (N, H, W, K) tensors. :class:`Fragments` exposes PyTorch3D's four dense fields;
when it was made by the rasterizer they are materialised from the pairs on first access
(and stay differentiable), so a shader that only reads the pairs never pays for them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import cast

import torch

__all__ = ["Fragments", "RasterPairs", "pairs_of_fragments"]


class RasterPairs:
    """Sparse rasterizer output: the kept (pixel, face) pairs (each face's contiguous).

    Attributes:
        pix: (P,) long global pixel index ``n * H * W + y * W + x``.
        face: (P,) long packed face id.
        bary: (P, 3) float barycentric coordinates of the pixel centre in the face. When
            the pairs were made with ``bary=None`` and ``bary_fn``, computed by ``bary_fn()``
            on first access (the rasterizer's deferred barycentrics: same values, same
            gradients).
        zbuf: (P,) float view-space depth of the face at the pixel centre.
        dists: (P,) float signed squared NDC distance from the pixel centre to the face
            (negative inside).
        num_images: N, the batch size.
        image_size: (H, W) in pixels.
        faces_per_pixel: K, the most pairs any pixel has.

    Raises:
        ValueError: neither ``bary`` nor ``bary_fn`` given.
    """

    __slots__ = ("_bary", "_bary_fn", "dists", "face", "faces_per_pixel", "image_size", "num_images", "pix", "zbuf")

    def __init__(
        self,
        pix: torch.Tensor,
        face: torch.Tensor,
        bary: torch.Tensor | None,
        zbuf: torch.Tensor,
        dists: torch.Tensor,
        num_images: int,
        image_size: tuple[int, int],
        faces_per_pixel: int,
        *,
        bary_fn: Callable[[], torch.Tensor] | None = None,
    ) -> None:
        if bary is None and bary_fn is None:
            raise ValueError("RasterPairs: expected bary (a (P, 3) tensor) or bary_fn, got neither")
        self.pix, self.face, self.zbuf, self.dists = pix, face, zbuf, dists
        self.num_images, self.image_size, self.faces_per_pixel = num_images, image_size, faces_per_pixel
        self._bary, self._bary_fn = bary, bary_fn

    def __setattr__(self, name: str, value: object) -> None:
        # set once, in __init__ ("bary" is a property: never evaluated here)
        if name == "bary" or (not name.startswith("_") and hasattr(self, name)):
            raise AttributeError(f"RasterPairs is immutable: cannot assign to {name!r}")
        object.__setattr__(self, name, value)

    @property
    def bary(self) -> torch.Tensor:
        """(P, 3) float barycentric coordinates (computed on first access when deferred)."""
        if self._bary is None:
            self._bary = cast(Callable[[], torch.Tensor], self._bary_fn)()
            self._bary_fn = None
        return self._bary

    def __repr__(self) -> str:
        h, w = self.image_size
        return (
            f"RasterPairs(pairs={self.pix.shape[0]}, N={self.num_images}, H={h}, W={w}, "
            f"K={self.faces_per_pixel})"
        )

    @property
    def num_pixels(self) -> int:
        """N * H * W."""
        return self.num_images * self.image_size[0] * self.image_size[1]

    def image_index(self, idx: torch.Tensor | None = None) -> torch.Tensor:
        """(P,) long batch index n of each pair, or (len(idx),) of the pairs ``idx`` only."""
        height, width = self.image_size
        pix = self.pix if idx is None else self.pix.index_select(0, idx)
        return torch.div(pix, height * width, rounding_mode="floor")

    def slots(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Order the pairs by (pixel, depth, face id) and give each its slot k.

        Returns:
            (order, slot): ``order`` (P,) long permutation sorting the pairs by
            (pixel, z, face id); ``slot`` (P,) long rank of ``order[i]`` within its pixel.
        """
        order = torch.sort(self.face, stable=True).indices  # then stable sorts: ties by face id
        order = order[torch.sort(self.zbuf.detach()[order], stable=True).indices]
        order = order[torch.sort(self.pix[order], stable=True).indices]
        p = self.pix[order]
        pos = torch.arange(p.shape[0], device=p.device)
        first = torch.ones_like(p, dtype=torch.bool)
        first[1:] = p[1:] != p[:-1]
        first_pos = torch.cummax(torch.where(first, pos, torch.zeros_like(pos)), 0).values
        return order, pos - first_pos

    def nearest(self) -> torch.Tensor:
        """(P,) bool: the pair is its pixel's nearest, by (z, face id) as PyTorch3D orders them."""
        z = self.zbuf.detach()
        zmin = z.new_full((self.num_pixels,), float("inf")).scatter_reduce(0, self.pix, z, "amin")
        is_min = z == zmin[self.pix]
        big = torch.iinfo(torch.long).max
        fmin = torch.full((self.num_pixels,), big, dtype=torch.long, device=z.device)
        fmin = fmin.scatter_reduce(0, self.pix, torch.where(is_min, self.face, big), "amin")
        return is_min & (self.face == fmin[self.pix])

    def to_dense(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Materialise PyTorch3D's dense (N, H, W, K) fragments (differentiable)."""
        height, width = self.image_size
        k = self.faces_per_pixel
        shape = (self.num_images, height, width, k)
        order, slot = self.slots()
        flat = self.pix[order] * k + slot
        total = self.num_pixels * k
        pix_to_face = torch.full((total,), -1, dtype=torch.long, device=self.pix.device)
        pix_to_face[flat] = self.face[order]
        zbuf = self.zbuf.new_full((total,), -1.0).index_put((flat,), self.zbuf[order])
        dists = self.dists.new_full((total,), -1.0).index_put((flat,), self.dists[order])
        bary = self.bary.new_full((total, 3), -1.0).index_put((flat,), self.bary[order])
        return pix_to_face.view(shape), zbuf.view(shape), bary.view(*shape, 3), dists.view(shape)

    def detach(self) -> RasterPairs:
        """The same pairs with the float fields detached from the graph (deferred barycentrics
        stay deferred when their ``bary_fn`` has a ``detach()`` giving a graph-free one, as
        the rasterizer's has; otherwise they are computed now and detached)."""
        detach_fn = getattr(self._bary_fn, "detach", None)
        if self._bary is None and detach_fn is not None:
            return RasterPairs(
                self.pix, self.face, None, self.zbuf.detach(), self.dists.detach(),
                self.num_images, self.image_size, self.faces_per_pixel, bary_fn=detach_fn(),
            )
        return RasterPairs(
            self.pix, self.face, self.bary.detach(), self.zbuf.detach(), self.dists.detach(),
            self.num_images, self.image_size, self.faces_per_pixel,
        )


class Fragments:
    """The rasterizer's output, PyTorch3D's ``Fragments``.

    Attributes:
        pix_to_face: (N, H, W, K) long; ``pix_to_face[n, y, x, k] = f`` means packed face f
            is the k-th nearest face (ascending view depth, ties by face id) at pixel (y, x)
            of image n; -1 where fewer than K faces touch the pixel.
        zbuf: (N, H, W, K) float view-space depth of that face at the pixel centre; -1 padding.
        bary_coords: (N, H, W, K, 3) float barycentric coordinates of the pixel centre in
            that face; -1 padding.
        dists: (N, H, W, K) float signed squared distance in NDC from the pixel centre to
            the face's nearest edge, negative inside the face; -1 padding.
        pairs: the sparse pairs the dense fields come from, or None when the fragments were
            built from dense tensors.
    """

    __slots__ = ("_dense", "pairs")

    def __init__(
        self,
        pix_to_face: torch.Tensor | None = None,
        zbuf: torch.Tensor | None = None,
        bary_coords: torch.Tensor | None = None,
        dists: torch.Tensor | None = None,
        *,
        pairs: RasterPairs | None = None,
    ) -> None:
        fields = (pix_to_face, zbuf, bary_coords, dists)
        if pairs is None:
            names = ("pix_to_face", "zbuf", "bary_coords", "dists")
            missing = [n for n, f in zip(names, fields, strict=True) if f is None]
            if missing:
                raise ValueError(
                    "Fragments: expected pix_to_face, zbuf, bary_coords and dists (or pairs=), "
                    f"got None for {', '.join(missing)}"
                )
            self._dense: tuple[torch.Tensor, ...] | None = fields  # type: ignore[assignment]
        else:
            self._dense = None
        self.pairs = pairs

    def _fields(self) -> tuple[torch.Tensor, ...]:
        if self._dense is None:
            pairs = cast(RasterPairs, self.pairs)  # __init__ sets one of the two
            self._dense = pairs.to_dense()
        return self._dense

    @property
    def pix_to_face(self) -> torch.Tensor:
        """(N, H, W, K) long packed face ids, -1 padding."""
        return self._fields()[0]

    @property
    def zbuf(self) -> torch.Tensor:
        """(N, H, W, K) float view-space depths, -1 padding."""
        return self._fields()[1]

    @property
    def bary_coords(self) -> torch.Tensor:
        """(N, H, W, K, 3) float barycentric coordinates, -1 padding."""
        return self._fields()[2]

    @property
    def dists(self) -> torch.Tensor:
        """(N, H, W, K) float signed squared NDC distances, -1 padding."""
        return self._fields()[3]

    def __iter__(self) -> Iterator[torch.Tensor]:
        """Unpack as ``pix_to_face, zbuf, bary_coords, dists = fragments``."""
        return iter(self._fields())

    def __len__(self) -> int:
        """4: the fields, as PyTorch3D's ``rasterize_meshes`` tuple."""
        return 4

    def __getitem__(self, index: int | slice) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """``fragments[i]``: the i-th of ``(pix_to_face, zbuf, bary_coords, dists)`` (a tuple for a slice)."""
        if isinstance(index, bool) or not isinstance(index, (int, slice)):
            raise TypeError(f"index: expected an int or a slice, got {type(index).__name__}")
        return self._fields()[index]

    def detach(self) -> Fragments:
        """Fragments whose float fields are detached from the autograd graph."""
        if self._dense is None and self.pairs is not None:
            return Fragments(pairs=self.pairs.detach())
        p2f, zbuf, bary, dists = self._fields()
        return Fragments(p2f, zbuf.detach(), bary.detach(), dists.detach())

    def __repr__(self) -> str:
        if self.pairs is not None:
            n, (h, w), k = self.pairs.num_images, self.pairs.image_size, self.pairs.faces_per_pixel
            return f"Fragments(N={n}, H={h}, W={w}, K={k}, pairs={self.pairs.pix.shape[0]})"
        return f"Fragments(shape={tuple(self.pix_to_face.shape)})"


def pairs_of_fragments(fragments: Fragments) -> tuple[RasterPairs, torch.Tensor]:
    """The pairs of ``fragments`` and the slot of each in their dense fields.

    Args:
        fragments: the rasterizer's output, or Fragments built from dense tensors (their
            pairs are the slots with ``pix_to_face >= 0``, in slot order).

    Returns:
        (pairs, slots): ``slots`` (P,) long is ``((n * H + y) * W + x) * K + k`` of each pair.

    Raises:
        TypeError: ``fragments`` is not a :class:`Fragments`.
    """
    if not isinstance(fragments, Fragments):
        raise TypeError(f"fragments: expected Fragments, got {type(fragments).__name__}")
    pairs = fragments.pairs
    if pairs is not None:
        order, slot = pairs.slots()
        slots = torch.empty_like(order)  # a permutation: every element written
        slots[order] = pairs.pix[order] * pairs.faces_per_pixel + slot
        return pairs, slots
    p2f = fragments.pix_to_face
    n, height, width, k = p2f.shape
    flat = p2f.reshape(-1)
    keep = (flat >= 0).nonzero().squeeze(1)
    pix = torch.div(keep, k, rounding_mode="floor")
    zbuf, dists = fragments.zbuf.reshape(-1)[keep], fragments.dists.reshape(-1)[keep]
    bary = fragments.bary_coords.reshape(-1, 3)[keep]
    return RasterPairs(pix, flat[keep], bary, zbuf, dists, n, (height, width), k), keep
