"""Per-face texture atlases (SoftRasterizer's and PyTorch3D's ``TexturesAtlas``).

Each face carries an ``R x R`` grid of texels covering its triangle in barycentric
space. Cell ``(row i, column j)`` with ``i + j < R`` is the lower-left triangle of the
square ``[j, j + 1] x [i, i + 1] / R`` in the ``(w0, w1)`` plane, whose centroid is at
``w0 = (j + 1/3) / R``, ``w1 = (i + 1/3) / R``; a cell with ``i + j >= R`` holds the
upper-right triangle of the square of cell ``(R - 1 - i, R - 1 - j)``, centroid
``w0 = (R - 1 - j + 2/3) / R``, ``w1 = (R - 1 - i + 2/3) / R``. So the ``R^2`` cells tile
the triangle with ``R^2`` equal sub-triangles; vertex 0 (``w0 = 1``) is at cell
``(0, R - 1)``, vertex 1 at ``(R - 1, 0)``, vertex 2 at ``(0, 0)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from ..geometry import gather_rows
from .base import TexturesBase, _describe, check_sample_args

__all__ = ["TexturesAtlas", "atlas_cell_barycentrics"]


def atlas_cell_barycentrics(
    size: int, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> Tensor:
    """Barycentric coordinates of the centroid of each atlas cell's sub-triangle.

    Args:
        size: ``R``, the atlas resolution.
        dtype, device: of the result.

    Returns:
        ``(R, R, 3)`` float, ``[i, j] = (w0, w1, w2)`` for the cell at row ``i``, column
        ``j`` (see the module docstring); sampling the atlas at these coordinates
        returns cell ``[i, j]``.
    """
    r = torch.arange(size, dtype=dtype, device=device)
    i, j = torch.meshgrid(r, r, indexing="ij")
    lower = (i + j) < size
    w0 = torch.where(lower, (j + 1.0 / 3.0) / size, (size - 1 - j + 2.0 / 3.0) / size)
    w1 = torch.where(lower, (i + 1.0 / 3.0) / size, (size - 1 - i + 2.0 / 3.0) / size)
    return torch.stack([w0, w1, 1.0 - w0 - w1], dim=-1)


class TexturesAtlas(TexturesBase):
    """An ``R x R`` texel grid per face of a batch of ``N`` meshes.

    Args:
        atlas: ``(N, F, R, R, C)`` float, or a list of ``N`` tensors ``(F_n, R, R, C)``
            float with one ``R``, ``C``, dtype and device. A padded tensor larger than a
            mesh is trimmed to that mesh's face count when given to
            :class:`~diffmesh.meshcore.Meshes`. ``load_obj(create_texture_atlas=True)``
            builds one from an OBJ file's materials (``aux.texture_atlas``).

    The atlas is stored packed, ``(sum(F_n), R, R, C)``, aligned with
    ``Meshes.faces_packed()``. Sampling is a nearest-cell lookup (PyTorch3D's): it is
    differentiable with respect to the atlas, not to the barycentric coordinates.

    Raises:
        TypeError, ValueError: naming the argument and the mesh index.
    """

    def __init__(self, atlas: Tensor | Sequence[Tensor]) -> None:
        if isinstance(atlas, Tensor):
            _check_atlas(atlas, "atlas", 5)
            n, f = atlas.shape[:2]
            self._padded_src: Tensor | None = atlas
            packed = atlas.reshape(n * f, *atlas.shape[2:])
            counts = (f,) * n
        elif isinstance(atlas, (list, tuple)):
            if not atlas:
                raise ValueError("TexturesAtlas: atlas is an empty list; give at least one mesh")
            parts = [_check_atlas(a, f"atlas[{i}]", 4) for i, a in enumerate(atlas)]
            first = parts[0]
            for i, a in enumerate(parts):
                if a.shape[1:] != first.shape[1:] or a.dtype != first.dtype:
                    raise ValueError(
                        f"TexturesAtlas: atlas[{i}] is {_describe(a)} but atlas[0] is "
                        f"{_describe(first)}; R, C and dtype must match"
                    )
                if a.device != first.device:
                    raise ValueError(
                        f"TexturesAtlas: atlas[{i}] is on {a.device} but atlas[0] is on "
                        f"{first.device}"
                    )
            self._padded_src = None
            packed = torch.cat(parts, 0)
            counts = tuple(a.shape[0] for a in parts)
        else:
            raise TypeError(
                "TexturesAtlas: atlas must be an (N, F, R, R, C) tensor or a list of "
                f"(F, R, R, C) tensors, got {_describe(atlas)}"
            )
        self._packed = packed
        self._counts = counts

    @classmethod
    def _from_packed(cls, packed: Tensor, counts: Sequence[int]) -> TexturesAtlas:
        out = cls.__new__(cls)
        out._padded_src = None
        out._packed = packed
        out._counts = tuple(int(c) for c in counts)
        return out

    def __len__(self) -> int:
        return len(self._counts)

    def __repr__(self) -> str:
        _, r, _, c = self._packed.shape
        return f"TexturesAtlas(N={len(self)}, faces={sum(self._counts)}, R={r}, C={c})"

    @property
    def device(self) -> torch.device:
        return self._packed.device

    # ----------------------------------------------------------------- views

    def atlas_packed(self) -> Tensor:
        """``(sum(F_n), R, R, C)`` float, aligned with ``Meshes.faces_packed()``."""
        return self._packed

    def atlas_list(self) -> list[Tensor]:
        """``N`` tensors ``(F_n, R, R, C)`` float."""
        return list(torch.split(self._packed, list(self._counts)))

    def atlas_padded(self) -> Tensor:
        """``(N, max(F_n), R, R, C)`` float, zero-padded."""
        rows = max(self._counts, default=0)
        out = self._packed.new_zeros((len(self), rows, *self._packed.shape[1:]))
        for i, a in enumerate(self.atlas_list()):  # one copy per mesh
            out[i, : a.shape[0]] = a
        return out

    def faces_verts_textures_packed(self) -> Tensor:
        """``(sum(F_n), 3, C)`` float: the cells at the face corners (vertex 0 at cell
        ``(0, R - 1)``, vertex 1 at ``(R - 1, 0)``, vertex 2 at ``(0, 0)``)."""
        a = self._packed
        return torch.stack([a[:, 0, -1], a[:, -1, 0], a[:, 0, 0]], dim=1)

    # ----------------------------------------------------------------- sampling

    def sample_at(
        self, face_idx: Tensor, bary: Tensor, faces_packed: Tensor | None = None
    ) -> Tensor:
        """The atlas cell under each (face, barycentric) position (nearest cell).

        With ``(w0, w1) = bary[..., :2]`` and ``j, i = clamp(trunc(R * (w0, w1)), 0, R-1)``:
        if ``R * (w0 + w1) - (i + j) <= 1`` the point is in the lower triangle of square
        ``(i, j)`` and reads cell ``[i, j]``, else it reads cell ``[R-1-i, R-1-j]``.
        (PyTorch3D does not clamp at 0: barycentrics below ``-1/R``, possible with a blur
        radius, index from the far end there.)

        Args:
            face_idx: ``(...)`` long, packed face indices, ``-1`` for none.
            bary: ``(..., 3)`` float.
            faces_packed: ``(sum(F_n), 3)`` long, the mesh's packed faces, or None (only
                its length is used, to check that the texture fits).

        Returns:
            ``(..., C)`` float, zeros where ``face_idx == -1``; differentiable with
            respect to the atlas only.
        """
        check_sample_args(face_idx, bary, "TexturesAtlas")
        num_faces, r, _, c = self._packed.shape
        if faces_packed is not None and faces_packed.shape[0] != num_faces:
            raise ValueError(
                f"TexturesAtlas.sample_at: faces_packed has {faces_packed.shape[0]} faces but "
                f"the atlas has {num_faces}"
            )
        if num_faces == 0:
            return bary.new_zeros((*face_idx.shape, c), dtype=self._packed.dtype)
        valid = face_idx >= 0
        w01 = torch.where(valid.unsqueeze(-1), bary[..., :2].detach(), 0.0)
        cell = (w01 * r).to(torch.int64).clamp(0, r - 1)  # (..., 2): column j, row i
        below = (w01.sum(dim=-1) * r - cell.sum(dim=-1).to(w01.dtype)) <= 1.0
        col = torch.where(below, cell[..., 0], r - 1 - cell[..., 0])
        row = torch.where(below, cell[..., 1], r - 1 - cell[..., 1])
        index = face_idx.clamp(min=0).long() * (r * r) + row * r + col
        out = gather_rows(self._packed.reshape(num_faces * r * r, c), index)
        return torch.where(valid.unsqueeze(-1), out, 0.0)

    # ----------------------------------------------------------------- batch plumbing

    def _fit_to_meshes(self, num_verts: Sequence[int], num_faces: Sequence[int]) -> TexturesAtlas:
        if tuple(num_faces) == self._counts:
            return self
        src = self._padded_src
        if src is not None and all(f <= src.shape[1] for f in num_faces):
            return TexturesAtlas([src[i, :f] for i, f in enumerate(num_faces)])
        raise ValueError(
            f"Meshes: textures (TexturesAtlas) has atlases for {list(self._counts)} faces per "
            f"mesh but the meshes have {list(num_faces)}"
        )

    def _select(self, indices: list[int]) -> TexturesAtlas:
        parts = self.atlas_list()
        packed = torch.cat([parts[i] for i in indices], 0) if indices else self._packed[:0]
        return TexturesAtlas._from_packed(packed, [self._counts[i] for i in indices])

    def _map(self, fn: Callable[[Tensor], Tensor]) -> TexturesAtlas:
        return TexturesAtlas._from_packed(fn(self._packed), self._counts)

    def join_batch(self, others: Sequence[TexturesAtlas]) -> TexturesAtlas:
        """This batch followed by ``others``, all TexturesAtlas with the same R and C."""
        parts = [self, *others]
        for i, t in enumerate(parts[1:]):
            if not isinstance(t, TexturesAtlas):
                raise TypeError(
                    f"TexturesAtlas.join_batch: others[{i}] must be TexturesAtlas, "
                    f"got {type(t).__name__}"
                )
            if t._packed.shape[1:] != self._packed.shape[1:]:
                raise ValueError(
                    f"TexturesAtlas.join_batch: others[{i}] has (R, R, C) = "
                    f"{tuple(t._packed.shape[1:])} but this texture has "
                    f"{tuple(self._packed.shape[1:])}"
                )
        return TexturesAtlas._from_packed(
            torch.cat([t._packed for t in parts], 0), [c for t in parts for c in t._counts]
        )

    def join_scene(self) -> TexturesAtlas:
        """One texture for all meshes joined into one (face order unchanged)."""
        return TexturesAtlas._from_packed(self._packed, [sum(self._counts)])


def _check_atlas(a: object, name: str, ndim: int) -> Tensor:
    if not isinstance(a, Tensor) or not a.is_floating_point():
        raise TypeError(f"TexturesAtlas: {name} must be a float tensor, got {_describe(a)}")
    shape = "(N, F, R, R, C)" if ndim == 5 else "(F, R, R, C)"
    if a.dim() != ndim or a.shape[-3] != a.shape[-2] or a.shape[-2] == 0:
        raise ValueError(
            f"TexturesAtlas: {name} must have shape {shape} with R >= 1, got {tuple(a.shape)}"
        )
    return a
