"""UV map lookups (padding and sampling modes) against grid_sample, and PyTorch3D's
``sample_textures(fragments)`` form for every texture kind."""

from __future__ import annotations

import itertools
from typing import NamedTuple

import pytest
import torch
import torch.nn.functional as F
from diffmesh.meshcore import Meshes, TexturesAtlas, TexturesUV, TexturesVertex
from diffmesh.meshcore.textures.sampling import sample_maps


class Frags(NamedTuple):
    """The two fields of the rasterizer's Fragments that texture sampling reads."""

    pix_to_face: torch.Tensor
    bary_coords: torch.Tensor


def grid_sample_ref(maps, idx, uv, align_corners, padding_mode, mode):
    """torch's grid_sample, one point at a time: x = 2u - 1, y = 1 - 2v (y = -1 at the top)."""
    grid = torch.stack([2 * uv[:, 0] - 1, 1 - 2 * uv[:, 1]], dim=1)
    return F.grid_sample(
        maps.permute(0, 3, 1, 2)[idx],
        grid[:, None, None],
        mode=mode,
        padding_mode=padding_mode,
        align_corners=align_corners,
    )[:, :, 0, 0]


@pytest.mark.parametrize(
    ("align_corners", "padding_mode", "mode"),
    list(
        itertools.product([False, True], ["zeros", "border", "reflection"], ["bilinear", "nearest"])
    ),
)
def test_sample_maps_matches_grid_sample(align_corners, padding_mode, mode):
    g = torch.Generator().manual_seed(1)
    maps = torch.rand(3, 5, 7, 2, generator=g, dtype=torch.float64)
    uv = torch.rand(300, 2, generator=g, dtype=torch.float64) * 3.4 - 1.2  # far outside too
    idx = torch.randint(0, 3, (300,), generator=g)
    got = sample_maps(
        maps, idx, uv, align_corners=align_corners, padding_mode=padding_mode, sampling_mode=mode
    )
    want = grid_sample_ref(maps, idx, uv, align_corners, padding_mode, mode)
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("padding_mode", ["zeros", "reflection"])
def test_sample_maps_gradcheck(padding_mode):
    g = torch.Generator().manual_seed(2)
    maps = torch.rand(2, 3, 4, 2, generator=g, dtype=torch.float64, requires_grad=True)
    uv = (torch.rand(12, 2, generator=g, dtype=torch.float64) * 1.8 - 0.4).requires_grad_(True)
    idx = torch.randint(0, 2, (12,), generator=g)

    def fn(maps, uv):
        return sample_maps(maps, idx, uv, padding_mode=padding_mode)

    assert torch.autograd.gradcheck(fn, (maps, uv))


def test_sample_maps_one_pixel_and_nearest_no_nan():
    maps = torch.rand(1, 1, 1, 3, dtype=torch.float64, requires_grad=True)
    uv = torch.tensor([[0.5, 0.5], [3.0, -2.0], [0.0, 1.0]], dtype=torch.float64)
    uv.requires_grad_(True)
    idx = torch.zeros(3, dtype=torch.long)
    for align, pad, mode in itertools.product(
        [False, True], ["zeros", "border", "reflection"], ["bilinear", "nearest"]
    ):
        out = sample_maps(maps, idx, uv, align_corners=align, padding_mode=pad, sampling_mode=mode)
        want = grid_sample_ref(maps.detach(), idx, uv.detach(), align, pad, mode)
        torch.testing.assert_close(out.detach(), want)
        (g_maps, g_uv) = torch.autograd.grad(out.sum(), (maps, uv), allow_unused=True)
        assert torch.isfinite(g_maps).all()
        assert g_uv is None or torch.isfinite(g_uv).all()


