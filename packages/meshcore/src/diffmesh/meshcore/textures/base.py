"""Behaviour shared by the texture classes: batch indexing, extend, device moves."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import TypeVar

import torch
from torch import Tensor

T = TypeVar("T", bound="TexturesBase")


def normalize_index(index: int | slice | Sequence[int] | Tensor, n: int, name: str) -> list[int]:
    """Turn a batch index (int, slice, list of ints, long or bool tensor) into a list of
    non-negative ints in ``[0, n)``; raise IndexError/TypeError naming ``name``."""
    if isinstance(index, bool):
        raise TypeError(f"{name}: index must be an int, slice, list or tensor, got a bool")
    if not isinstance(index, (int, Tensor)) and hasattr(index, "__index__"):
        index = operator.index(index)  # numpy integers and the like
    if isinstance(index, int):
        if not -n <= index < n:
            raise IndexError(f"{name}: index {index} is out of range for a batch of {n}")
        return [index % n]
    if isinstance(index, slice):
        return list(range(n))[index]
    if isinstance(index, Tensor):
        if index.dtype == torch.bool:
            if index.dim() != 1 or index.shape[0] != n:
                raise IndexError(
                    f"{name}: a bool index must have shape ({n},), got {tuple(index.shape)}"
                )
            return [int(i) for i in torch.nonzero(index).flatten().tolist()]
        if index.is_floating_point() or index.is_complex() or index.dim() > 1:
            raise TypeError(
                f"{name}: a tensor index must be 0-d or 1-d integer or bool, got a {index.dtype} "
                f"tensor of shape {tuple(index.shape)}"
            )
        index = index.flatten().tolist()
    if isinstance(index, Sequence) and not isinstance(index, str):
        out = []
        for i in index:
            if isinstance(i, bool) or not hasattr(i, "__index__"):
                raise TypeError(f"{name}: a list index must hold ints, got {type(i).__name__}")
            out.extend(normalize_index(i, n, name))
        return out
    raise TypeError(
        f"{name}: index must be an int, slice, list or tensor, got {type(index).__name__}"
    )


class TexturesBase:
    """Common interface of :class:`TexturesVertex`, :class:`TexturesUV` and
    :class:`TexturesAtlas`.

    Subclasses implement ``_select`` (a new texture of the meshes at the given
    indices), ``_map`` (apply a tensor function to every tensor), ``__len__``,
    ``_fit_to_meshes``, ``sample_at``, ``join_batch`` and ``join_scene``.
    """

    def __len__(self) -> int:
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        raise NotImplementedError

    def _select(self: T, indices: list[int]) -> T:
        raise NotImplementedError

    def _map(self: T, fn: Callable[[Tensor], Tensor]) -> T:
        raise NotImplementedError

    def _fit_to_meshes(self: T, num_verts: Sequence[int], num_faces: Sequence[int]) -> T:
        """This texture fitted to meshes with these per-mesh vertex and face counts:
        ``self`` when the sizes agree, a trimmed copy when this texture was built from
        padded tensors that are larger; raise ValueError otherwise."""
        raise NotImplementedError

    def sample_at(
        self, face_idx: Tensor, bary: Tensor, faces_packed: Tensor | None = None
    ) -> Tensor:
        """Texture values at (packed face, barycentric) positions.

        Args:
            face_idx: ``(...)`` long, packed face indices, ``-1`` for none.
            bary: ``(..., 3)`` float barycentric coordinates.
            faces_packed: ``(sum(F_n), 3)`` long, the mesh's packed faces (needed by
                TexturesVertex; the others only check its length when given).

        Returns:
            ``(..., C)`` float, zeros where ``face_idx == -1``; differentiable with
            respect to the texture's tensors (and ``bary``, except for TexturesAtlas).
        """
        raise NotImplementedError

    def sample_textures(self, fragments: object, faces_packed: Tensor | None = None) -> Tensor:
        """PyTorch3D's form of :meth:`sample_at`: the texture at every rasterized fragment.

        Args:
            fragments: the rasterizer's output; its ``pix_to_face`` ``(N, H, W, K)`` long
                (packed face ids, ``-1`` padding) and ``bary_coords`` ``(N, H, W, K, 3)``
                float are read.
            faces_packed: ``(sum(F_n), 3)`` long, the mesh's packed faces (required by
                TexturesVertex; ``Meshes.sample_textures`` passes it).

        Returns:
            ``(N, H, W, K, C)`` float texels, zeros where ``pix_to_face == -1``.
        """
        pix_to_face, bary = fragment_fields(fragments, f"{type(self).__name__}.sample_textures")
        return self.sample_at(pix_to_face, bary, faces_packed)

    def join_batch(self: T, others: Sequence[T]) -> T:
        """This batch followed by the batches in ``others`` (same texture type)."""
        raise NotImplementedError

    def join_scene(self: T) -> T:
        """A batch of one texture covering all meshes of this batch joined into one."""
        raise NotImplementedError

    def __getitem__(self: T, index: int | slice | Sequence[int] | Tensor) -> T:
        return self._select(normalize_index(index, len(self), type(self).__name__))

    def extend(self: T, n: int) -> T:
        """Repeat each mesh's texture ``n`` times (mesh order ``0,0,..,1,1,..``)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"{type(self).__name__}.extend: n must be an int >= 1, got {n!r}")
        return self._select([i for i in range(len(self)) for _ in range(n)])

    def to(self: T, device: torch.device | str) -> T:
        device = torch.device(device)
        return self._map(lambda t: t.to(device))

    def cpu(self: T) -> T:
        return self.to("cpu")

    def clone(self: T) -> T:
        return self._map(lambda t: t.clone())

    def detach(self: T) -> T:
        return self._map(lambda t: t.detach())


def fragment_fields(fragments: object, name: str) -> tuple[Tensor, Tensor]:
    """``(fragments.pix_to_face, fragments.bary_coords)``, checked to be tensors."""
    pix_to_face = getattr(fragments, "pix_to_face", None)
    bary = getattr(fragments, "bary_coords", None)
    if not isinstance(pix_to_face, Tensor) or not isinstance(bary, Tensor):
        raise TypeError(
            f"{name}: fragments must have tensors pix_to_face and bary_coords (the "
            f"rasterizer's Fragments), got {_describe(fragments)}"
        )
    return pix_to_face, bary


def check_sample_args(face_idx: Tensor, bary: Tensor, name: str) -> None:
    """Check the (face_idx, bary) pair given to ``sample_at``."""
    if not isinstance(face_idx, Tensor) or face_idx.dtype not in (torch.int32, torch.int64):
        raise TypeError(
            f"{name}.sample_at: face_idx must be a long tensor, got {_describe(face_idx)}"
        )
    if not isinstance(bary, Tensor) or not bary.is_floating_point():
        raise TypeError(f"{name}.sample_at: bary must be a float tensor, got {_describe(bary)}")
    if bary.shape != (*face_idx.shape, 3):
        raise ValueError(
            f"{name}.sample_at: bary must have shape {(*face_idx.shape, 3)} (face_idx's shape "
            f"plus 3), got {tuple(bary.shape)}"
        )


def _describe(x: object) -> str:
    if isinstance(x, Tensor):
        return f"a {x.dtype} tensor of shape {tuple(x.shape)}"
    return f"a {type(x).__name__}"
