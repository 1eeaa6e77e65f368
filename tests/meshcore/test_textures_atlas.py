"""TexturesAtlas: the nearest-cell lookup against a point-in-sub-triangle reference,
corner texels, gradcheck, batch ops and joins, degenerate inputs."""

from __future__ import annotations

import pytest
import torch
from diffmesh.meshcore import (
    Meshes,
    TexturesAtlas,
    join_meshes_as_batch,
    join_meshes_as_scene,
)
from diffmesh.meshcore.textures.atlas import atlas_cell_barycentrics


def sub_triangles(r: int) -> dict[tuple[int, int], list[tuple[float, float]]]:
    """The (w0, w1) corners of the sub-triangle each cell [row i, column j] holds,
    written out from the layout: lower triangles of squares (i, j) with i + j < R, and
    the upper triangles of the squares (R-1-i, R-1-j) in the remaining cells."""
    out = {}
    for i in range(r):
        for j in range(r):
            if i + j < r:
                out[i, j] = [(j / r, i / r), ((j + 1) / r, i / r), (j / r, (i + 1) / r)]
            else:
                a, b = r - 1 - i, r - 1 - j  # the square's row, column
                out[i, j] = [
                    ((b + 1) / r, (a + 1) / r),
                    ((b + 1) / r, a / r),
                    (b / r, (a + 1) / r),
                ]
    return out


def naive_cell(w0: float, w1: float, r: int) -> tuple[int, int]:
    """The cell whose sub-triangle contains (w0, w1), by a point-in-triangle test."""
    for cell, ((ax, ay), (bx, by), (cx, cy)) in sub_triangles(r).items():
        det = (bx - ax) * (cy - ay) - (cx - ax) * (by - ay)
        s = ((w0 - ax) * (cy - ay) - (cx - ax) * (w1 - ay)) / det
        t = ((bx - ax) * (w1 - ay) - (w0 - ax) * (by - ay)) / det
        if s >= 0 and t >= 0 and s + t <= 1:
            return cell
    raise AssertionError(f"({w0}, {w1}) is in no sub-triangle")


def numbered_atlas(num_faces: int, r: int) -> torch.Tensor:
    """(F, R, R, 1) float64 with a distinct value 100 f + 10 i + j in every cell."""
    f = torch.arange(num_faces, dtype=torch.float64)[:, None, None]
    i = torch.arange(r, dtype=torch.float64)[None, :, None]
    j = torch.arange(r, dtype=torch.float64)[None, None, :]
    return (100 * f + 10 * i + j)[..., None]


@pytest.mark.parametrize("r", [1, 2, 3, 5])
def test_lookup_matches_point_in_triangle_reference(r):
    g = torch.Generator().manual_seed(r)
    tex = TexturesAtlas([numbered_atlas(3, r)])
    bary = torch.rand(200, 3, generator=g, dtype=torch.float64)
    bary = bary / bary.sum(-1, keepdim=True)
    face = torch.randint(0, 3, (200,), generator=g)
    got = tex.sample_at(face, bary)[:, 0]
    want = []
    for f, (w0, w1, _) in zip(face.tolist(), bary.tolist(), strict=True):
        i, j = naive_cell(w0, w1, r)
        want.append(100 * f + 10 * i + j)
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64))


@pytest.mark.parametrize("r", [1, 2, 4])
def test_cell_centroids_and_corners(r):
    atlas = numbered_atlas(2, r)
    tex = TexturesAtlas(atlas[None])
    bary = atlas_cell_barycentrics(r, torch.float64)  # (R, R, 3)
    assert torch.allclose(bary.sum(-1), torch.ones(r, r, dtype=torch.float64))
    got = tex.sample_at(torch.ones(r, r, dtype=torch.long), bary)
    torch.testing.assert_close(got, atlas[1])  # every centroid reads its own cell
    corners = tex.faces_verts_textures_packed()  # (F, 3, 1)
    eye = torch.eye(3, dtype=torch.float64)
    for f in range(2):
        torch.testing.assert_close(corners[f], tex.sample_at(torch.full((3,), f), eye))


def test_gradcheck_wrt_atlas():
    atlas = torch.rand(2, 3, 3, 2, dtype=torch.float64, requires_grad=True)
    bary = torch.tensor([[0.2, 0.3, 0.5], [0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]])
    face = torch.tensor([0, 1, -1, 1])

    def fn(atlas):
        return TexturesAtlas([atlas]).sample_at(face, bary.double())

    assert torch.autograd.gradcheck(fn, (atlas,))


