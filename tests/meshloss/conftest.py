"""Shared mesh builders for the meshloss tests (float64, small)."""

from __future__ import annotations

import pytest
import torch
from diffmesh.meshcore import Meshes
from diffmesh.meshio import ico_sphere


def _tetrahedron() -> tuple[torch.Tensor, torch.Tensor]:
    verts = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.1, 0.0], [0.2, 1.0, 0.1], [0.1, 0.3, 1.2]],
                         dtype=torch.float64)
    faces = torch.tensor([[0, 2, 1], [0, 1, 3], [1, 2, 3], [0, 3, 2]])
    return verts, faces


def _non_manifold() -> tuple[torch.Tensor, torch.Tensor]:
    """Three faces on the edge (0, 1), a fourth face elsewhere and an isolated vertex (6)."""
    verts = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.5, 1.0, 0.1], [0.4, -1.0, 0.2],
                          [0.5, 0.1, 1.0], [1.5, 1.0, 0.3], [3.0, 3.0, 3.0]], dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2], [1, 0, 3], [0, 1, 4], [1, 5, 2]])
    return verts, faces


@pytest.fixture
def mesh_lists() -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """A heterogeneous batch: perturbed ico_sphere(1), an empty mesh, a tetrahedron and a
    non-manifold mesh with an isolated vertex, as (verts list, faces list) in float64."""
    g = torch.Generator().manual_seed(0)
    sphere = ico_sphere(1)
    sphere_verts = sphere.verts_packed().double()
    sphere_verts = sphere_verts + 0.05 * torch.randn(sphere_verts.shape, generator=g,
                                                     dtype=torch.float64)
    tet_verts, tet_faces = _tetrahedron()
    nm_verts, nm_faces = _non_manifold()
    verts = [sphere_verts, torch.zeros(0, 3, dtype=torch.float64), tet_verts, nm_verts]
    faces = [sphere.faces_packed(), torch.zeros(0, 3, dtype=torch.int64), tet_faces, nm_faces]
    return verts, faces


@pytest.fixture
def mesh_batch(mesh_lists) -> Meshes:
    return Meshes(*mesh_lists)
