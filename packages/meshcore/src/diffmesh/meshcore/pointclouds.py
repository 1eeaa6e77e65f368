"""The :class:`Pointclouds` batch structure (PyTorch3D's names, shapes and semantics).

As :class:`~diffmesh.meshcore.Meshes`, a Pointclouds stores packed tensors only (points
``(sum(P_i), 3)``, optional normals ``(sum(P_i), 3)`` and features ``(sum(P_i), C)``) and
an immutable layout (counts and index maps) shared by every cloud derived by moving
points; padded views are derived lazily and cached per autograd mode and tensor version.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from .geometry import bounding_boxes
from .pointcloud_packing import cloud_layout, pack_aux, pack_points
from .textures.base import normalize_index
from .topology import Topology
from .validation import describe

__all__ = ["Pointclouds", "join_pointclouds_as_batch"]


class Pointclouds:
    """A batch of ``N`` point clouds of possibly different sizes.

    Args:
        points: a list of ``N`` tensors ``(P_i, 3) float`` (``torch.tensor([])`` or
            ``(0, 3)`` for an empty cloud), or a padded ``(N, P, 3) float`` tensor (then
            every cloud has ``P`` points).
        normals: None, a list of ``N`` tensors ``(P_i, 3)`` (None allowed for an empty
            cloud), or a padded ``(N, max(P_i), 3)`` tensor.
        features: None, a list of ``N`` tensors ``(P_i, C)``, or a padded
            ``(N, max(P_i), C)`` tensor (e.g. RGB colours, ``C = 3``).

    Raises:
        TypeError: a wrong type or dtype, naming the argument and cloud.
        ValueError: a wrong shape, mismatched counts or devices, or a non-finite point.

    Padded views are zero-padded; the list views are copies (editing them in place does
    not change the clouds).
    """

    def __init__(
        self,
        points: Sequence[Tensor] | Tensor,
        normals: Sequence[Tensor | None] | Tensor | None = None,
        features: Sequence[Tensor | None] | Tensor | None = None,
    ) -> None:
        packed, layout = pack_points(points)
        normals_packed = pack_aux(normals, layout, packed.device, "normals", 3)
        features_packed = pack_aux(features, layout, packed.device, "features", None)
        self._setup(packed, normals_packed, features_packed, layout)

    def _setup(
        self, points: Tensor, normals: Tensor | None, features: Tensor | None, layout: Topology
    ) -> None:
        self._points = points
        self._normals = normals
        self._features = features
        self._layout = layout
        self._cache: dict[tuple[str, bool, bool], tuple[tuple[int, ...], object]] = {}

    @classmethod
    def _from_parts(
        cls, points: Tensor, normals: Tensor | None, features: Tensor | None, layout: Topology
    ) -> Pointclouds:
        out = cls.__new__(cls)
        out._setup(points, normals, features, layout)
        return out

    def _cached(self, name: str, compute: Callable[[], object]) -> object:
        """A derived value, cached per autograd mode and version of the stored tensors."""
        key = (name, torch.is_grad_enabled(), torch.is_inference_mode_enabled())
        versions = tuple(
            -1 if t is None else t._version for t in (self._points, self._normals, self._features)
        )
        hit = self._cache.get(key)
        if hit is not None and hit[0] == versions:
            return hit[1]
        value = compute()
        self._cache[key] = (versions, value)
        return value

    def _padded(self, name: str, packed: Tensor | None) -> Tensor | None:
        if packed is None:
            return None
        t = self._layout

        def compute() -> Tensor:
            flat = packed.new_zeros(t.num_meshes * t.max_verts, packed.shape[1])
            flat = flat.index_copy(0, t.verts_padded_index, packed)
            return flat.view(t.num_meshes, t.max_verts, packed.shape[1])

        return self._cached(name, compute)  # type: ignore[return-value]

    def _list(self, packed: Tensor | None) -> list[Tensor] | None:
        if packed is None:
            return None
        return list(torch.split(packed.clone(), list(self._layout.num_verts_list)))

    # ----------------------------------------------------------------- basics

    def __len__(self) -> int:
        return self._layout.num_meshes

    @property
    def device(self) -> torch.device:
        return self._points.device

    @property
    def dtype(self) -> torch.dtype:
        return self._points.dtype

    @property
    def valid(self) -> Tensor:
        """``(N,)`` bool: clouds with at least one point."""
        return self._layout.num_verts_per_mesh > 0

    @property
    def equisized(self) -> bool:
        """True if the batch is not empty and every cloud has the same number of points."""
        return len(set(self._layout.num_verts_list)) == 1

    def isempty(self) -> bool:
        """True if the batch has no clouds or no cloud has a point."""
        return self._points.shape[0] == 0

    # ----------------------------------------------------------------- views

    def points_packed(self) -> Tensor:
        """``(sum(P_i), 3)`` float: all points, cloud after cloud."""
        return self._points

    def normals_packed(self) -> Tensor | None:
        """``(sum(P_i), 3)`` float, or None without normals."""
        return self._normals

    def features_packed(self) -> Tensor | None:
        """``(sum(P_i), C)``, or None without features."""
        return self._features

    def points_padded(self) -> Tensor:
        """``(N, max(P_i), 3)`` float, zero-padded."""
        return self._padded("points_padded", self._points)  # type: ignore[return-value]

    def normals_padded(self) -> Tensor | None:
        """``(N, max(P_i), 3)`` float, zero-padded, or None."""
        return self._padded("normals_padded", self._normals)

    def features_padded(self) -> Tensor | None:
        """``(N, max(P_i), C)``, zero-padded, or None."""
        return self._padded("features_padded", self._features)

    def points_list(self) -> list[Tensor]:
        """``N`` tensors ``(P_i, 3)`` float (copies, differentiable)."""
        return self._list(self._points)  # type: ignore[return-value]

    def normals_list(self) -> list[Tensor] | None:
        """``N`` tensors ``(P_i, 3)`` float (copies), or None."""
        return self._list(self._normals)

    def features_list(self) -> list[Tensor] | None:
        """``N`` tensors ``(P_i, C)`` (copies), or None."""
        return self._list(self._features)

    def num_points_per_cloud(self) -> Tensor:
        """``(N,)`` long."""
        return self._layout.num_verts_per_mesh

    def cloud_to_packed_first_idx(self) -> Tensor:
        """``(N,)`` long: index in ``points_packed()`` of each cloud's first point."""
        return self._layout.mesh_to_verts_packed_first_idx

    def packed_to_cloud_idx(self) -> Tensor:
        """``(sum(P_i),)`` long: cloud index of each packed point."""
        return self._layout.verts_packed_to_mesh_idx

    def padded_to_packed_idx(self) -> Tensor:
        """``(sum(P_i),)`` long: row of each packed point in ``points_padded()`` viewed as
        ``(N * max(P_i), 3)``."""
        return self._layout.verts_padded_index

    def get_cloud(self, index: int) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """``(points (P_i, 3), normals (P_i, 3) or None, features (P_i, C) or None)`` of
        cloud ``index`` (copies)."""
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"Pointclouds.get_cloud: index must be an int, got {describe(index)}")
        if not -len(self) <= index < len(self):
            raise ValueError(
                f"Pointclouds.get_cloud: index {index} out of range for {len(self)} clouds"
            )
        parts = (self.points_list(), self.normals_list(), self.features_list())
        return tuple(None if p is None else p[index] for p in parts)  # type: ignore[return-value]

    def get_bounding_boxes(self) -> Tensor:
        """``(N, 3, 2)`` float: ``out[i, j] = (min, max)`` of coordinate ``j`` over cloud
        ``i``; zeros for an empty cloud (PyTorch3D raises there)."""
        t = self._layout
        return bounding_boxes(self._points, t.verts_packed_to_mesh_idx, t.num_meshes)

    def inside_box(self, box: Tensor) -> Tensor:
        """``(sum(P_i),)`` bool: packed points inside an axis-aligned box.

        Args:
            box: ``(2, 3)`` or ``(N, 2, 3)`` (or ``(1, 2, 3)``) float, ``box[..., 0, :]`` the
                minimum and ``box[..., 1, :]`` the maximum corner; boundaries are inside.
        """
        n = len(self)
        if not isinstance(box, Tensor) or box.dim() not in (2, 3) or box.shape[-2:] != (2, 3):
            raise ValueError(
                f"Pointclouds.inside_box: box must be (2, 3) or ({n}, 2, 3), got {describe(box)}"
            )
        box = box.reshape(-1, 2, 3)
        if box.shape[0] not in (1, n):
            raise ValueError(f"Pointclouds.inside_box: box has {box.shape[0]} boxes for {n} clouds")
        if bool((box[:, 0] > box[:, 1]).any()):
            raise ValueError("Pointclouds.inside_box: box has a minimum larger than its maximum")
        per_point = (
            box[0].expand(self._points.shape[0], 2, 3)
            if box.shape[0] == 1
            else (box.index_select(0, self.packed_to_cloud_idx()))
        )
        return ((self._points >= per_point[:, 0]) & (self._points <= per_point[:, 1])).all(-1)

    # ----------------------------------------------------------------- point updates

    def _check_offsets(self, offsets: Tensor, name: str) -> Tensor:
        if not isinstance(offsets, Tensor) or not offsets.is_floating_point():
            raise TypeError(
                f"Pointclouds.{name}: offsets_packed must be a float tensor, got {describe(offsets)}"
            )
        p = self._points.shape[0]
        if offsets.shape not in ((p, 3), (3,)):
            raise ValueError(
                f"Pointclouds.{name}: offsets_packed must have shape ({p}, 3) or (3,), "
                f"got {tuple(offsets.shape)}"
            )
        return offsets

    def _scaled(self, scale: float | Tensor, name: str) -> Tensor:
        if not isinstance(scale, Tensor):
            return self._points * float(scale)
        if scale.dim() == 0:
            return self._points * scale
        if scale.shape != (len(self),):
            raise ValueError(
                f"Pointclouds.{name}: scale must be a number or a tensor of shape () or "
                f"({len(self)},), got {tuple(scale.shape)}"
            )
        return (
            self._points * scale.to(self.dtype).index_select(0, self.packed_to_cloud_idx())[:, None]
        )

    def offset(self, offsets_packed: Tensor) -> Pointclouds:
        """New clouds with points ``points_packed() + offsets_packed`` (``(sum(P_i), 3)``
        or ``(3,)``); normals and features are shared, as is the layout."""
        offsets = self._check_offsets(offsets_packed, "offset")
        return Pointclouds._from_parts(
            self._points + offsets, self._normals, self._features, self._layout
        )

    def offset_(self, offsets_packed: Tensor) -> Pointclouds:
        """In-place :meth:`offset`; returns ``self``."""
        self._points = self._points + self._check_offsets(offsets_packed, "offset_")
        self._cache.clear()  # the new tensor's version may equal the old one's
        return self

    def scale(self, scale: float | Tensor) -> Pointclouds:
        """New clouds with each cloud's points times ``scale`` (a number or ``(N,)``)."""
        return Pointclouds._from_parts(
            self._scaled(scale, "scale"), self._normals, self._features, self._layout
        )

    def scale_(self, scale: float | Tensor) -> Pointclouds:
        """In-place :meth:`scale`; returns ``self``."""
        self._points = self._scaled(scale, "scale_")
        self._cache.clear()
        return self

    def update_padded(
        self,
        new_points_padded: Tensor,
        new_normals_padded: Tensor | None = None,
        new_features_padded: Tensor | None = None,
    ) -> Pointclouds:
        """New clouds with points (and optionally normals, features) taken from padded
        tensors of this batch's padded shape; values in the padding are ignored. What is
        not given is shared with this batch.

        Args:
            new_points_padded: ``(N, max(P_i), 3)`` float.
            new_normals_padded: ``(N, max(P_i), 3)`` float or None.
            new_features_padded: ``(N, max(P_i), C)`` or None (needs features here).
        """
        t = self._layout
        shape = (t.num_meshes, t.max_verts)
        if not isinstance(new_points_padded, Tensor) or not new_points_padded.is_floating_point():
            raise TypeError(
                f"Pointclouds.update_padded: new_points_padded must be a float tensor, got {describe(new_points_padded)}"
            )
        if new_points_padded.shape != (*shape, 3):
            raise ValueError(
                f"Pointclouds.update_padded: new_points_padded must have shape {(*shape, 3)}, got {tuple(new_points_padded.shape)}"
            )
        points = new_points_padded.reshape(-1, 3).index_select(0, t.verts_padded_index)
        normals, features = self._normals, self._features
        if new_normals_padded is not None:
            normals = pack_aux(new_normals_padded, t, self.device, "new_normals_padded", 3)
        if new_features_padded is not None:
            width = None if self._features is None else self._features.shape[1]
            if width is None:
                raise ValueError(
                    "Pointclouds.update_padded: new_features_padded given but these clouds have no features"
                )
            features = pack_aux(new_features_padded, t, self.device, "new_features_padded", width)
        return Pointclouds._from_parts(points, normals, features, t)

    # ----------------------------------------------------------------- batch ops

    def __getitem__(self, index: int | slice | Sequence[int] | Tensor) -> Pointclouds:
        """The clouds at ``index`` (int, slice, list of ints, long or bool tensor) as a new
        Pointclouds (an int gives a batch of one); gradients flow back to this batch."""
        indices = normalize_index(index, len(self), "Pointclouds")
        t = self._layout
        counts = t.num_verts_per_mesh.new_tensor([t.num_verts_list[i] for i in indices])
        layout = cloud_layout(counts)
        if indices:
            first = t.mesh_to_verts_packed_first_idx.index_select(
                0, t.num_verts_per_mesh.new_tensor(indices)
            )
            rows = torch.arange(layout.num_verts_total, device=self.device)
            rows = rows - layout.mesh_to_verts_packed_first_idx[layout.verts_packed_to_mesh_idx]
            rows = rows + first[layout.verts_packed_to_mesh_idx]
        else:
            rows = torch.zeros(0, dtype=torch.long, device=self.device)
        parts = [
            None if x is None else x.index_select(0, rows)
            for x in (self._points, self._normals, self._features)
        ]
        return Pointclouds._from_parts(parts[0], parts[1], parts[2], layout)  # type: ignore[arg-type]

    def split(self, split_sizes: Sequence[int]) -> list[Pointclouds]:
        """Consecutive sub-batches of ``split_sizes[k]`` clouds each (as ``torch.split``)."""
        if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in split_sizes):
            raise ValueError(
                f"Pointclouds.split: split_sizes must be ints >= 0, got {split_sizes!r}"
            )
        starts = [sum(split_sizes[:k]) for k in range(len(split_sizes))]
        return [self[s : s + size] for s, size in zip(starts, split_sizes, strict=True)]

    def extend(self, N: int) -> Pointclouds:
        """Each cloud repeated ``N`` times, in order ``0, 0, ..., 1, 1, ...``."""
        if isinstance(N, bool) or not isinstance(N, int) or N < 1:
            raise ValueError(f"Pointclouds.extend: N must be an int >= 1, got {N!r}")
        return self[[i for i in range(len(self)) for _ in range(N)]]

    def subsample(
        self, max_points: int | Sequence[int], generator: torch.Generator | None = None
    ) -> Pointclouds:
        """Clouds with at most ``max_points`` (one int, or one per cloud) points each,
        chosen uniformly without replacement; ``self`` if none has more."""
        n = len(self)
        limits = [max_points] * n if isinstance(max_points, int) else list(max_points)
        if len(limits) != n or not all(isinstance(m, int) and m >= 0 for m in limits):
            raise ValueError(
                f"Pointclouds.subsample: max_points must be an int >= 0 or {n} of them, got {max_points!r}"
            )
        counts = self._layout.num_verts_list
        if all(c <= m for c, m in zip(counts, limits, strict=True)):
            return self
        cloud = self.packed_to_cloud_idx()
        keys = torch.rand(self._points.shape[0], generator=generator, device=self.device)
        # Points sorted by (cloud, random key); a point's rank within its cloud is its
        # position in that order minus the cloud's first index. Keep ranks below the limit.
        order = torch.argsort(keys)
        order = order[torch.argsort(cloud[order], stable=True)]
        rank = torch.argsort(order) - self.cloud_to_packed_first_idx()[cloud]
        keep = torch.nonzero(rank < rank.new_tensor(limits)[cloud]).squeeze(1)
        layout = cloud_layout(torch.bincount(cloud[keep], minlength=n))
        parts = [
            None if x is None else x.index_select(0, keep)
            for x in (self._points, self._normals, self._features)
        ]
        return Pointclouds._from_parts(parts[0], parts[1], parts[2], layout)  # type: ignore[arg-type]

    def _map(self, fn: Callable[[Tensor], Tensor], layout: Topology) -> Pointclouds:
        parts = [
            None if x is None else fn(x) for x in (self._points, self._normals, self._features)
        ]
        return Pointclouds._from_parts(parts[0], parts[1], parts[2], layout)  # type: ignore[arg-type]

    def clone(self) -> Pointclouds:
        """A copy with cloned tensors; the immutable layout is shared."""
        return self._map(torch.clone, self._layout)

    def detach(self) -> Pointclouds:
        """A copy with detached tensors, sharing the layout."""
        return self._map(torch.Tensor.detach, self._layout)

    def to(self, device: torch.device | str, copy: bool = False) -> Pointclouds:
        """These clouds on ``device`` (``self`` if already there and not ``copy``)."""
        device = torch.device(device)
        if device.type != "cpu" and device.index is None and device.type == self.device.type:
            device = self.device
        if device == self.device:
            return self.clone() if copy else self
        return self._map(lambda x: x.to(device), self._layout.to(device))

    def cpu(self) -> Pointclouds:
        return self.to("cpu")

    def cuda(self, device: int | None = None) -> Pointclouds:
        return self.to("cuda" if device is None else f"cuda:{device}")

    def __repr__(self) -> str:
        c = None if self._features is None else self._features.shape[1]
        return (
            f"Pointclouds(N={len(self)}, points={self._points.shape[0]}, "
            f"normals={self._normals is not None}, features={c}, device={self.device})"
        )