def test_meshes_views_batch_ops_and_joins():
    verts = torch.rand(5, 3, dtype=torch.float64)
    f0 = torch.tensor([[0, 1, 2], [0, 2, 3], [1, 2, 4]])
    f1 = torch.tensor([[0, 1, 2]])
    padded = torch.rand(2, 3, 2, 2, 3, dtype=torch.float64)
    meshes = Meshes([verts, verts[:3]], [f0, f1], textures=TexturesAtlas(padded))
    tex = meshes.textures
    assert [a.shape[0] for a in tex.atlas_list()] == [3, 1]  # padded input trimmed
    assert tex.atlas_packed().shape == (4, 2, 2, 3)
    assert torch.equal(tex.atlas_padded()[0], padded[0])
    assert (tex.atlas_padded()[1, 1:] == 0).all()
    ext = meshes.extend(2)
    assert [a.shape[0] for a in ext.textures.atlas_list()] == [3, 3, 1, 1]
    assert torch.equal(meshes[1].textures.atlas_packed(), padded[1, :1])
    assert torch.equal(tex[[1, 0]].atlas_packed(), torch.cat([padded[1, :1], padded[0]]))
    joined = join_meshes_as_batch([meshes, meshes[1]])
    assert [a.shape[0] for a in joined.textures.atlas_list()] == [3, 1, 1]
    scene = join_meshes_as_scene(meshes)
    bary = torch.tensor([[0.6, 0.3, 0.1]] * 4, dtype=torch.float64)
    face = torch.arange(4)
    torch.testing.assert_close(
        scene.sample_textures(face, bary), meshes.sample_textures(face, bary)
    )
    for other in (tex.clone(), tex.detach(), tex.to("cpu"), tex.cpu()):
        assert torch.equal(other.atlas_packed(), tex.atlas_packed())
    grad_atlas = padded.clone().requires_grad_(True)
    assert not TexturesAtlas(grad_atlas).detach().atlas_packed().requires_grad


def test_degenerate_inputs_no_nan():
    atlas = torch.rand(1, 2, 2, 3, dtype=torch.float64, requires_grad=True)
    empty = torch.zeros(0, 2, 2, 3, dtype=torch.float64)
    tex = TexturesAtlas([empty, atlas])  # an empty mesh first
    bary = torch.tensor(
        [[-1.0, -1.0, -1.0], [1.5, -0.7, 0.2], [-3.0, 0.5, 3.5], [0.0, 0.0, 0.0], [1, 0, 0]],
        dtype=torch.float64,
        requires_grad=True,
    )
    face = torch.tensor([-1, 0, 0, 0, 0])
    out = tex.sample_at(face, bary)
    assert torch.isfinite(out).all() and (out[0] == 0).all()
    torch.testing.assert_close(out[1], atlas[0, 0, 1])  # clamped to the last column
    out.sum().backward()
    assert torch.isfinite(atlas.grad).all()
    assert bary.grad is None or torch.isfinite(bary.grad).all()
    no_faces = TexturesAtlas([empty])
    assert no_faces.sample_at(torch.tensor([-1]), bary[:1].detach()).shape == (1, 3)
    assert no_faces.faces_verts_textures_packed().shape == (0, 3, 3)


def test_errors():
    with pytest.raises(TypeError, match="atlas must be an"):
        TexturesAtlas(3)
    with pytest.raises(TypeError, match=r"atlas\[0\] must be a float tensor"):
        TexturesAtlas([torch.zeros(1, 2, 2, 3, dtype=torch.long)])
    with pytest.raises(ValueError, match=r"atlas must have shape \(N, F, R, R, C\)"):
        TexturesAtlas(torch.zeros(1, 2, 2, 3, 3))
    with pytest.raises(ValueError, match=r"R, C and dtype must match"):
        TexturesAtlas([torch.zeros(1, 2, 2, 3), torch.zeros(1, 3, 3, 3)])
    with pytest.raises(ValueError, match="empty list"):
        TexturesAtlas([])
    verts, faces = torch.rand(3, 3), torch.tensor([[0, 1, 2]])
    with pytest.raises(ValueError, match=r"atlases for \[2\] faces per mesh"):
        Meshes([verts], [faces], textures=TexturesAtlas([torch.zeros(2, 2, 2, 3)]))
    tex = TexturesAtlas([torch.zeros(1, 2, 2, 3)])
    with pytest.raises(ValueError, match=r"has \(R, R, C\)"):
        tex.join_batch([TexturesAtlas([torch.zeros(1, 3, 3, 3)])])
    with pytest.raises(TypeError, match="must be TexturesAtlas"):
        tex.join_batch([object()])
    with pytest.raises(ValueError, match="faces_packed has 2 faces"):
        tex.sample_at(torch.tensor([0]), torch.ones(1, 3), torch.zeros(2, 3, dtype=torch.long))
