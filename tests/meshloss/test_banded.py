"""The breadth-first block ordering and the block-tridiagonal Cholesky solve (``_banded``)
against dense float64 references."""

from __future__ import annotations

import pytest
import torch
from diffmesh.meshcore import Meshes
from diffmesh.meshio import ico_sphere
from diffmesh.meshloss import largesteps_matrix
from diffmesh.meshloss._banded import BlockTridiagonalCholesky, block_ordering


def _fan(rim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A disc of ``rim`` triangles around vertex 0: one BFS level holds every other vertex."""
    angle = torch.arange(rim, dtype=torch.float64) * (2 * torch.pi / rim)
    verts = torch.cat(
        [
            torch.zeros(1, 3, dtype=torch.float64),
            torch.stack([angle.cos(), angle.sin(), 0 * angle], 1),
        ]
    )
    ring = torch.arange(1, rim + 1)
    return verts, torch.stack([torch.zeros_like(ring), ring, ring % rim + 1], 1)


def _shuffled_batch(mesh_lists, seed: int = 0) -> Meshes:
    """mesh_lists' batch (with an empty mesh and an isolated vertex), a fan, and
    ico_sphere(2) with its vertices numbered at random, so that the input order gives no
    band."""
    g = torch.Generator().manual_seed(seed)
    sphere = ico_sphere(2)
    shuffle = torch.randperm(sphere.verts_packed().shape[0], generator=g)
    inverse = torch.argsort(shuffle)
    verts, faces = mesh_lists
    fan_verts, fan_faces = _fan(40)
    return Meshes(
        [*verts, fan_verts, sphere.verts_packed().double()[shuffle]],
        [*faces, fan_faces, inverse[sphere.faces_packed()]],
    )


def _block_of(ordering) -> torch.Tensor:
    """``(V,)`` the block of every vertex, from the ordering's offsets."""
    sizes = torch.tensor(ordering.sizes)
    block_of_position = torch.repeat_interleave(torch.arange(len(ordering.sizes)), sizes)
    return block_of_position[ordering.position]


@pytest.mark.parametrize("min_block", [1, 5, 32, 10_000])
def test_ordering_makes_the_matrix_block_tridiagonal(mesh_lists, min_block):
    matrix = largesteps_matrix(_shuffled_batch(mesh_lists), 10.0, method="cg")
    ordering = block_ordering(matrix.rows, matrix.cols, matrix.size, min_block)
    size = matrix.size
    assert torch.equal(torch.sort(ordering.perm).values, torch.arange(size))
    assert torch.equal(ordering.perm[ordering.position], torch.arange(size))
    assert ordering.offsets[0] == 0 and ordering.offsets[-1] == size
    assert all(s > 0 for s in ordering.sizes)
    assert len(ordering.sizes) <= -(-size // min_block)  # at most one block start per bucket
    block = _block_of(ordering)
    assert int((block[matrix.rows] - block[matrix.cols]).abs().max()) <= 1
    # the level structure is what keeps blocks small: the random numbering had none
    if min_block == 1:
        assert max(ordering.sizes) <= 40  # the fan's rim; ico_sphere(2)'s levels are smaller
    if min_block < size:
        assert ordering.factor_numel() < size**2
    else:  # one block: the dense factor
        assert ordering.sizes == [size] and ordering.factor_numel() == size**2


def test_ordering_of_graphs_without_edges():
    empty = block_ordering(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), 0)
    assert empty.perm.shape == (0,) and empty.offsets == [0]
    diagonal = torch.arange(70)  # only diagonal entries: 70 isolated vertices
    ordering = block_ordering(diagonal, diagonal, 70, min_block=32)
    assert ordering.offsets == [0, 32, 64, 70]


@pytest.mark.parametrize("min_block", [1, 7, 10_000])
def test_solve_matches_dense_in_float64(mesh_lists, min_block):
    matrix = largesteps_matrix(_shuffled_batch(mesh_lists), 4.0, method="cg")
    ordering = block_ordering(matrix.rows, matrix.cols, matrix.size, min_block)
    factor = BlockTridiagonalCholesky(matrix.rows, matrix.cols, matrix.values, ordering)
    assert factor.nbytes == ordering.factor_numel() * 8
    dense = matrix.to_dense()
    g = torch.Generator().manual_seed(3)
    for channels in (1, 3, 2):  # the work buffers follow the channel count
        b = torch.randn(matrix.size, channels, generator=g, dtype=torch.float64)
        expected = torch.linalg.solve(dense, b)
        torch.testing.assert_close(factor.solve(b), expected, rtol=1e-11, atol=1e-11)


def test_solve_in_float32_within_the_conditioning_bound():
    """float32 factor and solve against the float64 solution: a backward-stable solve's
    forward error is at most ``C kappa eps`` (kappa from the float64 eigenvalues)."""
    sphere = ico_sphere(3)
    matrix = largesteps_matrix(sphere, 10.0, method="cg")
    dense = matrix.to_dense().double()
    eigenvalues = torch.linalg.eigvalsh(dense)
    kappa = float(eigenvalues.max() / eigenvalues.min())
    ordering = block_ordering(matrix.rows, matrix.cols, matrix.size, 16)
    factor = BlockTridiagonalCholesky(matrix.rows, matrix.cols, matrix.values, ordering)
    g = torch.Generator().manual_seed(5)
    b = torch.randn(matrix.size, 3, generator=g, dtype=torch.float64)
    expected = torch.linalg.solve(dense, b)
    error = float((factor.solve(b.float()).double() - expected).abs().max())
    tolerance = 32 * kappa * torch.finfo(torch.float32).eps * float(expected.abs().max())
    assert error <= tolerance


def test_not_positive_definite():
    rows = torch.tensor([0, 0, 1, 1])
    cols = torch.tensor([0, 1, 0, 1])
    values = torch.tensor([1.0, 2.0, 2.0, 1.0], dtype=torch.float64)  # eigenvalues 3, -1
    ordering = block_ordering(rows, cols, 2)
    with pytest.raises(ValueError, match="positive definite"):
        BlockTridiagonalCholesky(rows, cols, values, ordering)