def join_pointclouds_as_batch(pointclouds: Sequence[Pointclouds]) -> Pointclouds:
    """Concatenate several Pointclouds batches into one batch.

    Args:
        pointclouds: a list of Pointclouds on one device and dtype; either all or none
            have normals, and either all or none have features (of one width).

    Returns:
        A Pointclouds of ``sum(len(p))`` clouds, in order; differentiable.
    """
    name = "join_pointclouds_as_batch"
    if isinstance(pointclouds, Pointclouds) or not isinstance(pointclouds, (list, tuple)):
        raise TypeError(
            f"{name}: pointclouds must be a list of Pointclouds, got {describe(pointclouds)}"
        )
    if not pointclouds:
        raise ValueError(f"{name}: pointclouds is an empty list; give at least one Pointclouds")
    first = pointclouds[0]
    for i, p in enumerate(pointclouds):
        if not isinstance(p, Pointclouds):
            raise TypeError(f"{name}: pointclouds[{i}] must be a Pointclouds, got {describe(p)}")
        if p.device != first.device or p.dtype != first.dtype:
            raise ValueError(
                f"{name}: pointclouds[{i}] is {p.dtype} on {p.device} but pointclouds[0] is {first.dtype} on {first.device}"
            )
        for field in ("_normals", "_features"):
            mine, theirs = getattr(p, field), getattr(first, field)
            if (mine is None) != (theirs is None) or (
                mine is not None and mine.shape[1] != theirs.shape[1]
            ):
                raise ValueError(
                    f"{name}: pointclouds[{i}] and pointclouds[0] differ in {field[1:]} (all or none must have them, of one width)"
                )
    parts = []
    for field in ("_points", "_normals", "_features"):
        values = [getattr(p, field) for p in pointclouds]
        parts.append(None if values[0] is None else torch.cat(values, 0))
    layout = cloud_layout(torch.cat([p.num_points_per_cloud() for p in pointclouds]))
    return Pointclouds._from_parts(parts[0], parts[1], parts[2], layout)  # type: ignore[arg-type]
