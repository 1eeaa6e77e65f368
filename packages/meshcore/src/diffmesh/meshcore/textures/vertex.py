"""Per-vertex features (colours or any C channels), interpolated over faces."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from ..geometry import gather_rows
from ..topology import segment_ids
from .base import TexturesBase, _describe, check_sample_args

__all__ = ["TexturesVertex"]


class TexturesVertex(TexturesBase):
    """Per-vertex features of a batch of ``N`` meshes.

    Args:
        verts_features: a list of ``N`` tensors ``(V_n, C)`` float, or a padded tensor
            ``(N, V, C)`` float. A padded tensor larger than a mesh is trimmed to that
            mesh's vertex count when given to :class:`~diffmesh.meshcore.Meshes`.

    The features are stored packed, ``(sum(V_n), C)``, aligned with
    ``Meshes.verts_packed()``.

    Raises:
        TypeError: features that are not float tensors.
        ValueError: wrong shapes, mismatched channels or devices, or a NaN or inf feature
            (naming the list entry and index).
    """

    def __init__(self, verts_features: Sequence[Tensor] | Tensor) -> None:
        if isinstance(verts_features, Tensor):
            _check_features(verts_features, "verts_features", 3)
            n, v, c = verts_features.shape
            self._padded_src: Tensor | None = verts_features
            packed = verts_features.reshape(n * v, c)
            counts = (v,) * n
        elif isinstance(verts_features, (list, tuple)):
            feats = [
                _check_features(f, f"verts_features[{i}]", 2) for i, f in enumerate(verts_features)
            ]
            for i, f in enumerate(feats):
                if f.shape[1] != feats[0].shape[1] or f.dtype != feats[0].dtype:
                    raise ValueError(
                        f"TexturesVertex: verts_features[{i}] is {_describe(f)} but "
                        f"verts_features[0] is {_describe(feats[0])}; channels and dtype must match"
                    )
                if f.device != feats[0].device:
                    raise ValueError(
                        f"TexturesVertex: verts_features[{i}] is on {f.device} but "
                        f"verts_features[0] is on {feats[0].device}"
                    )
            self._padded_src = None
            packed = torch.cat(feats, 0) if feats else torch.zeros(0, 3)
            counts = tuple(f.shape[0] for f in feats)
        else:
            raise TypeError(
                "TexturesVertex: verts_features must be a list of (V, C) tensors or an "
                f"(N, V, C) tensor, got {_describe(verts_features)}"
            )
        self._packed = packed
        self._counts = counts

    @classmethod
    def _from_packed(cls, packed: Tensor, counts: Sequence[int]) -> TexturesVertex:
        out = cls.__new__(cls)
        out._padded_src = None
        out._packed = packed
        out._counts = tuple(int(c) for c in counts)
        return out

    def __len__(self) -> int:
        return len(self._counts)

    def __repr__(self) -> str:
        return (
            f"TexturesVertex(N={len(self)}, verts={sum(self._counts)}, C={self._packed.shape[1]})"
        )

    @property
    def device(self) -> torch.device:
        return self._packed.device

    # ----------------------------------------------------------------- views

    def verts_features_packed(self) -> Tensor:
        """``(sum(V_n), C)`` float, aligned with ``Meshes.verts_packed()``."""
        return self._packed

    def verts_features_list(self) -> list[Tensor]:
        """``N`` tensors ``(V_n, C)`` float."""
        return list(torch.split(self._packed, list(self._counts)))

    def verts_features_padded(self) -> Tensor:
        """``(N, max(V_n), C)`` float, zero-padded."""
        n, vmax, c = len(self._counts), max(self._counts, default=0), self._packed.shape[1]
        counts = torch.tensor(self._counts, dtype=torch.long, device=self.device)
        mesh = segment_ids(counts, self._packed.shape[0])
        local = (
            torch.arange(self._packed.shape[0], device=self.device)
            - (torch.cumsum(counts, 0) - counts)[mesh]
        )
        flat = self._packed.new_zeros(n * vmax, c).index_copy(0, mesh * vmax + local, self._packed)
        return flat.view(n, vmax, c)

    def faces_verts_textures_packed(self, faces_packed: Tensor) -> Tensor:
        """``(sum(F_n), 3, C)`` float: the features at each face corner."""
        return self._packed[faces_packed]

    # ----------------------------------------------------------------- sampling

    def sample_at(
        self, face_idx: Tensor, bary: Tensor, faces_packed: Tensor | None = None
    ) -> Tensor:
        """Barycentric interpolation of the corner features.

        ``out[...] = sum_k bary[..., k] * features[faces_packed[face_idx[...], k]]``.

        Args:
            face_idx: ``(...)`` long, packed face indices, ``-1`` for none.
            bary: ``(..., 3)`` float.
            faces_packed: ``(sum(F_n), 3)`` long (required: the features are per vertex).

        Returns:
            ``(..., C)`` float, zeros where ``face_idx == -1``.
        """
        check_sample_args(face_idx, bary, "TexturesVertex")
        if not isinstance(faces_packed, Tensor):
            raise TypeError(
                "TexturesVertex.sample_at: faces_packed must be the mesh's (F, 3) packed faces "
                f"(the features are per vertex), got {type(faces_packed).__name__}"
            )
        c = self._packed.shape[1]
        dtype = torch.promote_types(self._packed.dtype, bary.dtype)
        if faces_packed.shape[0] == 0:
            return bary.new_zeros((*face_idx.shape, c), dtype=dtype)
        valid = face_idx >= 0
        corners = gather_rows(faces_packed, face_idx.clamp(min=0).long())  # (..., 3)
        feats = gather_rows(self._packed, corners)  # (..., 3, C)
        out = (bary.unsqueeze(-1) * feats).sum(dim=-2)
        return torch.where(valid.unsqueeze(-1), out, 0.0)

    # ----------------------------------------------------------------- batch plumbing

    def _fit_to_meshes(self, num_verts: Sequence[int], num_faces: Sequence[int]) -> TexturesVertex:
        if tuple(num_verts) == self._counts:
            return self
        if self._padded_src is not None and all(v <= self._padded_src.shape[1] for v in num_verts):
            return TexturesVertex([self._padded_src[i, :v] for i, v in enumerate(num_verts)])
        raise ValueError(
            f"Meshes: textures (TexturesVertex) has {list(self._counts)} vertices per mesh "
            f"but the meshes have {list(num_verts)}"
        )

    def _select(self, indices: list[int]) -> TexturesVertex:
        feats = self.verts_features_list()
        return TexturesVertex._from_packed(
            torch.cat([feats[i] for i in indices], 0)
            if indices
            else self._packed.new_zeros(0, self._packed.shape[1]),
            [self._counts[i] for i in indices],
        )

    def _map(self, fn: Callable[[Tensor], Tensor]) -> TexturesVertex:
        return TexturesVertex._from_packed(fn(self._packed), self._counts)

    def join_batch(self, others: Sequence[TexturesVertex]) -> TexturesVertex:
        """This batch followed by ``others``, all TexturesVertex with the same C."""
        parts = [self, *others]
        for i, t in enumerate(parts[1:]):
            if not isinstance(t, TexturesVertex):
                raise TypeError(
                    f"TexturesVertex.join_batch: others[{i}] must be TexturesVertex, "
                    f"got {type(t).__name__}"
                )
            if t._packed.shape[1] != self._packed.shape[1]:
                raise ValueError(
                    f"TexturesVertex.join_batch: others[{i}] has {t._packed.shape[1]} channels "
                    f"but this texture has {self._packed.shape[1]}"
                )
        return TexturesVertex._from_packed(
            torch.cat([t._packed for t in parts], 0), [c for t in parts for c in t._counts]
        )

    def join_scene(self) -> TexturesVertex:
        """One texture for all meshes joined into one (vertex order unchanged)."""
        return TexturesVertex._from_packed(self._packed, [sum(self._counts)])


def _check_features(f: object, name: str, ndim: int) -> Tensor:
    if not isinstance(f, Tensor) or not f.is_floating_point():
        raise TypeError(f"TexturesVertex: {name} must be a float tensor, got {_describe(f)}")
    if f.dim() != ndim:
        shape = "(V, C)" if ndim == 2 else "(N, V, C)"
        raise ValueError(f"TexturesVertex: {name} must have shape {shape}, got {tuple(f.shape)}")
    finite = torch.isfinite(f.detach())
    if not bool(finite.all()):
        where = tuple(int(i) for i in (~finite).nonzero()[0])
        raise ValueError(
            f"TexturesVertex: {name} must be finite, got {f.detach()[where].item()} at index "
            f"{where}"
        )
    return f
