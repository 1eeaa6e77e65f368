"""TexturesVertex: views, sampling (vs a loop reference), gradcheck, batch ops."""

from __future__ import annotations

import pytest
import torch
from diffmesh.meshcore import Meshes, TexturesVertex


def ref_sample(features: torch.Tensor, faces: torch.Tensor, face_idx, bary) -> torch.Tensor:
    out = torch.zeros(*face_idx.shape, features.shape[1], dtype=features.dtype)
    for idx in torch.cartesian_prod(*[torch.arange(s) for s in face_idx.shape]).reshape(
        -1, face_idx.dim()
    ):
        idx = tuple(idx.tolist())
        f = int(face_idx[idx])
        if f >= 0:
            for k in range(3):
                out[idx] += bary[idx][k] * features[faces[f, k]]
    return out


def test_views_list_padded_packed(mixed_batch):
    m, verts, faces = mixed_batch
    feats = [torch.rand(v.shape[0], 4, dtype=torch.float64) for v in verts]
    tex = TexturesVertex(feats)
    mt = Meshes(verts, faces, textures=tex)
    assert mt.textures is tex and len(tex) == 3
    torch.testing.assert_close(tex.verts_features_packed(), torch.cat(feats))
    for got, want in zip(tex.verts_features_list(), feats, strict=True):
        torch.testing.assert_close(got, want)
    pad = tex.verts_features_padded()
    assert pad.shape == (3, 12, 4)
    torch.testing.assert_close(pad[2, :8], feats[2])
    assert (pad[1] == 0).all() and (pad[2, 8:] == 0).all()
    corners = tex.faces_verts_textures_packed(m.faces_packed())
    assert corners.shape == (32, 3, 4)


def test_padded_features_trimmed_to_meshes(mixed_batch):
    _, verts, faces = mixed_batch
    padded = torch.rand(3, 12, 3, dtype=torch.float64)
    m = Meshes(verts, faces, textures=TexturesVertex(padded))
    assert m.textures.verts_features_packed().shape == (20, 3)
    torch.testing.assert_close(m.textures.verts_features_list()[2], padded[2, :8])


def test_sample_at_matches_reference(mixed_batch):
    m, verts, faces = mixed_batch
    feats = [torch.rand(v.shape[0], 2, dtype=torch.float64) for v in verts]
    m = Meshes(verts, faces, textures=TexturesVertex(feats))
    g = torch.Generator().manual_seed(1)
    face_idx = torch.randint(-1, 32, (2, 5, 3), generator=g)
    bary = torch.rand(2, 5, 3, 3, generator=g, dtype=torch.float64)
    got = m.sample_textures(face_idx, bary)
    want = ref_sample(m.textures.verts_features_packed(), m.faces_packed(), face_idx, bary)
    torch.testing.assert_close(got, want)
    assert (got[face_idx == -1] == 0).all()


def test_sample_at_gradcheck(ico_mesh):
    _v, f = ico_mesh
    feats = torch.rand(12, 3, dtype=torch.float64, requires_grad=True)
    bary = torch.rand(7, 3, dtype=torch.float64, requires_grad=True)
    face_idx = torch.tensor([0, 5, -1, 19, 3, 3, -1])

    def fn(feats, bary):
        return TexturesVertex([feats]).sample_at(face_idx, bary, f)

    assert torch.autograd.gradcheck(fn, (feats, bary))


def test_sample_at_no_faces_and_all_background():
    tex = TexturesVertex([torch.rand(3, 3)])
    out = tex.sample_at(torch.full((4,), -1), torch.rand(4, 3), torch.zeros(0, 3, dtype=torch.long))
    assert out.shape == (4, 3) and (out == 0).all()


def test_batch_ops_extend_getitem_join(mixed_batch):
    _, verts, _ = mixed_batch
    feats = [torch.full((v.shape[0], 1), float(i)) for i, v in enumerate(verts)]
    tex = TexturesVertex(feats)
    ext = tex.extend(2)
    assert len(ext) == 6
    assert [int(f[0, 0]) for f in ext.verts_features_list() if f.numel()] == [0, 0, 2, 2]
    sub = tex[[2, 0]]
    assert sub.verts_features_packed().shape == (20, 1)
    torch.testing.assert_close(sub.verts_features_list()[0], feats[2])
    joined = tex.join_batch([tex[0]])
    assert len(joined) == 4
    scene = tex.join_scene()
    assert len(scene) == 1
    torch.testing.assert_close(scene.verts_features_packed(), tex.verts_features_packed())
    assert tex.to("cpu").verts_features_packed().device.type == "cpu"
    leaf = torch.rand(3, 3, requires_grad=True)
    assert not TexturesVertex([leaf]).detach().verts_features_packed().requires_grad
    assert TexturesVertex([leaf]).clone().verts_features_packed().requires_grad


def test_errors():
    with pytest.raises(TypeError, match="verts_features must be"):
        TexturesVertex("red")
    with pytest.raises(TypeError, match=r"verts_features\[1\] must be a float"):
        TexturesVertex([torch.rand(3, 3), torch.ones(3, 3, dtype=torch.long)])
    with pytest.raises(ValueError, match=r"verts_features\[1\].*channels"):
        TexturesVertex([torch.rand(3, 3), torch.rand(3, 2)])
    with pytest.raises(ValueError, match=r"verts_features must have shape \(N, V, C\)"):
        TexturesVertex(torch.rand(3, 3))
    tex = TexturesVertex([torch.rand(3, 3)])
    with pytest.raises(TypeError, match="face_idx must be a long"):
        tex.sample_at(torch.zeros(2), torch.rand(2, 3), torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="bary must have shape"):
        tex.sample_at(
            torch.zeros(2, dtype=torch.long), torch.rand(2, 2), torch.zeros(1, 3, dtype=torch.long)
        )
    with pytest.raises(TypeError, match="others\\[0\\] must be TexturesVertex"):
        tex.join_batch([object()])
    with pytest.raises(ValueError, match="extend: n must be"):
        tex.extend(0)
