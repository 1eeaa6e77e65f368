"""UV-mapped texture images: one map per mesh, or a stack of maps chosen per face.

Conventions (PyTorch3D's, see :mod:`.sampling`): ``u`` runs left to right over the image
columns and ``v`` from the *bottom* row (``v = 0``) to the top row (``v = 1``); maps are
``(N, H, W, C)`` with row 0 at the top. With ``align_corners=False`` (the default here)
pixel centres sit at ``(j + 0.5) / W``; with ``align_corners=True`` ``u = 0`` and
``u = 1`` are the centres of the first and last pixels (PyTorch3D's own default).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from ..geometry import gather_rows
from ..topology import segment_ids
from .base import TexturesBase, check_sample_args
from .sampling import PADDING_MODES, SAMPLING_MODES, sample_bilinear, sample_maps
from .uv_inputs import faces_uvs_list, maps_ids_list, maps_tensor, pad_rows, verts_uvs_list

__all__ = ["TexturesUV", "sample_bilinear"]


class TexturesUV(TexturesBase):
    """Texture images mapped onto a batch of ``N`` meshes by per-face-corner UVs.

    Args:
        maps: ``(N, H, W, C)`` float, or a list of ``N`` tensors ``(H_n, W_n, C)``
            (resized bilinearly to the largest ``H, W`` if they differ). With
            ``maps_ids``: ``(N, M, H, W, C)``, or a list of ``N`` tensors
            ``(M_n, H_n, W_n, C)`` (resized, and padded with zero maps to ``max(M_n)``).
        faces_uvs: a list of ``N`` tensors ``(F_n, 3)`` integer, indices into the
            matching ``verts_uvs[n]``, or ``(N, F, 3)`` padded with all-``-1`` rows
            (a padded tensor larger than a mesh is trimmed to that mesh's face count
            when given to :class:`~diffmesh.meshcore.Meshes`).
        verts_uvs: a list of ``N`` tensors ``(T_n, 2)`` float, or ``(N, T, 2)``.
        padding_mode: what a lookup outside the map reads: ``"border"`` (default),
            ``"zeros"`` or ``"reflection"`` (``grid_sample``'s modes).
        align_corners: pixel-centre convention, see the module docstring.
        sampling_mode: ``"bilinear"`` (default) or ``"nearest"``.
        maps_ids: several maps per mesh (e.g. an OBJ file with several materials):
            ``(N, F)`` integer or a list of ``N`` tensors ``(F_n,)``; face ``f`` of mesh
            ``n`` reads map ``maps[n, maps_ids[n, f]]``. None (default): one map per mesh.

    Raises:
        TypeError, ValueError: naming the argument and the texture index.
    """

    def __init__(
        self,
        maps: Tensor | Sequence[Tensor],
        faces_uvs: Tensor | Sequence[Tensor],
        verts_uvs: Tensor | Sequence[Tensor],
        padding_mode: str = "border",
        align_corners: bool = False,
        sampling_mode: str = "bilinear",
        *,
        maps_ids: Tensor | Sequence[Tensor] | None = None,
    ) -> None:
        if padding_mode not in PADDING_MODES:
            raise ValueError(
                f"TexturesUV: padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}"
            )
        if sampling_mode not in SAMPLING_MODES:
            raise ValueError(
                f"TexturesUV: sampling_mode must be one of {SAMPLING_MODES}, got {sampling_mode!r}"
            )
        self.align_corners = bool(align_corners)
        self.padding_mode = padding_mode
        self.sampling_mode = sampling_mode
        multi = maps_ids is not None
        self._maps = maps_tensor(maps, multi)
        self._faces_padded_src = faces_uvs if isinstance(faces_uvs, Tensor) else None
        self._ids_padded_src = maps_ids if isinstance(maps_ids, Tensor) else None
        faces_list = faces_uvs_list(faces_uvs)
        verts_list = verts_uvs_list(verts_uvs)
        n = self._maps.shape[0]
        if not len(faces_list) == len(verts_list) == n:
            raise ValueError(
                f"TexturesUV: maps, faces_uvs and verts_uvs must have the same batch size, got "
                f"{n}, {len(faces_list)} and {len(verts_list)}"
            )
        for i, (f, v) in enumerate(zip(faces_list, verts_list, strict=True)):
            if f.device != self._maps.device or v.device != self._maps.device:
                raise ValueError(
                    f"TexturesUV: faces_uvs[{i}] / verts_uvs[{i}] are on {f.device} / {v.device} "
                    f"but maps are on {self._maps.device}"
                )
            if f.numel() and (int(f.min()) < 0 or int(f.max()) >= v.shape[0]):
                bad = int(f.min()) if int(f.min()) < 0 else int(f.max())
                raise ValueError(
                    f"TexturesUV: faces_uvs[{i}] has index {bad} but verts_uvs[{i}] has only "
                    f"{v.shape[0]} uvs"
                )
        ids_list = None
        if multi:
            ids_list = maps_ids_list(maps_ids, [f.shape[0] for f in faces_list])
            counts = (
                [m.shape[0] for m in maps]
                if isinstance(maps, (list, tuple))
                else [self._maps.shape[1]] * n
            )
            for i, (ids, count) in enumerate(zip(ids_list, counts, strict=True)):
                if ids.device != self._maps.device:
                    raise ValueError(
                        f"TexturesUV: maps_ids[{i}] is on {ids.device} but maps are on "
                        f"{self._maps.device}"
                    )
                if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= count):
                    bad = int(ids.min()) if int(ids.min()) < 0 else int(ids.max())
                    raise ValueError(
                        f"TexturesUV: maps_ids[{i}] has id {bad} but mesh {i} has {count} maps"
                    )
        self._set_lists(faces_list, verts_list, ids_list)

    def _set_lists(
        self, faces_list: list[Tensor], verts_list: list[Tensor], ids_list: list[Tensor] | None
    ) -> None:
        device = self._maps.device
        self._faces_list = faces_list
        self._verts_list = verts_list
        self._ids_list = ids_list
        nt = torch.tensor([v.shape[0] for v in verts_list], dtype=torch.long, device=device)
        nf = torch.tensor([f.shape[0] for f in faces_list], dtype=torch.long, device=device)
        total = sum(f.shape[0] for f in faces_list)
        face_to_mesh = segment_ids(nf, total)
        self._face_to_map = face_to_mesh
        if ids_list is not None:
            ids = torch.cat(ids_list) if ids_list else face_to_mesh
            self._face_to_map = face_to_mesh * self._maps.shape[1] + ids
        first_t = torch.cumsum(nt, 0) - nt
        self._verts_uvs_packed = (
            torch.cat(verts_list, 0) if verts_list else self._maps.new_zeros(0, 2)
        )
        faces = (
            torch.cat(faces_list, 0)
            if faces_list
            else torch.zeros(0, 3, dtype=torch.long, device=device)
        )
        self._faces_uvs_packed = faces + first_t[face_to_mesh].unsqueeze(1)

    def _from_parts(
        self,
        maps: Tensor,
        faces_list: list[Tensor],
        verts_list: list[Tensor],
        ids_list: list[Tensor] | None,
    ) -> TexturesUV:
        """A texture with these parts and this texture's modes."""
        out = TexturesUV.__new__(TexturesUV)
        out.align_corners = self.align_corners
        out.padding_mode = self.padding_mode
        out.sampling_mode = self.sampling_mode
        out._maps = maps
        out._faces_padded_src = None
        out._ids_padded_src = None
        out._set_lists(faces_list, verts_list, ids_list)
        return out

    def __len__(self) -> int:
        return self._maps.shape[0]

    def __repr__(self) -> str:
        maps = "x".join(str(s) for s in self._maps.shape[1:])
        return (
            f"TexturesUV(N={len(self)}, maps={maps}, multi_map={self._ids_list is not None}, "
            f"padding_mode={self.padding_mode!r}, align_corners={self.align_corners}, "
            f"sampling_mode={self.sampling_mode!r})"
        )

    @property
    def device(self) -> torch.device:
        return self._maps.device

    # ----------------------------------------------------------------- views

    def maps_padded(self) -> Tensor:
        """``(N, H, W, C)`` float, or ``(N, M, H, W, C)`` when built with ``maps_ids``."""
        return self._maps

    def maps_list(self) -> list[Tensor]:
        """``N`` tensors ``(H, W, C)`` (or ``(M, H, W, C)`` with ``maps_ids``) float."""
        return list(self._maps.unbind(0))

    def maps_ids_list(self) -> list[Tensor] | None:
        """``N`` tensors ``(F_n,)`` long, each face's map; None without ``maps_ids``."""
        return None if self._ids_list is None else list(self._ids_list)

    def maps_ids_padded(self) -> Tensor | None:
        """``(N, max(F_n))`` long padded with -1; None without ``maps_ids``."""
        if self._ids_list is None:
            return None
        return pad_rows(self._ids_list, -1, torch.long, self.device, ())

    def faces_uvs_list(self) -> list[Tensor]:
        """``N`` tensors ``(F_n, 3)`` long, indices into ``verts_uvs_list()[n]``."""
        return list(self._faces_list)

    def verts_uvs_list(self) -> list[Tensor]:
        """``N`` tensors ``(T_n, 2)`` float."""
        return list(self._verts_list)

    def faces_uvs_padded(self) -> Tensor:
        """``(N, max(F_n), 3)`` long, padded with -1."""
        return pad_rows(self._faces_list, -1, torch.long, self.device, (3,))

    def verts_uvs_padded(self) -> Tensor:
        """``(N, max(T_n), 2)`` float, zero-padded."""
        return pad_rows(self._verts_list, 0.0, self._verts_uvs_packed.dtype, self.device, (2,))

    def faces_uvs_packed(self) -> Tensor:
        """``(sum(F_n), 3)`` long, indices into ``verts_uvs_packed()``."""
        return self._faces_uvs_packed

    def verts_uvs_packed(self) -> Tensor:
        """``(sum(T_n), 2)`` float."""
        return self._verts_uvs_packed

    def faces_verts_uvs_packed(self) -> Tensor:
        """``(sum(F_n), 3, 2)`` float: the UV of each face corner."""
        return self._verts_uvs_packed[self._faces_uvs_packed]

    def faces_verts_textures_packed(self) -> Tensor:
        """``(sum(F_n), 3, C)`` float: the texture sampled at each face corner's UV."""
        uv = self.faces_verts_uvs_packed()
        return self._lookup(self._face_to_map.unsqueeze(1).expand(-1, 3), uv)

    # ----------------------------------------------------------------- sampling

    def _lookup(self, map_idx: Tensor, uv: Tensor) -> Tensor:
        maps = self._maps.reshape(-1, *self._maps.shape[-3:])  # (N * M, H, W, C)
        return sample_maps(
            maps,
            map_idx,
            uv,
            align_corners=self.align_corners,
            padding_mode=self.padding_mode,
            sampling_mode=self.sampling_mode,
        )

    def sample_at(
        self, face_idx: Tensor, bary: Tensor, faces_packed: Tensor | None = None
    ) -> Tensor:
        """Texture lookup at the barycentric-interpolated UV.

        ``uv = sum_k bary[..., k] * verts_uvs[faces_uvs[face_idx, k]]``, then the face's
        map (``maps[n]``, or ``maps[n, maps_ids[n, f]]``) is sampled at ``uv`` with this
        texture's ``sampling_mode``, ``padding_mode`` and ``align_corners``.

        Args:
            face_idx: ``(...)`` long, packed face indices, ``-1`` for none.
            bary: ``(..., 3)`` float.
            faces_packed: ``(sum(F_n), 3)`` long, the mesh's packed faces, or None (only
                its length is used, to check that the texture fits).

        Returns:
            ``(..., C)`` float, zeros where ``face_idx == -1``; differentiable with
            respect to ``maps``, and (bilinear mode) ``bary`` and ``verts_uvs``.
        """
        check_sample_args(face_idx, bary, "TexturesUV")
        num_faces = self._faces_uvs_packed.shape[0]
        if faces_packed is not None and faces_packed.shape[0] != num_faces:
            raise ValueError(
                f"TexturesUV.sample_at: faces_packed has {faces_packed.shape[0]} faces but "
                f"the texture has faces_uvs for {num_faces}"
            )
        c = self._maps.shape[-1]
        if num_faces == 0:
            return bary.new_zeros((*face_idx.shape, c))
        valid = face_idx >= 0
        f = face_idx.clamp(min=0).long()
        corner_uvs = gather_rows(self._verts_uvs_packed, gather_rows(self._faces_uvs_packed, f))
        uv = (bary.unsqueeze(-1) * corner_uvs).sum(dim=-2)  # (..., 2)
        out = self._lookup(gather_rows(self._face_to_map, f), uv)
        return torch.where(valid.unsqueeze(-1), out, 0.0)

    # ----------------------------------------------------------------- batch plumbing

    def _fit_to_meshes(self, num_verts: Sequence[int], num_faces: Sequence[int]) -> TexturesUV:
        mine = [f.shape[0] for f in self._faces_list]
        if list(num_faces) == mine:
            return self
        src = self._faces_padded_src
        ids_src = self._ids_padded_src
        fits = src is not None and all(nf <= src.shape[1] for nf in num_faces)
        if fits and self._ids_list is not None:
            fits = ids_src is not None and all(nf <= ids_src.shape[1] for nf in num_faces)
        if fits:
            faces = [src[i, :nf].long() for i, nf in enumerate(num_faces)]
            ids = None if ids_src is None else [ids_src[i, :nf] for i, nf in enumerate(num_faces)]
            return TexturesUV(
                self._maps,
                faces,
                self._verts_list,
                self.padding_mode,
                self.align_corners,
                self.sampling_mode,
                maps_ids=ids,
            )
        raise ValueError(
            f"Meshes: textures (TexturesUV) has faces_uvs for {mine} faces per mesh but the "
            f"meshes have {list(num_faces)}"
        )

    def _select(self, indices: list[int]) -> TexturesUV:
        idx = torch.tensor(indices, dtype=torch.long, device=self.device)
        ids = self._ids_list
        return self._from_parts(
            self._maps.index_select(0, idx),
            [self._faces_list[i] for i in indices],
            [self._verts_list[i] for i in indices],
            None if ids is None else [ids[i] for i in indices],
        )

    def _map(self, fn: Callable[[Tensor], Tensor]) -> TexturesUV:
        return self._from_parts(
            fn(self._maps),
            [fn(f) for f in self._faces_list],
            [fn(v) for v in self._verts_list],
            None if self._ids_list is None else [fn(i) for i in self._ids_list],
        )

    def _stacks(self) -> tuple[list[Tensor], list[Tensor]]:
        """Per mesh, its stack of maps ``(M, H, W, C)`` and its faces' map ids ``(F_n,)``
        (a single-map texture is a stack of one map with all ids 0)."""
        if self._ids_list is not None:
            return list(self._maps.unbind(0)), list(self._ids_list)
        return [m[None] for m in self._maps.unbind(0)], [
            torch.zeros(f.shape[0], dtype=torch.long, device=self.device) for f in self._faces_list
        ]

    def join_batch(self, others: Sequence[TexturesUV]) -> TexturesUV:
        """This batch followed by ``others``.

        Maps are resized to the largest if needed. If any texture has ``maps_ids`` the
        result has them too (a single-map texture becomes a stack of one map); the
        modes (``padding_mode``, ``align_corners``, ``sampling_mode``) must agree.
        """
        parts = [self, *others]
        for i, t in enumerate(parts[1:]):
            if not isinstance(t, TexturesUV):
                raise TypeError(
                    f"TexturesUV.join_batch: others[{i}] must be TexturesUV, got {type(t).__name__}"
                )
            for mode in ("padding_mode", "align_corners", "sampling_mode"):
                if getattr(t, mode) != getattr(self, mode):
                    raise ValueError(
                        f"TexturesUV.join_batch: others[{i}] has {mode}={getattr(t, mode)!r} "
                        f"but this texture has {getattr(self, mode)!r}"
                    )
        faces = [f for t in parts for f in t._faces_list]
        verts = [v for t in parts for v in t._verts_list]
        if all(t._ids_list is None for t in parts):
            all_maps = [m for t in parts for m in t._maps.unbind(0)]
            maps = maps_tensor(all_maps, False) if all_maps else self._maps
            return self._from_parts(maps, faces, verts, None)
        stacks = [t._stacks() for t in parts]
        all_maps = [m for s in stacks for m in s[0]]
        ids = [i for s in stacks for i in s[1]]
        maps = maps_tensor(all_maps, True) if all_maps else self._maps
        return self._from_parts(maps, faces, verts, ids)

    def join_scene(self) -> TexturesUV:
        """One texture for all meshes joined into one.

        With one map per mesh and ``padding_mode="border"``: the ``N`` maps side by side
        in an ``(H, N * W)`` atlas, UVs remapped so every interior sample is unchanged
        (samples within half a pixel of a map's left/right edge blend with the
        neighbouring map instead of clamping). Otherwise (``maps_ids``, or another
        padding mode): the maps of all meshes stacked into one ``(1, sum M, H, W, C)``
        multi-map texture, ``maps_ids`` offset to match, so every sample is unchanged.
        """
        if len(self) == 0:
            raise ValueError("TexturesUV.join_scene: the batch is empty")
        nt = [v.shape[0] for v in self._verts_list]
        offsets = [sum(nt[:i]) for i in range(len(nt))]
        faces = torch.cat([f + o for f, o in zip(self._faces_list, offsets, strict=True)], 0)
        if self._ids_list is not None or self.padding_mode != "border":
            stacks, ids = self._stacks()
            count = stacks[0].shape[0]
            joined_ids = torch.cat([i + k * count for k, i in enumerate(ids)])
            maps = torch.cat(stacks, 0)[None]
            return self._from_parts(maps, [faces], [torch.cat(self._verts_list)], [joined_ids])
        n, h, w, c = self._maps.shape
        atlas = self._maps.permute(1, 0, 2, 3).reshape(1, h, n * w, c)
        verts = []
        for i, v in enumerate(self._verts_list):
            if self.align_corners:
                u = (i * w + v[:, 0] * (w - 1)) / max(n * w - 1, 1)
            else:
                u = (i + v[:, 0]) / n
            verts.append(torch.stack([u, v[:, 1]], dim=1))
        return self._from_parts(atlas, [faces], [torch.cat(verts, 0)], None)
