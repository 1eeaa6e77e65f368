"""Fragments: the rasterizer's (pixel, face) pairs, their depth order within each pixel (the
K-nearest cut), PyTorch3D's dense view of them, and interpolation of attributes at pairs
(one CSR product, hand-written backward)."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterator
from typing import Any, cast

import torch

__all__ = [
    "Fragments", "RasterPairs", "complement", "csr_matrix", "depth_order", "first_order_only",
    "interpolate_face_attributes", "interpolate_pairs", "interpolate_vertex_groups", "interpolate_vertex_pairs",
    "k_nearest_drop", "k_nearest_keep", "pair_rows", "pairs_of_fragments",
]


def depth_order(pix: torch.Tensor, z: torch.Tensor, face: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(order, rank): (P,) permutation sorting pairs by (pixel, z, face id) (stable sorts, so
    ties keep their order), and the rank of ``order[i]`` within its pixel."""
    order = torch.sort(face, stable=True).indices
    order = order[torch.sort(z.index_select(0, order), stable=True).indices]
    order = order[torch.sort(pix.index_select(0, order), stable=True).indices]
    return order, run_ranks(pix.index_select(0, order))


def run_ranks(p: torch.Tensor) -> torch.Tensor:
    """(P,) position of each element within its run of equal values in ``p`` (P,)."""
    pos = torch.arange(p.shape[0], device=p.device)
    first = torch.ones_like(p, dtype=torch.bool)
    first[1:] = p[1:] != p[:-1]
    return pos - torch.cummax(torch.where(first, pos, torch.zeros_like(pos)), 0).values


def complement(drop: torch.Tensor, size: int) -> torch.Tensor:
    """Ascending indices in [0, size) not in ``drop``."""
    keep = torch.ones(size, dtype=torch.bool, device=drop.device)
    keep[drop] = False
    return keep.nonzero().squeeze(1)


def k_nearest_keep(pix: torch.Tensor, zbuf: torch.Tensor, face: torch.Tensor, k: int) -> torch.Tensor | None:
    """Ascending indices of the (P,) pairs among their pixel's K nearest by (z >= 0, face id);
    None when all are."""
    drop = k_nearest_drop(pix, zbuf, face, k)
    return None if drop is None else complement(drop, pix.shape[0])


def k_nearest_drop(pix: torch.Tensor, zbuf: torch.Tensor, face: torch.Tensor, k: int) -> torch.Tensor | None:
    """Ascending indices of the pairs beyond their pixel's K nearest by (z, face id); None if none.

    Only over-full pixels are sorted: float32 depths (>= 0: their bits order like the floats)
    by one int64 key (pixel rank, z bits, face id) when it fits in 63 bits, else by (z bits,
    face id) then stably by pixel; otherwise by :func:`depth_order` (stable sorts).
    """
    counts = torch.bincount(pix)
    over = counts > k
    if not bool(over.any()):
        return None
    sel = over.index_select(0, pix).nonzero().squeeze(1)
    z, f, p = zbuf.index_select(0, sel), face.index_select(0, sel), pix.index_select(0, sel)
    face_bits = max(int(f.max()).bit_length(), 1)
    if z.dtype == torch.float32 and 31 + face_bits <= 63:
        # (z, face) as one key: +0.0 for -0.0, then the float bits (monotone for z >= 0)
        key = ((z + 0.0).view(torch.int32).long() << face_bits) | f
        rank = torch.cumsum(over, 0).sub_(1).index_select(0, p)  # dense rank of the pixel
        if int(rank.max()).bit_length() + 31 + face_bits <= 63:
            order = torch.sort(key | (rank << (31 + face_bits)), stable=True).indices
        else:
            order = torch.sort(key, stable=True).indices
            order = order[torch.sort(rank.index_select(0, order).int(), stable=True).indices]
        in_pixel = run_ranks(p.index_select(0, order))
    else:
        order, in_pixel = depth_order(p, z, f)
    return torch.sort(sel.index_select(0, order)[in_pixel >= k]).values


