"""The :class:`Meshes` batch structure (PyTorch3D's names, shapes and semantics).

A Meshes holds two things:

- the packed vertices ``(sum(V_n), 3)``, the only vertex storage; list and padded views,
  areas and normals are derived from it lazily and cached, keyed on the autograd mode
  and the tensor's version, so a view first computed under ``torch.no_grad()`` is never
  handed out later when gradients are wanted;
- an immutable :class:`~diffmesh.meshcore.topology.Topology` (packed faces, counts,
  edges, face->edge map), shared by every Meshes derived from this one by moving
  vertices.

Geometry derived from the vertices (areas, normals, bounding boxes, the Laplacian) lives
in :mod:`.meshes_geometry`, the base class of :class:`Meshes`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from .meshes_geometry import MeshesGeometry, pack_verts_normals
from .packing import pack_checked_lists, pack_lists, pack_padded
from .submeshes import select_submeshes
from .textures.base import TexturesBase, normalize_index
from .topology import Topology
from .validation import check_finite_verts, describe

__all__ = ["Meshes"]


class Meshes(MeshesGeometry):
    """A batch of ``N`` triangle meshes of possibly different sizes.

    Args:
        verts: either a list of ``N`` tensors ``(V_n, 3) float``, or a padded tensor
            ``(N, V, 3) float`` (then every mesh has ``V`` vertices, as in PyTorch3D).
            An empty mesh may be given as ``torch.tensor([])`` (shape ``(0,)``).
        faces: either a list of ``N`` tensors ``(F_n, 3)`` integer (int32 is converted to
            long) with indices into the matching ``verts[n]``, or a padded tensor
            ``(N, F, 3)`` whose padding rows are all ``-1`` and come last. No faces may be
            given as ``torch.tensor([])`` (any dtype: it holds no value).
        textures: ``None``, a :class:`~diffmesh.meshcore.TexturesVertex`,
            :class:`~diffmesh.meshcore.TexturesUV` or
            :class:`~diffmesh.meshcore.TexturesAtlas` of batch size ``N``.
        verts_normals: keyword-only; ``None``, a list of ``N`` tensors ``(V_n, 3)`` float or
            a padded ``(N, max(V_n), 3)`` float tensor: vertex normals returned by
            ``verts_normals_packed()`` (and the list / padded views) instead of computed
            ones. Kept by ``offset_verts`` with a ``(3,)`` offset, ``scale_verts``,
            ``__getitem__``, ``extend``, ``clone``, ``detach``, ``to``; dropped (normals
            are then computed) by per-vertex ``offset_verts`` and by ``update_padded``.

    Raises:
        TypeError: a wrong type or dtype, naming the argument and mesh index.
        ValueError: a wrong shape, mismatched batch sizes, a face index outside
            ``[0, V_n)`` or a non-finite vertex, naming the argument and mesh index.

    Empty meshes (0 vertices and/or 0 faces) are legal anywhere in the batch.

    Derived values (padded vertices, areas, normals) are cached per autograd mode, as in
    PyTorch3D: backpropagating twice through the same cached value needs
    ``retain_graph=True`` on the first ``backward``, or a fresh Meshes per pass
    (``offset_verts`` is cheap: it shares the topology).
    """

    def __init__(
        self,
        verts: Sequence[Tensor] | Tensor,
        faces: Sequence[Tensor] | Tensor,
        textures: TexturesBase | None = None,
        *,
        verts_normals: Sequence[Tensor] | Tensor | None = None,
    ) -> None:
        if isinstance(verts, Tensor) and isinstance(faces, Tensor):
            verts_packed, topology = pack_padded(verts, faces)
        elif isinstance(verts, (list, tuple)) and isinstance(faces, (list, tuple)):
            verts_packed, topology = pack_lists(verts, faces)
        else:
            raise TypeError(
                "Meshes: verts and faces must both be lists of tensors or both padded tensors, "
                f"got verts as {describe(verts)} and faces as {describe(faces)}"
            )
        check_finite_verts(verts_packed, topology.verts_packed_to_mesh_idx, "verts")
        normals = None
        if verts_normals is not None:
            normals = pack_verts_normals(verts_normals, topology, verts_packed)
        self._setup(verts_packed, topology, textures, normals)

    # ----------------------------------------------------------------- construction

    def _setup(
        self,
        verts_packed: Tensor,
        topology: Topology,
        textures: TexturesBase | None,
        verts_normals: Tensor | None = None,
    ) -> None:
        self._verts_packed = verts_packed
        self._verts_normals = verts_normals  # (sum(V_n), 3) given normals, or None
        self._topology = topology
        self._cache: dict[tuple[str, bool, bool], tuple[int, object]] = {}
        self.textures = textures

    @property
    def textures(self) -> TexturesBase | None:
        """``None``, a TexturesVertex, TexturesUV or TexturesAtlas of batch size ``len(self)``.

        Assignable (``meshes.textures = TexturesVertex(...)``, as in PyTorch3D); the new
        value is checked against the meshes' sizes and device.
        """
        return self._textures

    @textures.setter
    def textures(self, textures: TexturesBase | None) -> None:
        topology = self._topology
        if textures is not None:
            if not isinstance(textures, TexturesBase):
                raise TypeError(
                    "Meshes: textures must be None, TexturesVertex, TexturesUV or TexturesAtlas, "
                    f"got {type(textures).__name__}"
                )
            if len(textures) != topology.num_meshes:
                raise ValueError(
                    f"Meshes: textures has batch size {len(textures)} but there are "
                    f"{topology.num_meshes} meshes"
                )
            if textures.device != self._verts_packed.device:
                raise ValueError(
                    f"Meshes: textures are on {textures.device} but verts are on "
                    f"{self._verts_packed.device}"
                )
            textures = textures._fit_to_meshes(topology.num_verts_list, topology.num_faces_list)
        self._textures = textures

    @classmethod
    def _from_parts(
        cls,
        verts_packed: Tensor,
        topology: Topology,
        textures: TexturesBase | None,
        verts_normals: Tensor | None = None,
    ) -> Meshes:
        """A Meshes around already-checked packed vertices and a shared topology."""
        out = cls.__new__(cls)
        out._setup(verts_packed, topology, textures, verts_normals)
        return out

    def _cached(self, name: str, compute: Callable[[], object]) -> object:
        """Vertex-derived value, cached per autograd mode and vertex tensor version."""
        key = (name, torch.is_grad_enabled(), torch.is_inference_mode_enabled())
        version = self._verts_packed._version
        hit = self._cache.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
        value = compute()
        self._cache[key] = (version, value)
        return value

    @property
    def topology(self) -> Topology:
        """The shared, immutable face-derived structure."""
        return self._topology

    # ----------------------------------------------------------------- batch basics

    def __len__(self) -> int:
        return self._topology.num_meshes

    def isempty(self) -> bool:
        """True if the batch has no meshes or no mesh has a face."""
        return self._topology.num_meshes == 0 or self._topology.faces_packed.shape[0] == 0

    @property
    def device(self) -> torch.device:
        return self._verts_packed.device

    @property
    def dtype(self) -> torch.dtype:
        return self._verts_packed.dtype

    @property
    def equisized(self) -> bool:
        """True if the batch is not empty and all meshes have the same numbers of
        vertices and of faces (a property here; an attribute in PyTorch3D)."""
        t = self._topology
        return len(set(t.num_verts_list)) == 1 and len(set(t.num_faces_list)) == 1

    @property
    def valid(self) -> Tensor:
        """``(N,)`` bool: meshes with at least one vertex and one face."""
        t = self._topology
        return (t.num_verts_per_mesh > 0) & (t.num_faces_per_mesh > 0)

    # ----------------------------------------------------------------- vertex views

    def verts_packed(self) -> Tensor:
        """``(sum(V_n), 3)`` float: all vertices, mesh after mesh."""
        return self._verts_packed

    def verts_list(self) -> list[Tensor]:
        """``N`` tensors ``(V_n, 3)`` float: a copy (editing it in place leaves this
        Meshes unchanged), differentiable w.r.t. the vertices."""
        return list(torch.split(self._verts_packed.clone(), list(self._topology.num_verts_list)))

    def verts_padded(self) -> Tensor:
        """``(N, max(V_n), 3)`` float, zero-padded."""

        def compute() -> Tensor:
            t = self._topology
            flat = self._verts_packed.new_zeros(t.num_meshes * t.max_verts, 3)
            flat = flat.index_copy(0, t.verts_padded_index, self._verts_packed)
            return flat.view(t.num_meshes, t.max_verts, 3)

        return self._cached("verts_padded", compute)  # type: ignore[return-value]

    # ----------------------------------------------------------------- face views

    def faces_packed(self) -> Tensor:
        """``(sum(F_n), 3)`` long: faces as indices into ``verts_packed()``."""
        return self._topology.faces_packed

    def faces_list(self) -> list[Tensor]:
        """``N`` tensors ``(F_n, 3)`` long, indices into each mesh's own vertices (copies:
        editing them leaves the shared topology unchanged)."""
        return [f.clone() for f in self._topology.faces_list]

    def get_mesh_verts_faces(self, index: int) -> tuple[Tensor, Tensor]:
        """``(verts (V_n, 3) float, faces (F_n, 3) long)`` of mesh ``index`` (copies);
        ``TypeError`` for a non-int, ``ValueError`` outside ``[-N, N)``."""
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(
                f"Meshes.get_mesh_verts_faces: index must be an int, got {describe(index)}"
            )
        n = len(self)
        if not -n <= index < n:
            raise ValueError(
                f"Meshes.get_mesh_verts_faces: index {index} out of range for {n} meshes"
            )
        t, i = self._topology, index % n
        verts = self._verts_packed.narrow(0, sum(t.num_verts_list[:i]), t.num_verts_list[i])
        return verts.clone(), t.faces_list[i].clone()

    def faces_padded(self) -> Tensor:
        """``(N, max(F_n), 3)`` long, local indices, padded with -1."""
        return self._topology.faces_padded

    # ----------------------------------------------------------------- counts and maps

    def num_verts_per_mesh(self) -> Tensor:
        """``(N,)`` long."""
        return self._topology.num_verts_per_mesh

    def num_faces_per_mesh(self) -> Tensor:
        """``(N,)`` long."""
        return self._topology.num_faces_per_mesh

    def mesh_to_verts_packed_first_idx(self) -> Tensor:
        """``(N,)`` long: index in ``verts_packed()`` of each mesh's first vertex."""
        return self._topology.mesh_to_verts_packed_first_idx

    def mesh_to_faces_packed_first_idx(self) -> Tensor:
        """``(N,)`` long: index in ``faces_packed()`` of each mesh's first face."""
        return self._topology.mesh_to_faces_packed_first_idx

    def verts_packed_to_mesh_idx(self) -> Tensor:
        """``(sum(V_n),)`` long: mesh index of each packed vertex."""
        return self._topology.verts_packed_to_mesh_idx

    def faces_packed_to_mesh_idx(self) -> Tensor:
        """``(sum(F_n),)`` long: mesh index of each packed face."""
        return self._topology.faces_packed_to_mesh_idx

    def verts_padded_to_packed_idx(self) -> Tensor:
        """``(sum(V_n),)`` long: row of each packed vertex in ``verts_padded()`` viewed
        as ``(N * max(V_n), 3)``."""
        return self._topology.verts_padded_index

    # ----------------------------------------------------------------- edges

    def edges_packed(self) -> Tensor:
        """``(E, 2)`` long: unique undirected edges, indices into ``verts_packed()``,
        each row sorted (``e[:, 0] < e[:, 1]``), rows sorted, grouped by mesh."""
        return self._topology.edges.edges_packed

    def faces_packed_to_edges_packed(self) -> Tensor:
        """``(sum(F_n), 3)`` long: column ``k`` is the edge opposite vertex ``k``, i.e.
        the edges ``(v1, v2)``, ``(v2, v0)``, ``(v0, v1)`` as rows of ``edges_packed()``."""
        return self._topology.edges.faces_packed_to_edges_packed

    def edges_packed_to_mesh_idx(self) -> Tensor:
        """``(E,)`` long: mesh index of each edge."""
        return self._topology.edges.edges_packed_to_mesh_idx

    def num_edges_per_mesh(self) -> Tensor:
        """``(N,)`` long."""
        return self._topology.edges.num_edges_per_mesh

    def mesh_to_edges_packed_first_idx(self) -> Tensor:
        """``(N,)`` long: index in ``edges_packed()`` of each mesh's first edge."""
        return self._topology.edges.mesh_to_edges_packed_first_idx

    def sample_textures(self, fragments: object, bary: Tensor | None = None) -> Tensor:
        """The texture at rasterized fragments (PyTorch3D's form), or at (face, bary) pairs.

        ``meshes.sample_textures(fragments)`` reads ``fragments.pix_to_face``
        ``(N, H, W, K)`` long (packed face ids, ``-1`` padding) and
        ``fragments.bary_coords`` ``(N, H, W, K, 3)`` float and returns
        ``(N, H, W, K, C)``. ``meshes.sample_textures(face_idx, bary)`` takes any
        ``(...)`` long packed face ids and ``(..., 3)`` barycentrics and returns
        ``(..., C)``.

        Args:
            fragments: the rasterizer's Fragments, or a long tensor of packed face ids
                (``-1`` for none) when ``bary`` is given.
            bary: ``(..., 3)`` float barycentric coordinates, with face ids as the first
                argument; None with fragments.

        Returns:
            ``(..., C)`` float texels, zeros where the face id is ``-1``.

        Raises:
            ValueError: the meshes have no textures.
            TypeError: neither form of arguments.
        """
        if self.textures is None:
            raise ValueError("Meshes.sample_textures: this Meshes has no textures")
        if bary is None and not isinstance(fragments, Tensor):
            return self.textures.sample_textures(fragments, faces_packed=self.faces_packed())
        if not isinstance(fragments, Tensor) or not isinstance(bary, Tensor):
            raise TypeError(
                "Meshes.sample_textures: give fragments (with pix_to_face and bary_coords), or "
                f"face ids and bary tensors; got {type(fragments).__name__} and "
                f"{type(bary).__name__}"
            )
        return self.textures.sample_at(fragments, bary, self.faces_packed())

    # ----------------------------------------------------------------- vertex updates

    def _check_offsets(self, offsets: Tensor, name: str) -> Tensor:
        if not isinstance(offsets, Tensor) or not offsets.is_floating_point():
            raise TypeError(
                f"Meshes.{name}: vert_offsets must be a float tensor, got {describe(offsets)}"
            )
        nv = self._topology.num_verts_total
        if offsets.shape not in ((nv, 3), (3,)):
            raise ValueError(
                f"Meshes.{name}: vert_offsets must have shape ({nv}, 3) or (3,), "
                f"got {tuple(offsets.shape)}"
            )
        return offsets

    def _checked(self, verts_packed: Tensor, method: str, name: str) -> Tensor:
        """``verts_packed``, after refusing NaN or inf as the constructor does."""
        check_finite_verts(verts_packed, self._topology.verts_packed_to_mesh_idx, name, method)
        return verts_packed

    def offset_verts(self, vert_offsets_packed: Tensor) -> Meshes:
        """A new Meshes with vertices ``verts_packed() + vert_offsets_packed``.

        The result shares this mesh's topology and textures object, and its given vertex
        normals for a ``(3,)`` offset (a translation).

        Args:
            vert_offsets_packed: ``(sum(V_n), 3)`` or ``(3,)`` float.

        Raises:
            ValueError: a NaN or inf coordinate results (as the constructor), naming the mesh.
        """
        offsets = self._check_offsets(vert_offsets_packed, "offset_verts")
        normals = self._verts_normals if offsets.dim() == 1 else None
        verts = self._checked(self._verts_packed + offsets, "offset_verts", "vert_offsets_packed")
        return Meshes._from_parts(verts, self._topology, self.textures, normals)

    def offset_verts_(self, vert_offsets_packed: Tensor) -> Meshes:
        """In-place :meth:`offset_verts`; returns ``self``."""
        offsets = self._check_offsets(vert_offsets_packed, "offset_verts_")
        self._verts_packed = self._checked(
            self._verts_packed + offsets, "offset_verts_", "vert_offsets_packed"
        )
        if offsets.dim() != 1:
            self._verts_normals = None
        self._cache.clear()
        return self

    def _scale(self, scale: float | Tensor, name: str) -> Tensor:
        n = self._topology.num_meshes
        if not isinstance(scale, Tensor):
            return self._verts_packed * float(scale)
        if scale.dim() == 0:
            return self._verts_packed * scale
        if scale.shape != (n,):
            raise ValueError(
                f"Meshes.{name}: scale must be a number or a tensor of shape () or ({n},), "
                f"got {tuple(scale.shape)}"
            )
        per_vert = scale.to(self._verts_packed.dtype)[self._topology.verts_packed_to_mesh_idx]
        return self._verts_packed * per_vert.unsqueeze(1)

    def scale_verts(self, scale: float | Tensor) -> Meshes:
        """A new Meshes with each mesh's vertices multiplied by ``scale`` (a number or
        ``(N,)`` float); shares topology and textures. A NaN or inf coordinate in the result
        raises ValueError, as in the constructor."""
        verts = self._checked(self._scale(scale, "scale_verts"), "scale_verts", "scale")
        return Meshes._from_parts(verts, self._topology, self.textures, self._verts_normals)

    def scale_verts_(self, scale: float | Tensor) -> Meshes:
        """In-place :meth:`scale_verts`; returns ``self``."""
        verts = self._checked(self._scale(scale, "scale_verts_"), "scale_verts_", "scale")
        self._verts_packed = verts
        self._cache.clear()
        return self

    def update_padded(self, new_verts_padded: Tensor) -> Meshes:
        """A new Meshes with vertices taken from ``new_verts_padded``; shares this mesh's
        topology and textures. Values in the padding are ignored.

        Args:
            new_verts_padded: ``(N, max(V_n), 3)`` float.

        Raises:
            ValueError: a NaN or inf coordinate outside the padding, naming the mesh.
        """
        t = self._topology
        if not isinstance(new_verts_padded, Tensor) or not new_verts_padded.is_floating_point():
            raise TypeError(
                "Meshes.update_padded: new_verts_padded must be a float tensor, "
                f"got {describe(new_verts_padded)}"
            )
        expected = (t.num_meshes, t.max_verts, 3)
        if tuple(new_verts_padded.shape) != expected:
            raise ValueError(
                f"Meshes.update_padded: new_verts_padded must have shape {expected}, "
                f"got {tuple(new_verts_padded.shape)}"
            )
        packed = new_verts_padded.reshape(-1, 3)[t.verts_padded_index]
        packed = self._checked(packed, "update_padded", "new_verts_padded")
        return Meshes._from_parts(packed, t, self.textures)

    # ----------------------------------------------------------------- batch ops

    def __getitem__(self, index: int | slice | Sequence[int] | Tensor) -> Meshes:
        """The meshes at ``index`` (int, slice, list of ints, long or bool tensor) as a
        new Meshes (an int gives a batch of one)."""
        indices = normalize_index(index, len(self), "Meshes")
        sizes = list(self._topology.num_verts_list)
        verts = torch.split(self._verts_packed, sizes)
        faces = self._topology.faces_list
        textures = None if self.textures is None else self.textures._select(indices)
        verts_packed, topology = pack_checked_lists(
            [verts[i] for i in indices], [faces[i] for i in indices], self.device, self.dtype
        )
        normals = None
        if self._verts_normals is not None:
            given = torch.split(self._verts_normals, sizes)
            normals = torch.cat([given[i] for i in indices] or [verts_packed[:0]], 0)
        return Meshes._from_parts(verts_packed, topology, textures, normals)

    def split(self, split_sizes: Sequence[int]) -> list[Meshes]:
        """Consecutive sub-batches of ``split_sizes[k]`` meshes each, as ``torch.split``
        (``ValueError`` for a non-int or negative size)."""
        if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in split_sizes):
            raise ValueError(f"Meshes.split: split_sizes must be ints >= 0, got {split_sizes!r}")
        starts = [sum(split_sizes[:k]) for k in range(len(split_sizes))]
        return [self[s : s + size] for s, size in zip(starts, split_sizes, strict=True)]

    def submeshes(
        self, face_indices: Sequence[Sequence[Tensor]] | Sequence[Tensor] | Tensor
    ) -> Meshes:
        """A batch of submeshes: for each mesh ``n`` and each face index tensor ``ids`` in
        ``face_indices[n]``, the mesh made of the faces ``faces_list()[n][ids]`` and only
        the vertices they use (renumbered in increasing order).

        Args:
            face_indices: ``N`` entries (one per mesh), each a list of 1-D long tensors or
                a ``(S_n, F)`` long tensor (one row per submesh); or an ``(N, S, F)``
                long tensor.

        Returns:
            A Meshes of ``sum(S_n)`` meshes, in order; TexturesVertex are kept (the used
            vertices' features), other textures raise ``ValueError`` (as in PyTorch3D).
            Differentiable w.r.t. the vertices.
        """
        return select_submeshes(self, face_indices)

    def extend(self, n: int) -> Meshes:
        """Each mesh repeated ``n`` times, in order ``0, 0, ..., 1, 1, ...`` (gradients
        flow back to this mesh's vertices)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"Meshes.extend: n must be an int >= 1, got {n!r}")
        return self[[i for i in range(len(self)) for _ in range(n)]]

    def clone(self) -> Meshes:
        """A copy with cloned vertices and textures; the immutable topology is shared."""
        textures = None if self.textures is None else self.textures.clone()
        normals = None if self._verts_normals is None else self._verts_normals.clone()
        return Meshes._from_parts(self._verts_packed.clone(), self._topology, textures, normals)

    def detach(self) -> Meshes:
        """A copy with detached vertices and textures, sharing the topology."""
        textures = None if self.textures is None else self.textures.detach()
        normals = None if self._verts_normals is None else self._verts_normals.detach()
        return Meshes._from_parts(self._verts_packed.detach(), self._topology, textures, normals)

    def to(self, device: torch.device | str, copy: bool = False) -> Meshes:
        """This batch on ``device`` (``self`` if already there and not ``copy``)."""
        device = torch.device(device)
        if device.type != "cpu" and device.index is None and device.type == self.device.type:
            device = self.device
        if device == self.device and not copy:
            return self
        if device == self.device:
            return self.clone()
        textures = None if self.textures is None else self.textures.to(device)
        normals = None if self._verts_normals is None else self._verts_normals.to(device)
        return Meshes._from_parts(
            self._verts_packed.to(device), self._topology.to(device), textures, normals
        )

    def cpu(self) -> Meshes:
        return self.to("cpu")

    def cuda(self, device: int | None = None) -> Meshes:
        return self.to("cuda" if device is None else f"cuda:{device}")

    def __repr__(self) -> str:
        t = self._topology
        return (
            f"Meshes(N={t.num_meshes}, verts={t.num_verts_total}, faces={sum(t.num_faces_list)}, "
            f"textures={type(self.textures).__name__ if self.textures is not None else None}, "
            f"device={self.device})"
        )