def test_sample_maps_bad_modes():
    maps, idx, uv = torch.rand(1, 2, 2, 3), torch.zeros(1, dtype=torch.long), torch.rand(1, 2)
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        sample_maps(maps, idx, uv, padding_mode="wrap")
    with pytest.raises(ValueError, match="sampling_mode must be one of"):
        sample_maps(maps, idx, uv, sampling_mode="bicubic")


def _textured_pair(kind: str) -> Meshes:
    """Two meshes (4 and 2 faces) on a 3 x 3 grid of vertices, with a texture of ``kind``."""
    g = torch.Generator().manual_seed(5)
    verts = torch.tensor([[x, y, 0.0] for y in range(3) for x in range(3)], dtype=torch.float64)
    faces0 = torch.tensor([[0, 1, 4], [0, 4, 3], [1, 2, 5], [1, 5, 4]])
    faces1 = torch.tensor([[3, 4, 7], [3, 7, 6]])
    if kind == "vertex":
        tex = TexturesVertex([torch.rand(9, 2, generator=g, dtype=torch.float64)] * 2)
    elif kind == "uv":
        uvs = verts[:, :2] / 2
        tex = TexturesUV(
            torch.rand(2, 4, 5, 2, generator=g, dtype=torch.float64), [faces0, faces1], [uvs, uvs]
        )
    else:
        tex = TexturesAtlas(
            [
                torch.rand(4, 3, 3, 2, generator=g, dtype=torch.float64),
                torch.rand(2, 3, 3, 2, generator=g, dtype=torch.float64),
            ]
        )
    return Meshes([verts, verts], [faces0, faces1], textures=tex)


@pytest.mark.parametrize("kind", ["vertex", "uv", "atlas"])
def test_sample_textures_fragments_form(kind):
    meshes = _textured_pair(kind)
    g = torch.Generator().manual_seed(6)
    n, h, w, k = 2, 3, 4, 2
    pix_to_face = torch.randint(-1, 6, (n, h, w, k), generator=g)
    bary = torch.rand(n, h, w, k, 3, generator=g, dtype=torch.float64)
    bary = bary / bary.sum(-1, keepdim=True)
    bary = torch.where((pix_to_face < 0)[..., None], -1.0, bary)  # PyTorch3D's padding
    frags = Frags(pix_to_face, bary)
    got = meshes.sample_textures(frags)
    assert got.shape == (n, h, w, k, 2)
    # the same as the per-point form, and as the texture's own sample_textures
    torch.testing.assert_close(got, meshes.sample_textures(pix_to_face, bary))
    faces = meshes.faces_packed()
    torch.testing.assert_close(got, meshes.textures.sample_textures(frags, faces_packed=faces))
    assert (got[pix_to_face < 0] == 0).all()
    # a naive per-point reference: each texel is the texture at that single point
    p, b = pix_to_face.reshape(-1), bary.reshape(-1, 3)
    naive = torch.stack(
        [
            meshes.textures.sample_at(p[i : i + 1], b[i : i + 1], faces)[0]
            if p[i] >= 0
            else torch.zeros(2, dtype=torch.float64)
            for i in range(p.shape[0])
        ]
    )
    torch.testing.assert_close(got.reshape(-1, 2), naive)


def test_sample_textures_errors():
    meshes = _textured_pair("vertex")
    with pytest.raises(TypeError, match="pix_to_face and bary_coords"):
        meshes.sample_textures(object())
    with pytest.raises(TypeError, match="face ids and bary"):
        meshes.sample_textures(torch.zeros(1, dtype=torch.long), [0.3, 0.3, 0.4])
    with pytest.raises(TypeError, match="faces_packed must be"):
        meshes.textures.sample_textures(Frags(torch.zeros(1, dtype=torch.long), torch.zeros(1, 3)))
    with pytest.raises(ValueError, match="has no textures"):
        Meshes([torch.zeros(3, 3)], [torch.tensor([[0, 1, 2]])]).sample_textures(
            Frags(torch.zeros(1, dtype=torch.long), torch.zeros(1, 3))
        )
