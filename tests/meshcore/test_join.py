"""join_meshes_as_batch / join_meshes_as_scene, with and without textures."""

from __future__ import annotations

import pytest
import torch
from diffmesh.meshcore import (
    Meshes,
    TexturesUV,
    TexturesVertex,
    join_meshes_as_batch,
    join_meshes_as_scene,
)


def _uv_tex(faces: list[torch.Tensor], seed: int) -> TexturesUV:
    g = torch.Generator().manual_seed(seed)
    maps = torch.rand(len(faces), 4, 4, 3, generator=g, dtype=torch.float64)
    verts_uvs = [torch.rand(5, 2, generator=g, dtype=torch.float64) for _ in faces]
    faces_uvs = [torch.randint(0, 5, f.shape, generator=g) for f in faces]
    return TexturesUV(maps, faces_uvs, verts_uvs)


def test_join_batch_matches_building_at_once(mixed_batch, cube_mesh):
    m, verts, faces = mixed_batch
    vc, fc = cube_mesh
    other = Meshes([vc * 2], [fc])
    joined = join_meshes_as_batch([m, other])
    ref = Meshes([*verts, vc * 2], [*faces, fc])
    assert len(joined) == 4
    torch.testing.assert_close(joined.verts_packed(), ref.verts_packed())
    assert torch.equal(joined.faces_packed(), ref.faces_packed())
    assert torch.equal(joined.edges_packed(), ref.edges_packed())
    assert joined.num_edges_per_mesh().tolist() == [30, 0, 18, 18]
    assert joined.textures is None


def test_join_batch_vertex_textures_and_gradients(cube_mesh):
    v, f = cube_mesh
    v = v.clone().requires_grad_(True)
    feats = torch.rand(8, 3, dtype=torch.float64, requires_grad=True)
    a = Meshes([v], [f], textures=TexturesVertex([feats]))
    b = Meshes([v * 2, v], [f, f[:4]], textures=TexturesVertex([feats * 0, feats]))
    j = join_meshes_as_batch([a, b])
    assert len(j.textures) == 3
    torch.testing.assert_close(j.textures.verts_features_list()[0], feats)
    (j.verts_packed().sum() + j.textures.verts_features_packed().sum()).backward()
    assert torch.equal(v.grad, torch.full_like(v, 4.0))
    assert torch.equal(feats.grad, torch.full_like(feats, 2.0))
    assert join_meshes_as_batch([a, b], include_textures=False).textures is None


def test_join_batch_uv_textures(mixed_batch):
    _, verts, faces = mixed_batch
    a = Meshes(verts, faces, textures=_uv_tex(faces, 0))
    b = Meshes(verts[:1], faces[:1], textures=_uv_tex(faces[:1], 1))
    j = join_meshes_as_batch([a, b])
    assert len(j.textures) == 4
    fi = torch.tensor([0, 40])
    bary = torch.tensor([[0.2, 0.3, 0.5]] * 2, dtype=torch.float64)
    got = j.sample_textures(fi, bary)
    torch.testing.assert_close(got[0], a.sample_textures(fi[:1], bary[:1])[0])
    torch.testing.assert_close(got[1], b.sample_textures(torch.tensor([8]), bary[:1])[0])


def test_join_scene(mixed_batch):
    m, verts, faces = mixed_batch
    feats = [torch.rand(x.shape[0], 3, dtype=torch.float64) for x in verts]
    mt = Meshes(verts, faces, textures=TexturesVertex(feats))
    s = join_meshes_as_scene(mt)
    assert len(s) == 1
    assert s.num_verts_per_mesh().tolist() == [20] and s.num_faces_per_mesh().tolist() == [32]
    torch.testing.assert_close(s.verts_packed(), m.verts_packed())
    assert torch.equal(s.faces_packed(), m.faces_packed())
    torch.testing.assert_close(s.textures.verts_features_packed(), torch.cat(feats))
    assert s.num_edges_per_mesh().tolist() == [48]
    # a list of batches
    s2 = join_meshes_as_scene([mt, mt[0]])
    assert s2.num_verts_per_mesh().tolist() == [32]
    # uv textures: samples unchanged after the atlas remap
    mu = Meshes(verts, faces, textures=_uv_tex(faces, 2))
    su = join_meshes_as_scene(mu)
    fi = torch.tensor([3, 25])
    bary = torch.tensor([[0.2, 0.3, 0.5], [0.4, 0.4, 0.2]], dtype=torch.float64)
    torch.testing.assert_close(su.sample_textures(fi, bary), mu.sample_textures(fi, bary))


def test_join_errors(cube_mesh):
    v, f = cube_mesh
    plain = Meshes([v], [f])
    tex = Meshes([v], [f], textures=TexturesVertex([torch.rand(8, 3, dtype=torch.float64)]))
    with pytest.raises(ValueError, match=r"meshes\[1\] has textures of type None"):
        join_meshes_as_batch([tex, plain])
    assert join_meshes_as_batch([tex, plain], include_textures=False).textures is None
    with pytest.raises(ValueError, match="empty list"):
        join_meshes_as_batch([])
    with pytest.raises(TypeError, match=r"meshes\[1\] must be a Meshes"):
        join_meshes_as_batch([plain, "cube"])
    with pytest.raises(TypeError, match=r"meshes\[1\] has dtype torch.float32"):
        join_meshes_as_scene([plain, Meshes([v.float()], [f])])
