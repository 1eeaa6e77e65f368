"""Shared builders for the meshcore tests: hand-built cube and icosahedron."""

from __future__ import annotations

import math

import pytest
import torch


def cube(dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit cube centred at the origin: 8 verts, 12 outward-facing triangles."""
    v = torch.tensor(
        [[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)], dtype=dtype
    )
    quads = [
        (0, 1, 3, 2),  # x = -0.5
        (4, 6, 7, 5),  # x = +0.5
        (0, 4, 5, 1),  # y = -0.5
        (2, 3, 7, 6),  # y = +0.5
        (0, 2, 6, 4),  # z = -0.5
        (1, 5, 7, 3),  # z = +0.5
    ]
    f = [t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))]
    return v, torch.tensor(f, dtype=torch.long)


def icosahedron(dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit icosahedron: 12 verts, 20 outward-facing faces."""
    t = (1.0 + math.sqrt(5.0)) / 2.0
    v = torch.tensor(
        [
            [-1, t, 0],
            [1, t, 0],
            [-1, -t, 0],
            [1, -t, 0],
            [0, -1, t],
            [0, 1, t],
            [0, -1, -t],
            [0, 1, -t],
            [t, 0, -1],
            [t, 0, 1],
            [-t, 0, -1],
            [-t, 0, 1],
        ],
        dtype=dtype,
    )
    v = v / v.norm(dim=1, keepdim=True)
    f = torch.tensor(
        [
            [0, 11, 5],
            [0, 5, 1],
            [0, 1, 7],
            [0, 7, 10],
            [0, 10, 11],
            [1, 5, 9],
            [5, 11, 4],
            [11, 10, 2],
            [10, 7, 6],
            [7, 1, 8],
            [3, 9, 4],
            [3, 4, 2],
            [3, 2, 6],
            [3, 6, 8],
            [3, 8, 9],
            [4, 9, 5],
            [2, 4, 11],
            [6, 2, 10],
            [8, 6, 7],
            [9, 8, 1],
        ],
        dtype=torch.long,
    )
    return v, f


@pytest.fixture
def cube_mesh() -> tuple[torch.Tensor, torch.Tensor]:
    return cube()


@pytest.fixture
def ico_mesh() -> tuple[torch.Tensor, torch.Tensor]:
    return icosahedron()


@pytest.fixture
def mixed_batch():
    """A batch of three: icosahedron, an empty mesh, a cube (float64)."""
    from diffmesh.meshcore import Meshes

    vi, fi = icosahedron()
    vc, fc = cube()
    verts = [vi, torch.zeros(0, 3, dtype=torch.float64), vc]
    faces = [fi, torch.zeros(0, 3, dtype=torch.long), fc]
    return Meshes(verts, faces), verts, faces