def first_order_only(backward: Callable[..., Any]) -> Callable[..., Any]:
    """A hand-written ``backward`` that raises RuntimeError under ``create_graph=True`` (grad
    mode on): ``once_differentiable`` would let a double backward silently miss terms."""

    @functools.wraps(backward)
    def wrapper(ctx: Any, *grads: Any) -> Any:
        if torch.is_grad_enabled():
            raise RuntimeError(
                "diffmesh.softrender: second-order gradients (create_graph=True) are not supported "
                "by the rasterizer, shading and blending functions (their backward passes are hand-written)"
            )
        return backward(ctx, *grads)

    return wrapper


class RasterPairs:
    """The rasterizer's kept (pixel, face) pairs, each face's contiguous (immutable).

    Attributes:
        pix: (P,) long ``n * H * W + y * W + x``; face: (P,) long packed face id.
        bary: (P, 3) float barycentrics of the pixel centre (``bary=None`` with ``bary_fn``:
            ``bary_fn()`` on first access, the rasterizer's deferred barycentrics).
        zbuf: (P,) view depth; dists: (P,) signed squared NDC distance (negative inside).
        num_images, image_size, faces_per_pixel: N, (H, W), K.
    """

    __slots__ = ("_bary", "_bary_fn", "dists", "face", "faces_per_pixel", "image_size", "num_images", "pix", "zbuf")

    def __init__(
        self, pix: torch.Tensor, face: torch.Tensor, bary: torch.Tensor | None, zbuf: torch.Tensor,
        dists: torch.Tensor, num_images: int, image_size: tuple[int, int], faces_per_pixel: int, *,
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
        """(order, slot): (P,) permutation sorting the pairs by (pixel, z, face id), and the
        rank k of ``order[i]`` within its pixel."""
        return depth_order(self.pix, self.zbuf.detach(), self.face)

    def nearest(self, idx: torch.Tensor | None = None) -> torch.Tensor:
        """(P,) bool: the pair is its pixel's nearest, by (z, face id) as PyTorch3D orders them
        (with ``idx`` (M,): (M,) bool, the nearest among the pairs ``idx`` only)."""
        pix, z, face = self.pix, self.zbuf.detach(), self.face
        if idx is not None:
            pix, z, face = pix.index_select(0, idx), z.index_select(0, idx), face.index_select(0, idx)
        zmin = z.new_full((self.num_pixels,), float("inf")).scatter_reduce_(0, pix, z, "amin")
        is_min = z == zmin.index_select(0, pix)
        big = torch.iinfo(torch.long).max
        fmin = torch.full((self.num_pixels,), big, dtype=torch.long, device=z.device)
        fmin.scatter_reduce_(0, pix, torch.where(is_min, face, big), "amin")
        return is_min & (face == fmin.index_select(0, pix))

    def to_dense(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Materialise PyTorch3D's dense (N, H, W, K) fragments (differentiable)."""
        k = self.faces_per_pixel
        shape = (self.num_images, *self.image_size, k)
        order, slot = self.slots()
        flat = self.pix[order] * k + slot
        pix_to_face, zbuf, bary, dists = (
            t.new_full((self.num_pixels * k, *t.shape[1:]), -1).index_put((flat,), t[order]).view(*shape, *t.shape[1:])
            for t in (self.face, self.zbuf, self.bary, self.dists)
        )
        return pix_to_face, zbuf, bary, dists

    def detach(self) -> RasterPairs:
        """The pairs with float fields detached (deferred barycentrics stay deferred when
        ``bary_fn`` has a ``detach()``, as the rasterizer's has; else computed now)."""
        detach_fn = getattr(self._bary_fn, "detach", None)
        deferred = self._bary is None and detach_fn is not None
        return RasterPairs(
            self.pix, self.face, None if deferred else self.bary.detach(), self.zbuf.detach(), self.dists.detach(),
            self.num_images, self.image_size, self.faces_per_pixel, bary_fn=detach_fn() if deferred else None,
        )


class Fragments:
    """The rasterizer's output, PyTorch3D's ``Fragments``: dense (N, H, W, K) fields built on
    first access from ``pairs`` (None when built from dense tensors), -1 padding.

    ``pix_to_face``: packed id of the k-th nearest face (by view depth, then face id);
    ``zbuf``: its view depth; ``bary_coords`` (N, H, W, K, 3); ``dists``: signed squared NDC
    distance to its nearest edge, negative inside.
    """

    __slots__ = ("_dense", "pairs")

    def __init__(
        self, pix_to_face: torch.Tensor | None = None, zbuf: torch.Tensor | None = None,
        bary_coords: torch.Tensor | None = None, dists: torch.Tensor | None = None, *,
        pairs: RasterPairs | None = None,
    ) -> None:
        fields = {"pix_to_face": pix_to_face, "zbuf": zbuf, "bary_coords": bary_coords, "dists": dists}
        missing = [name for name, field in fields.items() if field is None]
        if pairs is None and missing:
            raise ValueError(
                "Fragments: expected pix_to_face, zbuf, bary_coords and dists (or pairs=), "
                f"got None for {', '.join(missing)}"
            )
        self._dense: tuple[torch.Tensor, ...] | None = None if pairs is not None else tuple(fields.values())  # type: ignore[arg-type]
        self.pairs = pairs

    def _fields(self) -> tuple[torch.Tensor, ...]:
        if self._dense is None:
            pairs = cast(RasterPairs, self.pairs)  # __init__ sets one of the two
            self._dense = pairs.to_dense()
        return self._dense

    pix_to_face = property(lambda self: self._fields()[0])
    zbuf = property(lambda self: self._fields()[1])
    bary_coords = property(lambda self: self._fields()[2])
    dists = property(lambda self: self._fields()[3])

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter(self._fields())

    def __len__(self) -> int:
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
    """(pairs, slots (P,) ``((n * H + y) * W + x) * K + k``) of ``fragments`` (of dense ones:
    the slots with ``pix_to_face >= 0``, in slot order)."""
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


def pair_rows(name: str, values: object, pairs: RasterPairs, slots: torch.Tensor) -> torch.Tensor:
    """(P, C) rows of dense ``values`` (N, H, W, K, C) at the ``slots`` of the pairs (from
    :func:`pairs_of_fragments`); ValueError naming ``name`` for another shape."""
    shape = (pairs.num_images, *pairs.image_size, pairs.faces_per_pixel)
    if not torch.is_tensor(values) or values.dim() != 5 or tuple(values.shape[:4]) != shape:
        got = tuple(values.shape) if torch.is_tensor(values) else type(values).__name__
        raise ValueError(f"{name}: expected shape {(*shape, 'C')} (N, H, W, K, C), got {got}")
    return values.reshape(-1, values.shape[-1]).index_select(0, slots)


def interpolate_face_attributes(
    pix_to_face: torch.Tensor, barycentric_coords: torch.Tensor, face_attributes: torch.Tensor
) -> torch.Tensor:
    """(N, H, W, K, D) ``sum_i bary[..., i] * face_attributes[pix_to_face, i]``, 0 where
    ``pix_to_face`` (N, H, W, K) is -1; ``barycentric_coords`` (N, H, W, K, 3),
    ``face_attributes`` (F, 3, D), both differentiable."""
    if not torch.is_tensor(pix_to_face) or pix_to_face.dtype not in (torch.long, torch.int):
        raise TypeError("pix_to_face: expected an integer (N, H, W, K) tensor")
    if not torch.is_tensor(face_attributes) or face_attributes.dim() != 3 or face_attributes.shape[1] != 3:
        got = tuple(face_attributes.shape) if torch.is_tensor(face_attributes) else type(face_attributes).__name__
        raise ValueError(f"face_attributes: expected shape (F, 3, D), got {got}")
    if not torch.is_tensor(barycentric_coords) or tuple(barycentric_coords.shape) != (*pix_to_face.shape, 3):
        got = tuple(barycentric_coords.shape) if torch.is_tensor(barycentric_coords) else None
        raise ValueError(f"barycentric_coords: expected shape {(*pix_to_face.shape, 3)}, got {got}")
    out = interpolate_pairs(pix_to_face.reshape(-1).clamp(min=0), barycentric_coords.reshape(-1, 3), face_attributes)
    out = out * (pix_to_face >= 0).reshape(-1, 1).to(out.dtype)  # 0 where there is no face
    return out.view(*pix_to_face.shape, face_attributes.shape[2])


def interpolate_pairs(face: torch.Tensor, bary: torch.Tensor, face_attributes: torch.Tensor) -> torch.Tensor:
    """(P, D) ``sum_i bary[:, i] * face_attributes[face, i]``: faces (P,), bary (P, 3), (F, 3, D)."""
    if face.shape[0] == 0:
        return face_attributes.new_zeros(0, face_attributes.shape[2])
    vals = face_attributes.index_select(0, face)  # (P, 3, D); backward is an index_add
    return (bary.to(vals.dtype)[:, :, None] * vals).sum(dim=1)


def csr_matrix(crow: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A sparse CSR matrix, unchecked, int32 indices when they fit (MKL converts int64 ones
    on every product)."""
    if max(size[0], size[1], values.shape[0]) < 2**31 - 1:
        crow, cols = crow.to(torch.int32), cols.to(torch.int32)
    with warnings.catch_warnings():  # torch flags sparse CSR as beta on every construction
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, cols, values, size=size, check_invariants=False)


def _transpose(x: torch.Tensor) -> torch.Tensor:
    """``x.t().contiguous()`` for a narrow (P, C) tensor, one strided row copy per column
    (several times faster on a CPU than the generic transposing copy)."""
    out = x.new_empty(x.shape[1], x.shape[0])  # every row written below
    for i in range(x.shape[1]):
        out[i].copy_(x[:, i])
    return out


def _run_matrix(corner_rows: torch.Tensor, weight_rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """((3 R, P) CSR with ``weight_rows[i, p]`` at (i R + run(p), p), (3 R,) vertex of each
    row); runs are blocks of consecutive pairs with equal corners; inputs (3, P) rows."""
    count = corner_rows.shape[1]
    starts = torch.ones(count, dtype=torch.bool, device=corner_rows.device)
    starts[1:] = (corner_rows[:, 1:] != corner_rows[:, :-1]).any(dim=0)
    starts = starts.nonzero().squeeze(1)
    bounds = torch.cat((starts, starts.new_full((1,), count)))
    crow = torch.cat((bounds[:-1], bounds[:-1] + count, bounds + 2 * count))  # one block per corner
    pair = torch.arange(count, device=corner_rows.device, dtype=torch.int32 if 3 * count < 2**31 else torch.long)
    cols = torch.cat((pair, pair, pair))  # (repeat() is a slow strided copy)
    matrix = csr_matrix(crow, cols, weight_rows.reshape(-1), (3 * starts.shape[0], count))
    return matrix, corner_rows.index_select(1, starts).reshape(-1)


class _InterpolateVertexPairs(torch.autograd.Function):
    """``out_k[p] = sum_i bary[p, i] * attrs_k[corners[p, i]]`` for attribute tables k."""

    # Forward: one CSR (P, V) mat-vec per channel; outputs are transposed views of (D_k, P)
    # storage. Backward: sums over runs of equal corners (a CSR mat-vec) before a small
    # scatter to the vertices (scatter-adds with long runs of equal indices are slow).

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        grad_enabled: bool,
        corners: torch.Tensor,
        bary: torch.Tensor,
        *attributes: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        dtype = attributes[0].dtype
        weights = bary.to(dtype).contiguous()  # (P, 3)
        cols = [a.to(dtype).t().contiguous() for a in attributes]  # (D_k, V) each
        count = corners.shape[0]
        matrix = None
        if count:  # (P, V) with ``weights[p, i]`` at column ``corners[p, i]``
            crow = torch.arange(0, 3 * count + 1, 3, device=corners.device)
            matrix = csr_matrix(crow, corners.reshape(-1), weights.reshape(-1), (count, attributes[0].shape[0]))
        outs = []
        for col in cols:
            if matrix is None or col.shape[0] == 0:
                outs.append(col.new_zeros(count, col.shape[0]))
            else:
                out = col.new_empty(col.shape[0], count)  # (D_k, P), every row written
                for c, row in zip(col, out, strict=True):
                    torch.mv(matrix, c, out=row)
                outs.append(out.t())
        if grad_enabled and any(ctx.needs_input_grad):
            ctx.save_for_backward(_transpose(corners), _transpose(weights), *cols)  # (3, P) rows
        ctx.set_materialize_grads(False)  # an unused output's gradient stays None
        ctx.bary_dtype = bary.dtype
        ctx.attr_dtypes = [a.dtype for a in attributes]
        return tuple(outs)

    @staticmethod
    @first_order_only
    def backward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx, *grads: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, ...]:
        corner_rows, weight_rows, *cols = ctx.saved_tensors
        needs = ctx.needs_input_grad
        count = corner_rows.shape[1]
        # (D_k, P) channel rows: contiguous when the gradient is channel-planar, strided
        # views otherwise (read in place, never transposed into a copy).
        grad_rows = [None if g is None or count == 0 else g.to(weight_rows.dtype).t() for g in grads]
        grad_bary = None
        if needs[2]:
            acc = weight_rows.new_zeros(3, count)
            for col, rows in zip(cols, grad_rows, strict=True):
                for d in range(0 if rows is None else col.shape[0]):
                    for i in range(3):
                        acc[i].addcmul_(rows[d], col[d].index_select(0, corner_rows[i]))
            grad_bary = weight_rows.new_empty(count, 3)  # (P, 3) rows, as bary; every column written
            for i in range(3):
                grad_bary[:, i].copy_(acc[i])
            grad_bary = grad_bary.to(ctx.bary_dtype)
        grad_attrs: list[torch.Tensor | None] = []
        run_matrix = vertex = None
        for k, (col, rows) in enumerate(zip(cols, grad_rows, strict=True)):
            if not needs[3 + k]:
                grad_attrs.append(None)
                continue
            acc = col.new_zeros(col.shape)  # (D_k, V)
            if rows is not None and col.shape[0]:
                if run_matrix is None:
                    run_matrix, vertex = _run_matrix(corner_rows, weight_rows)
                if rows.t().is_contiguous():  # (P, D_k) rows: one sparse @ dense product
                    sums = (run_matrix @ rows.t()).t()
                else:
                    sums = col.new_empty(col.shape[0], run_matrix.shape[0])  # (D_k, 3 R), all written
                    for r, row in zip(rows, sums, strict=True):
                        torch.mv(run_matrix, r.contiguous(), out=row)
                acc.index_add_(1, vertex, sums)
            grad_attrs.append(acc.t().to(ctx.attr_dtypes[k]))
        return None, None, grad_bary, *grad_attrs


def interpolate_vertex_groups(
    corners: torch.Tensor, bary: torch.Tensor, *attributes: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """:func:`interpolate_vertex_pairs` of several (V, D_k) tables at once: (P, D_k) each."""
    if not attributes:
        raise ValueError("interpolate_vertex_groups: expected at least one (V, D) attribute table, got none")
    return _InterpolateVertexPairs.apply(torch.is_grad_enabled(), corners, bary, *attributes)


def interpolate_vertex_pairs(corners: torch.Tensor, bary: torch.Tensor, vert_attributes: torch.Tensor) -> torch.Tensor:
    """(P, D) ``sum_i bary[:, i] * vert_attributes[corners[:, i]]`` for corners, bary (P, 3)
    and (V, D) values; differentiable w.r.t. ``bary`` and ``vert_attributes``."""
    return _InterpolateVertexPairs.apply(torch.is_grad_enabled(), corners, bary, vert_attributes)[0]
