"""UV-mapped texture images with bilinear sampling.

Conventions (PyTorch3D's): ``u`` runs left to right over the image columns and ``v``
from the *bottom* row (``v = 0``) to the top row (``v = 1``); maps are ``(N, H, W, C)``
with row 0 at the top. With ``align_corners=False`` (the default here) ``u = 0`` is the
left edge of the first pixel and pixel centres sit at ``(j + 0.5) / W``; with
``align_corners=True`` ``u = 0`` and ``u = 1`` are the centres of the first and last
pixels (PyTorch3D's own default). Outside the image the border pixels are repeated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..geometry import gather_rows
from ..topology import segment_ids
from .base import TexturesBase, _describe, check_sample_args

__all__ = ["TexturesUV", "sample_bilinear"]


def sample_bilinear(
    maps: Tensor, map_idx: Tensor, uv: Tensor, align_corners: bool = False
) -> Tensor:
    """Bilinear lookup of ``maps[map_idx]`` at ``uv`` with border clamping.

    Args:
        maps: ``(N, H, W, C)`` float, row 0 at the top.
        map_idx: ``(...)`` long, which map each point reads, in ``[0, N)``.
        uv: ``(..., 2)`` float, ``u`` left->right, ``v`` bottom->top.
        align_corners: see the module docstring.

    Returns:
        ``(..., C)`` float; differentiable with respect to ``maps`` and ``uv``.
    """
    n, h, w, c = maps.shape
    u, v = uv[..., 0], uv[..., 1]
    if align_corners:
        x = u * (w - 1)
        y = (1.0 - v) * (h - 1)
    else:
        x = u * w - 0.5
        y = (1.0 - v) * h - 0.5
    x0f, y0f = torch.floor(x.detach()), torch.floor(y.detach())
    wx = (x - x0f).unsqueeze(-1)
    wy = (y - y0f).unsqueeze(-1)
    x0 = x0f.long()
    y0 = y0f.long()
    xs = (x0.clamp(0, w - 1), (x0 + 1).clamp(0, w - 1))
    ys = (y0.clamp(0, h - 1), (y0 + 1).clamp(0, h - 1))
    flat = maps.reshape(n * h * w, c)
    base = map_idx.long() * (h * w)
    # One gather of the four taps: (..., 4, C) in the order (y0x0, y0x1, y1x0, y1x1).
    index = torch.stack(
        [
            base + ys[0] * w + xs[0],
            base + ys[0] * w + xs[1],
            base + ys[1] * w + xs[0],
            base + ys[1] * w + xs[1],
        ],
        dim=-1,
    )
    taps = gather_rows(flat, index)
    top = taps[..., 0, :] + (taps[..., 1, :] - taps[..., 0, :]) * wx
    bottom = taps[..., 2, :] + (taps[..., 3, :] - taps[..., 2, :]) * wx
    return top + (bottom - top) * wy


class TexturesUV(TexturesBase):
    """Texture images mapped onto a batch of ``N`` meshes by per-face-corner UVs.

    Args:
        maps: ``(N, H, W, C)`` float, or a list of ``N`` tensors ``(H_n, W_n, C)``
            (resized bilinearly to the largest ``H, W`` if they differ).
        faces_uvs: a list of ``N`` tensors ``(F_n, 3)`` integer, indices into the
            matching ``verts_uvs[n]``, or ``(N, F, 3)`` padded with all-``-1`` rows
            (a padded tensor larger than a mesh is trimmed to that mesh's face count
            when given to :class:`~diffmesh.meshcore.Meshes`).
        verts_uvs: a list of ``N`` tensors ``(T_n, 2)`` float, or ``(N, T, 2)``.
        align_corners: pixel-centre convention, see the module docstring.

    Raises:
        TypeError, ValueError: naming the argument and the texture index.
    """

    def __init__(
        self,
        maps: Tensor | Sequence[Tensor],
        faces_uvs: Tensor | Sequence[Tensor],
        verts_uvs: Tensor | Sequence[Tensor],
        *,
        align_corners: bool = False,
    ) -> None:
        self.align_corners = bool(align_corners)
        self._maps = _maps_tensor(maps)
        self._faces_padded_src = faces_uvs if isinstance(faces_uvs, Tensor) else None
        faces_list = _faces_uvs_list(faces_uvs)
        verts_list = _verts_uvs_list(verts_uvs)
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
        self._set_lists(faces_list, verts_list)

    def _set_lists(self, faces_list: list[Tensor], verts_list: list[Tensor]) -> None:
        device = self._maps.device
        self._faces_list = faces_list
        self._verts_list = verts_list
        nt = torch.tensor([v.shape[0] for v in verts_list], dtype=torch.long, device=device)
        nf = torch.tensor([f.shape[0] for f in faces_list], dtype=torch.long, device=device)
        self._face_to_map = segment_ids(nf, sum(f.shape[0] for f in faces_list))
        first_t = torch.cumsum(nt, 0) - nt
        self._verts_uvs_packed = (
            torch.cat(verts_list, 0) if verts_list else self._maps.new_zeros(0, 2)
        )
        faces = (
            torch.cat(faces_list, 0)
            if faces_list
            else torch.zeros(0, 3, dtype=torch.long, device=device)
        )
        self._faces_uvs_packed = faces + first_t[self._face_to_map].unsqueeze(1)

    @classmethod
    def _from_parts(
        cls, maps: Tensor, faces_list: list[Tensor], verts_list: list[Tensor], align_corners: bool
    ) -> TexturesUV:
        out = cls.__new__(cls)
        out.align_corners = align_corners
        out._maps = maps
        out._faces_padded_src = None
        out._set_lists(faces_list, verts_list)
        return out

    def __len__(self) -> int:
        return self._maps.shape[0]

    def __repr__(self) -> str:
        n, h, w, c = self._maps.shape
        return f"TexturesUV(N={n}, maps={h}x{w}x{c}, align_corners={self.align_corners})"

    @property
    def device(self) -> torch.device:
        return self._maps.device

    # ----------------------------------------------------------------- views

    def maps_padded(self) -> Tensor:
        """``(N, H, W, C)`` float."""
        return self._maps

    def maps_list(self) -> list[Tensor]:
        """``N`` tensors ``(H, W, C)`` float."""
        return list(self._maps.unbind(0))

    def faces_uvs_list(self) -> list[Tensor]:
        """``N`` tensors ``(F_n, 3)`` long, indices into ``verts_uvs_list()[n]``."""
        return list(self._faces_list)

    def verts_uvs_list(self) -> list[Tensor]:
        """``N`` tensors ``(T_n, 2)`` float."""
        return list(self._verts_list)

    def faces_uvs_padded(self) -> Tensor:
        """``(N, max(F_n), 3)`` long, padded with -1."""
        return _pad([f for f in self._faces_list], -1, torch.long, self.device, 3)

    def verts_uvs_padded(self) -> Tensor:
        """``(N, max(T_n), 2)`` float, zero-padded."""
        return _pad(self._verts_list, 0.0, self._verts_uvs_packed.dtype, self.device, 2)

    def faces_uvs_packed(self) -> Tensor:
        """``(sum(F_n), 3)`` long, indices into ``verts_uvs_packed()``."""
        return self._faces_uvs_packed

    def verts_uvs_packed(self) -> Tensor:
        """``(sum(T_n), 2)`` float."""
        return self._verts_uvs_packed

    def faces_verts_uvs_packed(self) -> Tensor:
        """``(sum(F_n), 3, 2)`` float: the UV of each face corner."""
        return self._verts_uvs_packed[self._faces_uvs_packed]

    # ----------------------------------------------------------------- sampling

    def sample_at(self, face_idx: Tensor, bary: Tensor, faces_packed: Tensor) -> Tensor:
        """Bilinear texture lookup at the barycentric-interpolated UV.

        ``uv = sum_k bary[..., k] * verts_uvs[faces_uvs[face_idx, k]]``, then
        ``maps[mesh of face_idx]`` is sampled bilinearly at ``uv``.

        Args:
            face_idx: ``(...)`` long, packed face indices, ``-1`` for none.
            bary: ``(..., 3)`` float.
            faces_packed: ``(sum(F_n), 3)`` long, the mesh's packed faces (only its
                length is used, to check that the texture fits).

        Returns:
            ``(..., C)`` float, zeros where ``face_idx == -1``; differentiable with
            respect to ``bary``, ``verts_uvs`` and ``maps``.
        """
        check_sample_args(face_idx, bary, "TexturesUV")
        num_faces = self._faces_uvs_packed.shape[0]
        if faces_packed.shape[0] != num_faces:
            raise ValueError(
                f"TexturesUV.sample_at: faces_packed has {faces_packed.shape[0]} faces but "
                f"the texture has faces_uvs for {num_faces}"
            )
        c = self._maps.shape[3]
        if num_faces == 0:
            return bary.new_zeros((*face_idx.shape, c))
        valid = face_idx >= 0
        f = face_idx.clamp(min=0).long()
        corner_uvs = gather_rows(self._verts_uvs_packed, gather_rows(self._faces_uvs_packed, f))
        uv = (bary.unsqueeze(-1) * corner_uvs).sum(dim=-2)  # (..., 2)
        out = sample_bilinear(self._maps, gather_rows(self._face_to_map, f), uv, self.align_corners)
        return torch.where(valid.unsqueeze(-1), out, 0.0)

    # ----------------------------------------------------------------- batch plumbing

    def _fit_to_meshes(self, num_verts: Sequence[int], num_faces: Sequence[int]) -> TexturesUV:
        mine = [f.shape[0] for f in self._faces_list]
        if list(num_faces) == mine:
            return self
        src = self._faces_padded_src
        if src is not None and all(nf <= src.shape[1] for nf in num_faces):
            faces = [src[i, :nf].long() for i, nf in enumerate(num_faces)]
            return TexturesUV(self._maps, faces, self._verts_list, align_corners=self.align_corners)
        raise ValueError(
            f"Meshes: textures (TexturesUV) has faces_uvs for {mine} faces per mesh but the "
            f"meshes have {list(num_faces)}"
        )

    def _select(self, indices: list[int]) -> TexturesUV:
        idx = torch.tensor(indices, dtype=torch.long, device=self.device)
        return TexturesUV._from_parts(
            self._maps.index_select(0, idx),
            [self._faces_list[i] for i in indices],
            [self._verts_list[i] for i in indices],
            self.align_corners,
        )

    def _map(self, fn: Callable[[Tensor], Tensor]) -> TexturesUV:
        return TexturesUV._from_parts(
            fn(self._maps),
            [fn(f) for f in self._faces_list],
            [fn(v) for v in self._verts_list],
            self.align_corners,
        )

    def join_batch(self, others: Sequence[TexturesUV]) -> TexturesUV:
        """This batch followed by ``others`` (maps resized to the largest if needed)."""
        parts = [self, *others]
        for i, t in enumerate(parts[1:]):
            if not isinstance(t, TexturesUV):
                raise TypeError(
                    f"TexturesUV.join_batch: others[{i}] must be TexturesUV, got {type(t).__name__}"
                )
            if t.align_corners != self.align_corners:
                raise ValueError(
                    f"TexturesUV.join_batch: others[{i}] has align_corners={t.align_corners} "
                    f"but this texture has {self.align_corners}"
                )
        all_maps = [m for t in parts for m in t._maps.unbind(0)]
        maps = _maps_tensor(all_maps) if all_maps else self._maps
        return TexturesUV._from_parts(
            maps,
            [f for t in parts for f in t._faces_list],
            [v for t in parts for v in t._verts_list],
            self.align_corners,
        )

    def join_scene(self) -> TexturesUV:
        """One texture for all meshes joined into one: the ``N`` maps side by side in
        an ``(H, N * W)`` atlas, UVs remapped so every interior sample is unchanged
        (samples within half a pixel of a map's left/right edge blend with the
        neighbouring map instead of clamping)."""
        n, h, w, c = self._maps.shape
        if n == 0:
            raise ValueError("TexturesUV.join_scene: the batch is empty")
        atlas = self._maps.permute(1, 0, 2, 3).reshape(1, h, n * w, c)
        verts = []
        for i, v in enumerate(self._verts_list):
            if self.align_corners:
                u = (i * w + v[:, 0] * (w - 1)) / max(n * w - 1, 1)
            else:
                u = (i + v[:, 0]) / n
            verts.append(torch.stack([u, v[:, 1]], dim=1))
        nt = [v.shape[0] for v in self._verts_list]
        offsets = [sum(nt[:i]) for i in range(n)]
        faces = torch.cat([f + o for f, o in zip(self._faces_list, offsets, strict=True)], 0)
        return TexturesUV._from_parts(atlas, [faces], [torch.cat(verts, 0)], self.align_corners)


# --------------------------------------------------------------------- input normalization


def _maps_tensor(maps: Tensor | Sequence[Tensor]) -> Tensor:
    if isinstance(maps, Tensor):
        if not maps.is_floating_point():
            raise TypeError(f"TexturesUV: maps must be a float tensor, got {_describe(maps)}")
        if maps.dim() != 4 or maps.shape[1] == 0 or maps.shape[2] == 0:
            raise ValueError(
                f"TexturesUV: maps must have shape (N, H, W, C) with H, W >= 1, "
                f"got {tuple(maps.shape)}"
            )
        return maps
    if not isinstance(maps, (list, tuple)):
        raise TypeError(
            f"TexturesUV: maps must be an (N, H, W, C) tensor or a list of (H, W, C) tensors, "
            f"got {_describe(maps)}"
        )
    for i, m in enumerate(maps):
        if not isinstance(m, Tensor) or not m.is_floating_point():
            raise TypeError(f"TexturesUV: maps[{i}] must be a float tensor, got {_describe(m)}")
        if m.dim() != 3 or m.shape[0] == 0 or m.shape[1] == 0:
            raise ValueError(
                f"TexturesUV: maps[{i}] must have shape (H, W, C), got {tuple(m.shape)}"
            )
        if m.shape[2] != maps[0].shape[2] or m.device != maps[0].device:
            raise ValueError(
                f"TexturesUV: maps[{i}] is {_describe(m)} on {m.device} but maps[0] is "
                f"{_describe(maps[0])} on {maps[0].device}; channels and device must match"
            )
    if not maps:
        raise ValueError("TexturesUV: maps is an empty list; give at least one map")
    h = max(m.shape[0] for m in maps)
    w = max(m.shape[1] for m in maps)
    dtype = maps[0].dtype
    resized = [
        m.to(dtype)
        if m.shape[:2] == (h, w)
        else F.interpolate(
            m.to(dtype).permute(2, 0, 1)[None], size=(h, w), mode="bilinear", align_corners=False
        )[0].permute(1, 2, 0)
        for m in maps
    ]
    return torch.stack(resized, 0)


def _faces_uvs_list(faces_uvs: Tensor | Sequence[Tensor]) -> list[Tensor]:
    ints = (torch.int32, torch.int64)
    if isinstance(faces_uvs, Tensor):
        if faces_uvs.dtype not in ints:
            raise TypeError(
                f"TexturesUV: faces_uvs must be a long tensor, got {_describe(faces_uvs)}"
            )
        if faces_uvs.dim() != 3 or faces_uvs.shape[2] != 3:
            raise ValueError(
                f"TexturesUV: faces_uvs must have shape (N, F, 3), got {tuple(faces_uvs.shape)}"
            )
        keep = ~(faces_uvs == -1).all(dim=2)
        counts = keep.sum(dim=1).tolist()
        return [faces_uvs[i, :c].long() for i, c in enumerate(counts)]
    if not isinstance(faces_uvs, (list, tuple)):
        raise TypeError(
            f"TexturesUV: faces_uvs must be a tensor or a list, got {_describe(faces_uvs)}"
        )
    out = []
    for i, f in enumerate(faces_uvs):
        if not isinstance(f, Tensor) or f.dtype not in ints:
            raise TypeError(f"TexturesUV: faces_uvs[{i}] must be a long tensor, got {_describe(f)}")
        if f.dim() != 2 or f.shape[1] != 3:
            raise ValueError(
                f"TexturesUV: faces_uvs[{i}] must have shape (F, 3), got {tuple(f.shape)}"
            )
        out.append(f.long())
    return out


def _verts_uvs_list(verts_uvs: Tensor | Sequence[Tensor]) -> list[Tensor]:
    if isinstance(verts_uvs, Tensor):
        if not verts_uvs.is_floating_point():
            raise TypeError(
                f"TexturesUV: verts_uvs must be a float tensor, got {_describe(verts_uvs)}"
            )
        if verts_uvs.dim() != 3 or verts_uvs.shape[2] != 2:
            raise ValueError(
                f"TexturesUV: verts_uvs must have shape (N, T, 2), got {tuple(verts_uvs.shape)}"
            )
        return list(verts_uvs.unbind(0))
    if not isinstance(verts_uvs, (list, tuple)):
        raise TypeError(
            f"TexturesUV: verts_uvs must be a tensor or a list, got {_describe(verts_uvs)}"
        )
    for i, v in enumerate(verts_uvs):
        if not isinstance(v, Tensor) or not v.is_floating_point():
            raise TypeError(
                f"TexturesUV: verts_uvs[{i}] must be a float tensor, got {_describe(v)}"
            )
        if v.dim() != 2 or v.shape[1] != 2:
            raise ValueError(
                f"TexturesUV: verts_uvs[{i}] must have shape (T, 2), got {tuple(v.shape)}"
            )
    return list(verts_uvs)


def _pad(
    items: list[Tensor], fill: float, dtype: torch.dtype, device: torch.device, cols: int
) -> Tensor:
    rows = max((t.shape[0] for t in items), default=0)
    out = torch.full((len(items), rows, cols), fill, dtype=dtype, device=device)
    for i, t in enumerate(items):  # one copy per mesh, not per element
        out[i, : t.shape[0]] = t
    return out
