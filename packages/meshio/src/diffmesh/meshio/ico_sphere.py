"""The unit icosphere: an icosahedron subdivided ``level`` times and projected on the sphere."""

from __future__ import annotations

import functools

import torch
from diffmesh.meshcore import Meshes

from ._devices import as_device

__all__ = ["ico_sphere", "icosahedron", "subdivide_sphere"]


def icosahedron() -> tuple[torch.Tensor, torch.Tensor]:
    """The regular icosahedron inscribed in the unit sphere.

    The 12 vertices are the cyclic permutations of (0, +-1, +-phi), scaled to unit length; the
    20 faces are the vertex triples whose three sides are all edges (length 2 before scaling),
    wound counter-clockwise seen from outside.

    Returns:
        verts (12, 3) float32 on the unit sphere and faces (20, 3) int64, with
        ((v1 - v0) x (v2 - v0)) . v0 > 0 for every face.
    """
    phi = (1.0 + 5.0**0.5) / 2.0
    signs = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]], dtype=torch.float64)
    base = torch.zeros(4, 3, dtype=torch.float64)
    base[:, 1] = signs[:, 0]
    base[:, 2] = signs[:, 1] * phi  # (0, +-1, +-phi)
    verts = torch.cat([base, base.roll(1, dims=1), base.roll(2, dims=1)])  # (12, 3)
    triples = torch.combinations(torch.arange(12), 3)  # (220, 3)
    corners = verts[triples]  # (220, 3, 3)
    sides = corners - corners.roll(1, dims=1)
    is_face = ((sides.norm(dim=2) - 2.0).abs() < 1e-9).all(dim=1)
    faces = triples[is_face]  # (20, 3)
    v0, v1, v2 = verts[faces].unbind(1)
    outward = (torch.linalg.cross(v1 - v0, v2 - v0) * v0).sum(1) > 0
    faces = torch.where(outward[:, None], faces, faces[:, [0, 2, 1]])
    verts = verts / verts.norm(dim=1, keepdim=True)
    return verts.float(), faces


def subdivide_sphere(verts: torch.Tensor, faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split every triangle in four at its edge midpoints, projected onto the unit sphere.

    Args:
        verts: (V, 3) float points on the unit sphere.
        faces: (F, 3) int64 triangles with outward winding.

    Returns:
        verts (V + E, 3): the old vertices followed by one new vertex per unique edge, and
        faces (4F, 3) with the same winding: face (a, b, c) with midpoints ab, bc, ca becomes
        (a, ab, ca), (ab, b, bc), (ca, bc, c), (ab, bc, ca).
    """
    num_verts = verts.shape[0]
    a, b, c = faces.unbind(1)
    edges = torch.stack([torch.stack([a, b], 1), torch.stack([b, c], 1), torch.stack([c, a], 1)], 1)
    edges = edges.sort(dim=2).values.view(-1, 2)  # (3F, 2), rows sorted
    unique, inverse = torch.unique(edges, dim=0, return_inverse=True)
    mid = verts[unique].sum(1)
    mid = mid / mid.norm(dim=1, keepdim=True)
    ab, bc, ca = (inverse.view(-1, 3) + num_verts).unbind(1)
    new_faces = torch.stack(
        [
            torch.stack([a, ab, ca], 1),
            torch.stack([ab, b, bc], 1),
            torch.stack([ca, bc, c], 1),
            torch.stack([ab, bc, ca], 1),
        ],
        dim=1,
    ).view(-1, 3)
    return torch.cat([verts, mid]), new_faces


@functools.lru_cache(maxsize=32)
def _cached(level: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(verts, faces) of one level on one device; callers must never modify them."""
    if level == 0:
        verts, faces = icosahedron()
    else:
        verts, faces = subdivide_sphere(*_cached(level - 1, torch.device("cpu")))
    return verts.to(device), faces.to(device)


def ico_sphere(level: int = 0, device: str | torch.device | None = None) -> Meshes:
    """A unit sphere mesh: the icosahedron subdivided ``level`` times.

    Level l has V = 10 * 4**l + 2 vertices (all at radius 1) and F = 20 * 4**l faces, wound
    counter-clockwise seen from outside (face normals point away from the centre); it is a
    closed 2-manifold (every edge in exactly two faces). The vertices and faces of each
    (level, device) are computed once and cached; every call returns a new Meshes holding
    copies, so modifying one never changes another.

    Args:
        level: number of subdivisions, an int >= 0.
        device: where the mesh lives (default CPU).

    Returns:
        Meshes with one mesh: (V, 3) float32 verts, (F, 3) int64 faces.

    Raises:
        TypeError: ``level`` is not an int.
        ValueError: ``level`` is negative.
    """
    if isinstance(level, bool) or not isinstance(level, int):
        raise TypeError(f"level must be an int, got {type(level).__name__}")
    if level < 0:
        raise ValueError(f"level must be >= 0, got {level}")
    device = as_device(device)
    verts, faces = _cached(level, device)
    return Meshes(verts=[verts.clone()], faces=[faces.clone()])
