"""Meshes.submeshes against a naive per-submesh reference."""

from __future__ import annotations

import pytest
import torch
from diffmesh.meshcore import Meshes, TexturesUV, TexturesVertex


def _naive_submesh(verts: torch.Tensor, faces: torch.Tensor, ids: list[int]):
    chosen = [faces[i].tolist() for i in ids]
    used = sorted({v for face in chosen for v in face})
    renumber = {old: new for new, old in enumerate(used)}
    sub_faces = torch.tensor([[renumber[v] for v in face] for face in chosen], dtype=torch.long)
    return verts[used], sub_faces.view(-1, 3)


def test_submeshes_match_naive_in_every_input_form(cube_mesh, ico_mesh) -> None:
    (vc, fc), (vi, fi) = cube_mesh, ico_mesh
    meshes = Meshes([vc, vi], [fc, fi])
    choice = [[[0, 1], [4, 5, 11]], [[3, 19, 7]]]
    want = [
        _naive_submesh(v, f, ids)
        for (v, f), group in zip(((vc, fc), (vi, fi)), choice, strict=True)
        for ids in group
    ]
    as_lists = [[torch.tensor(ids) for ids in group] for group in choice]
    subs = meshes.submeshes(as_lists)
    assert len(subs) == 3
    for k, (wv, wf) in enumerate(want):
        got_v, got_f = subs.get_mesh_verts_faces(k)
        assert torch.equal(got_v, wv) and torch.equal(got_f, wf)
    square = Meshes([vc, vc], [fc, fc])
    as_tensor = torch.tensor([[[0, 1], [2, 3]], [[4, 5], [10, 11]]])
    by_tensor = square.submeshes(as_tensor)
    by_rows = square.submeshes([as_tensor[0], as_tensor[1]])
    assert len(by_tensor) == 4
    assert torch.equal(by_tensor.verts_packed(), by_rows.verts_packed())
    wv, wf = _naive_submesh(vc, fc, [10, 11])
    assert torch.equal(by_tensor.verts_list()[3], wv)
    assert torch.equal(by_tensor.faces_list()[3], wf)


def test_submeshes_empty_groups_gradients_and_textures(cube_mesh) -> None:
    v, f = cube_mesh
    x = v.clone().requires_grad_(True)
    feats = torch.arange(24, dtype=torch.float64).view(8, 3)
    meshes = Meshes([x, x], [f, f], textures=TexturesVertex([feats, feats + 100]))
    subs = meshes.submeshes([[], [torch.tensor([0]), torch.tensor([], dtype=torch.long)]])
    assert subs.num_verts_per_mesh().tolist() == [3, 0]
    used = f[0].sort().values
    assert torch.equal(subs.textures.verts_features_list()[0], feats[used] + 100)
    subs.verts_packed().sum().backward()
    want = torch.zeros(8, dtype=torch.float64)
    want[used] = 1.0
    assert torch.equal(x.grad[:, 0], want)


def test_submeshes_errors(cube_mesh) -> None:
    v, f = cube_mesh
    meshes = Meshes([v], [f])
    with pytest.raises(ValueError, match=r"one entry per mesh \(1\)"):
        meshes.submeshes([[torch.tensor([0])], [torch.tensor([0])]])
    with pytest.raises(ValueError, match=r"face_indices\[0\]\[0\] holds face indices outside"):
        meshes.submeshes([[torch.tensor([12])]])
    with pytest.raises(TypeError, match=r"face_indices\[0\]\[0\] must be a long"):
        meshes.submeshes([[torch.tensor([0.0])]])
    maps = torch.rand(1, 4, 4, 3, dtype=torch.float64)
    uv = TexturesUV(maps, [f], [torch.rand(8, 2, dtype=torch.float64)])
    with pytest.raises(ValueError, match="TexturesVertex"):
        Meshes([v], [f], textures=uv).submeshes([[torch.tensor([0])]])
