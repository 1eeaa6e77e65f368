"""Vertex-derived geometry of a :class:`~diffmesh.meshcore.Meshes`: face areas and normals,
vertex normals (computed, or given at construction), bounding boxes, the uniform Laplacian.

:class:`MeshesGeometry` is the base class of ``Meshes`` holding these methods; it reads
the packed vertices, the shared Topology and the vertex-keyed cache of ``Meshes``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from .geometry import (
    bounding_boxes,
    safe_norm,
    safe_normalize,
    unnormalized_face_normals,
    vertex_normals_from_face_normals,
)
from .ops import laplacian
from .topology import Topology
from .validation import describe

__all__ = ["MeshesGeometry", "pack_verts_normals"]


def pack_verts_normals(
    verts_normals: Sequence[Tensor] | Tensor, topology: Topology, verts_packed: Tensor
) -> Tensor:
    """Check given vertex normals and return them packed, ``(sum(V_n), 3)``.

    Args:
        verts_normals: a list of ``N`` tensors ``(V_n, 3)`` float, or a padded
            ``(N, max(V_n), 3)`` float tensor (padding ignored).
    """
    t = topology
    if isinstance(verts_normals, Tensor):
        expected = (t.num_meshes, t.max_verts, 3)
        if not verts_normals.is_floating_point() or tuple(verts_normals.shape) != expected:
            raise ValueError(
                f"Meshes: verts_normals must be a float tensor of shape {expected} or a list, "
                f"got {describe(verts_normals)}"
            )
        packed = verts_normals.reshape(-1, 3).index_select(0, t.verts_padded_index)
    elif isinstance(verts_normals, (list, tuple)):
        if len(verts_normals) != t.num_meshes:
            raise ValueError(
                f"Meshes: verts_normals has {len(verts_normals)} entries but there are "
                f"{t.num_meshes} meshes"
            )
        for i, (nrm, nv) in enumerate(zip(verts_normals, t.num_verts_list, strict=True)):
            if nv == 0 and isinstance(nrm, Tensor) and nrm.numel() == 0:
                continue
            if not isinstance(nrm, Tensor) or not nrm.is_floating_point():
                raise TypeError(
                    f"Meshes: verts_normals[{i}] must be a float tensor, got {describe(nrm)}"
                )
            if tuple(nrm.shape) != (nv, 3):
                raise ValueError(
                    f"Meshes: verts_normals[{i}] must have shape ({nv}, 3), got {describe(nrm)}"
                )
        parts = [n.reshape(-1, 3) for n in verts_normals]
        packed = torch.cat(parts, 0) if parts else verts_packed.new_zeros(0, 3)
    else:
        raise TypeError(
            f"Meshes: verts_normals must be None, a list of tensors or a padded tensor, "
            f"got {describe(verts_normals)}"
        )
    if packed.device != verts_packed.device:
        raise ValueError(
            f"Meshes: verts_normals are on {packed.device} but verts on {verts_packed.device}"
        )
    if not bool(torch.isfinite(packed).all()):
        raise ValueError("Meshes: verts_normals has non-finite (NaN or inf) values")
    return packed.to(verts_packed.dtype)


class MeshesGeometry:
    """Geometry methods of :class:`~diffmesh.meshcore.Meshes` (see there)."""

    _verts_packed: Tensor
    _verts_normals: Tensor | None
    _topology: Topology
    _cache: dict[tuple[str, bool, bool], tuple[int, object]]
    _cached: Callable[[str, Callable[[], object]], object]  # Meshes' vertex-keyed cache

    def _raw_face_normals(self) -> Tensor:
        """``(sum(F_n), 3)``: ``(v1 - v0) x (v2 - v0)``, shared by areas and normals."""
        return self._cached(  # type: ignore[return-value]
            "raw_face_normals",
            lambda: unnormalized_face_normals(self._verts_packed, self._topology.faces_packed),
        )

    def faces_areas_packed(self) -> Tensor:
        """``(sum(F_n),)`` float: triangle areas; finite gradients for degenerate faces."""
        return self._cached(  # type: ignore[return-value]
            "faces_areas", lambda: 0.5 * safe_norm(self._raw_face_normals())
        )

    def faces_normals_packed(self) -> Tensor:
        """``(sum(F_n), 3)`` float: unit normals ``(v1 - v0) x (v2 - v0)`` normalized,
        zero (never NaN) for zero-area faces."""
        return self._cached(  # type: ignore[return-value]
            "faces_normals", lambda: safe_normalize(self._raw_face_normals())
        )

    def has_verts_normals(self) -> bool:
        """True if vertex normals were given at construction or are already computed for
        the current vertices (as PyTorch3D: "already present")."""
        if self._verts_normals is not None:
            return True
        version = self._verts_packed._version
        return any(
            key[0] == "verts_normals" and hit[0] == version for key, hit in self._cache.items()
        )

    def verts_normals_packed(self) -> Tensor:
        """``(sum(V_n), 3)`` float: the normals given at construction (``verts_normals=``),
        else area-weighted vertex normals, unit; zero for vertices on no face."""
        if self._verts_normals is not None:
            return self._verts_normals
        return self._cached(  # type: ignore[return-value]
            "verts_normals",
            lambda: vertex_normals_from_face_normals(
                self._raw_face_normals(),
                self._topology.faces_packed,
                self._topology.num_verts_total,
            ),
        )

    def faces_normals_padded(self) -> Tensor:
        """``(N, max(F_n), 3)`` float, zero-padded."""
        return self._faces_padded_values(self.faces_normals_packed())

    def faces_areas_padded(self) -> Tensor:
        """``(N, max(F_n))`` float, zero-padded."""
        return self._faces_padded_values(self.faces_areas_packed().unsqueeze(1)).squeeze(2)

    def verts_normals_padded(self) -> Tensor:
        """``(N, max(V_n), 3)`` float, zero-padded."""
        t = self._topology
        flat = self.verts_normals_packed().new_zeros(t.num_meshes * t.max_verts, 3)
        flat = flat.index_copy(0, t.verts_padded_index, self.verts_normals_packed())
        return flat.view(t.num_meshes, t.max_verts, 3)

    def verts_normals_list(self) -> list[Tensor]:
        """``N`` tensors ``(V_n, 3)`` float."""
        return list(torch.split(self.verts_normals_packed(), list(self._topology.num_verts_list)))

    def faces_normals_list(self) -> list[Tensor]:
        """``N`` tensors ``(F_n, 3)`` float."""
        return list(torch.split(self.faces_normals_packed(), list(self._topology.num_faces_list)))

    def _faces_padded_values(self, packed: Tensor) -> Tensor:
        t = self._topology
        flat = packed.new_zeros(t.num_meshes * t.max_faces, packed.shape[1])
        flat = flat.index_copy(0, t.faces_padded_index, packed)
        return flat.view(t.num_meshes, t.max_faces, packed.shape[1])

    def get_bounding_boxes(self) -> Tensor:
        """``(N, 3, 2)`` float: ``out[n, j] = (min, max)`` of coordinate ``j`` over the
        vertices of mesh ``n``; zeros for a mesh with no vertex (PyTorch3D raises there).
        Differentiable."""
        t = self._topology
        return bounding_boxes(self._verts_packed, t.verts_packed_to_mesh_idx, t.num_meshes)

    def laplacian_packed(self) -> Tensor:
        """``(sum(V_n), sum(V_n))`` sparse COO: the uniform Laplacian of the edge graph,
        ``L[i, i] = -1``, ``L[i, j] = 1 / deg(i)`` for an edge (see
        :func:`~diffmesh.meshcore.laplacian`). Depends on the faces only: computed once
        per Topology and dtype and shared (do not modify it in place)."""
        t, dtype = self._topology, self._verts_packed.dtype

        def compute() -> Tensor:
            anchor = torch.zeros(t.num_verts_total, 3, dtype=dtype, device=t.device)
            return laplacian(anchor, t.edges.edges_packed)

        return t.derived(("laplacian_packed", dtype), compute)
