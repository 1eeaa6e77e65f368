"""Face-derived structure of a batch of meshes, built once and shared.

A :class:`Topology` depends only on the packed faces and the per-mesh vertex and face
counts. Every :class:`~diffmesh.meshcore.Meshes` made from another one by moving its
vertices (``offset_verts``, ``update_padded``, ``scale_verts``, ``detach``, ``clone``)
holds the *same* Topology object, so edges and the face->edge map are computed at most
once per set of faces, however many iterations a fitting loop runs.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from functools import cached_property
from typing import NamedTuple, TypeVar

import torch
from torch import Tensor

__all__ = ["EdgeData", "Topology"]

T = TypeVar("T")


class EdgeData(NamedTuple):
    """Unique undirected edges of a packed batch of meshes.

    Attributes:
        edges_packed: ``(E, 2)`` long. Unique edges as vertex indices into
            ``verts_packed``, each row sorted (``e[:, 0] < e[:, 1]``), rows sorted
            lexicographically, hence grouped by mesh.
        faces_packed_to_edges_packed: ``(sum(F_n), 3)`` long. Column ``k`` is the index
            in ``edges_packed`` of the edge opposite vertex ``k`` of the face, i.e. of
            the edges ``(v1, v2)``, ``(v2, v0)``, ``(v0, v1)``.
        edges_packed_to_mesh_idx: ``(E,)`` long. Mesh index of each edge.
        num_edges_per_mesh: ``(N,)`` long.
        mesh_to_edges_packed_first_idx: ``(N,)`` long. Index of each mesh's first edge.
    """

    edges_packed: Tensor
    faces_packed_to_edges_packed: Tensor
    edges_packed_to_mesh_idx: Tensor
    num_edges_per_mesh: Tensor
    mesh_to_edges_packed_first_idx: Tensor


def _first_idx(counts: Tensor) -> Tensor:
    return torch.cumsum(counts, 0) - counts


def segment_ids(counts: Tensor, total: int) -> Tensor:
    """``(total,)`` long: ``i`` repeated ``counts[i]`` times, ``total = sum(counts)``.

    Same as ``torch.repeat_interleave(counts)``, which takes ~20 ms per call on a
    busy CPU in torch 2.x (thread-pool start-up); ``searchsorted`` takes ~15 us.
    """
    ends = torch.cumsum(counts, 0)
    return torch.searchsorted(ends, torch.arange(total, device=counts.device), right=True)


class Topology:
    """Immutable face-derived data of a batch of ``N`` meshes.

    The counts and packed->mesh maps are computed on construction; edges, the list and
    padded views of the faces and the packed->padded vertex index are computed lazily,
    once, on first use. Tensors held here must never be modified in place.

    Args:
        faces_packed: ``(sum(F_n), 3)`` long. Faces as indices into the packed
            vertices (already offset by each mesh's first vertex index).
        num_verts_per_mesh: ``(N,)`` long.
        num_faces_per_mesh: ``(N,)`` long.
    """

    def __init__(
        self, faces_packed: Tensor, num_verts_per_mesh: Tensor, num_faces_per_mesh: Tensor
    ) -> None:
        self.faces_packed = faces_packed
        self.num_verts_per_mesh = num_verts_per_mesh
        self.num_faces_per_mesh = num_faces_per_mesh
        self.num_verts_list: tuple[int, ...] = tuple(int(v) for v in num_verts_per_mesh.tolist())
        self.num_faces_list: tuple[int, ...] = tuple(int(f) for f in num_faces_per_mesh.tolist())
        self.num_meshes = len(self.num_verts_list)
        self.max_verts = max(self.num_verts_list, default=0)
        self.max_faces = max(self.num_faces_list, default=0)
        self.num_verts_total = sum(self.num_verts_list)
        self.mesh_to_verts_packed_first_idx = _first_idx(num_verts_per_mesh)
        self.mesh_to_faces_packed_first_idx = _first_idx(num_faces_per_mesh)
        self.verts_packed_to_mesh_idx = segment_ids(num_verts_per_mesh, self.num_verts_total)
        self.faces_packed_to_mesh_idx = segment_ids(num_faces_per_mesh, sum(self.num_faces_list))

    @property
    def device(self) -> torch.device:
        return self.faces_packed.device

    def derived(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``, computed once per ``key`` for this Topology and then reused.

        For face-only data other packages derive (Laplacian indices, face pairs across
        edges, per-element weights): every Meshes sharing this Topology shares it.
        ``compute`` must depend on nothing but this Topology (and the key), and its
        result must not be modified in place. Not carried over by :meth:`to`.
        """
        store: dict[Hashable, object] = self.__dict__.setdefault("_derived", {})
        if key not in store:
            store[key] = compute()
        return store[key]  # type: ignore[return-value]

    def to(self, device: torch.device | str) -> Topology:
        """A Topology on ``device`` (``self`` if already there); lazy data computed
        here is moved along rather than recomputed."""
        device = torch.device(device)
        if self.device == device:
            return self
        out = Topology(
            self.faces_packed.to(device),
            self.num_verts_per_mesh.to(device),
            self.num_faces_per_mesh.to(device),
        )
        for name in ("edges", "faces_padded", "verts_padded_index", "faces_list"):
            if name in self.__dict__:
                value = self.__dict__[name]
                if isinstance(value, EdgeData):
                    value = EdgeData(*(t.to(device) for t in value))
                elif isinstance(value, tuple):
                    value = tuple(t.to(device) for t in value)
                else:
                    value = value.to(device)
                out.__dict__[name] = value
        return out

    @cached_property
    def faces_list(self) -> tuple[Tensor, ...]:
        """Per-mesh ``(F_n, 3)`` long faces, indices local to each mesh."""
        local = self.faces_packed - self.mesh_to_verts_packed_first_idx[
            self.faces_packed_to_mesh_idx
        ].unsqueeze(1)
        return tuple(torch.split(local, list(self.num_faces_list)))

    @cached_property
    def verts_padded_index(self) -> Tensor:
        """``(sum(V_n),)`` long: row of each packed vertex in ``verts_padded`` viewed
        as ``(N * max_verts, 3)``."""
        idx = self.verts_packed_to_mesh_idx
        local = (
            torch.arange(self.num_verts_total, device=self.device)
            - (self.mesh_to_verts_packed_first_idx[idx])
        )
        return idx * self.max_verts + local

    @cached_property
    def faces_padded_index(self) -> Tensor:
        """``(sum(F_n),)`` long: row of each packed face in ``faces_padded`` viewed as
        ``(N * max_faces, 3)``."""
        idx = self.faces_packed_to_mesh_idx
        local = (
            torch.arange(idx.shape[0], device=self.device)
            - (self.mesh_to_faces_packed_first_idx[idx])
        )
        return idx * self.max_faces + local

    @cached_property
    def faces_padded(self) -> Tensor:
        """``(N, max_faces, 3)`` long faces with local indices, padded with -1."""
        local = self.faces_packed - self.mesh_to_verts_packed_first_idx[
            self.faces_packed_to_mesh_idx
        ].unsqueeze(1)
        out = torch.full(
            (self.num_meshes * self.max_faces, 3), -1, dtype=torch.long, device=self.device
        )
        out[self.faces_padded_index] = local
        return out.view(self.num_meshes, self.max_faces, 3)

    @cached_property
    def edges(self) -> EdgeData:
        """Unique undirected edges and the face->edge map (see :class:`EdgeData`)."""
        f = self.faces_packed
        num_faces = f.shape[0]
        # Edge k of a face is the one opposite its vertex k: (v[k+1], v[k+2]).
        a, b = f.roll(-1, dims=1), f.roll(-2, dims=1)
        base = max(self.num_verts_total, 1)
        keys = torch.minimum(a, b) * base + torch.maximum(a, b)  # (F, 3)
        # Row k * F + i of the flattened transpose is edge k of face i.
        unique_keys, inverse = torch.unique(keys.t().reshape(-1), sorted=True, return_inverse=True)
        edges = torch.stack([unique_keys // base, unique_keys % base], dim=1)
        face_to_edge = inverse.view(3, num_faces).t().contiguous()
        edge_to_mesh = self.verts_packed_to_mesh_idx[edges[:, 0]]
        num_edges = torch.bincount(edge_to_mesh, minlength=self.num_meshes)
        return EdgeData(edges, face_to_edge, edge_to_mesh, num_edges, _first_idx(num_edges))
