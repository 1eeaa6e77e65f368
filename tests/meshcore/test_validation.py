"""Every Meshes input error is raised with the argument (and mesh index) named."""

from __future__ import annotations

import pytest
import torch
from diffmesh.meshcore import Meshes, TexturesVertex

V = torch.rand(4, 3)
F = torch.tensor([[0, 1, 2], [0, 2, 3]])


@pytest.mark.parametrize(
    ("verts", "faces", "error", "match"),
    [
        ([V, V], [F], ValueError, "verts has 2 meshes but faces has 1"),
        ([V, V.long()], [F, F], TypeError, r"verts\[1\] must be a floating point tensor"),
        ([V, "v"], [F, F], TypeError, r"verts\[1\] must be a torch.Tensor"),
        ([V, V[:, :2]], [F, F], ValueError, r"verts\[1\] must have shape \(V, 3\)"),
        ([V, V], [F, F.float()], TypeError, r"faces\[1\] must be an integer"),
        ([V, V], [F, F[:, :2]], ValueError, r"faces\[1\] must have shape \(F, 3\)"),
        (
            [V, V[:3]],
            [F, F],
            ValueError,
            r"faces\[1\] has index 3 but verts\[1\] has only 3 vertices",
        ),
        ([V, V], [F, F - 1], ValueError, r"faces\[1\] has negative index -1"),
        ([V, V.double()], [F, F], TypeError, r"verts\[1\] has dtype torch.float64"),
        (V[None], [F], TypeError, "both be lists of tensors or both padded"),
        (
            torch.rand(2, 4, 3),
            torch.stack([F, F])[:1],
            ValueError,
            "verts has batch size 2 but faces has 1",
        ),
        (torch.rand(4, 3), F, ValueError, r"verts must have shape \(N, V, 3\)"),
        (
            torch.rand(1, 4, 3),
            torch.tensor([[[-1, -1, -1], [0, 1, 2]]]),
            ValueError,
            r"faces\[0\] has -1 padding rows before",
        ),
        (
            torch.rand(1, 4, 3),
            torch.tensor([[[0, 1, 4]]]),
            ValueError,
            r"faces\[0\] has index 4 but verts\[0\] has only 4",
        ),
        (
            torch.rand(1, 4, 3),
            torch.tensor([[[0, -1, 2]]]),
            ValueError,
            r"faces\[0\] has negative index -1",
        ),
    ],
)
def test_bad_inputs(verts, faces, error, match):
    with pytest.raises(error, match=match):
        Meshes(verts, faces)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_verts_name_the_mesh(bad):
    v = V.clone()
    v[2, 1] = bad
    with pytest.raises(ValueError, match=r"verts\[2\] has non-finite"):
        Meshes([V, torch.zeros(0, 3), v], [F, torch.zeros(0, 3, dtype=torch.long), F])
    with pytest.raises(ValueError, match=r"verts\[1\] has non-finite"):
        Meshes(torch.stack([V, v]), torch.stack([F, F]))


def test_textures_checked():
    with pytest.raises(TypeError, match="textures must be None, TexturesVertex, TexturesUV or TexturesAtlas"):
        Meshes([V], [F], textures=torch.rand(4, 3))
    with pytest.raises(ValueError, match="textures has batch size 2 but there are 1 meshes"):
        Meshes([V], [F], textures=TexturesVertex([V, V]))
    with pytest.raises(
        ValueError, match=r"TexturesVertex\) has \[3\] vertices per mesh but the meshes have \[4\]"
    ):
        Meshes([V], [F], textures=TexturesVertex([V[:3]]))


def test_update_and_offset_errors():
    m = Meshes([V, V[:3]], [F, F[:1]])
    with pytest.raises(ValueError, match=r"vert_offsets must have shape \(7, 3\) or \(3,\)"):
        m.offset_verts(torch.rand(4, 3))
    with pytest.raises(TypeError, match="vert_offsets must be a float tensor"):
        m.offset_verts_(torch.ones(7, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"new_verts_padded must have shape \(2, 4, 3\)"):
        m.update_padded(torch.rand(2, 3, 3))
    with pytest.raises(TypeError, match="new_verts_padded must be a float tensor"):
        m.update_padded([1, 2])
    with pytest.raises(
        ValueError, match=r"scale must be a number or a tensor of shape \(\) or \(2,\)"
    ):
        m.scale_verts(torch.ones(3))
    with pytest.raises(ValueError, match="has no textures"):
        m.sample_textures(torch.zeros(1, dtype=torch.long), torch.rand(1, 3))


def test_empty_meshes_are_legal():
    e = torch.zeros(0, 3)
    ef = torch.zeros(0, 3, dtype=torch.long)
    m = Meshes([e, V, e], [ef, F, ef])
    assert m.num_verts_per_mesh().tolist() == [0, 4, 0]
    assert m.valid.tolist() == [False, True, False]
    # verts without faces
    m = Meshes([V], [ef])
    assert m.isempty() and m.verts_normals_packed().abs().sum() == 0


def test_textures_assignment_is_checked():
    m = Meshes([V, V[:3]], [F, F[:1]])
    m.textures = TexturesVertex([V, V[:3]])
    assert m.textures.verts_features_packed().shape == (7, 3)
    with pytest.raises(ValueError, match="textures has batch size 1 but there are 2 meshes"):
        m.textures = TexturesVertex([V])
    with pytest.raises(TypeError, match="textures must be None"):
        m.textures = "red"
    m.textures = None
    assert m.textures is None


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_vertex_updates_refuse_what_the_constructor_refuses(bad):
    m = Meshes([V, V[:3]], [F, F[:1]])
    offsets = torch.zeros(7, 3)
    offsets[5, 0] = bad  # vertex 1 of mesh 1
    for call in (m.offset_verts, m.offset_verts_):
        with pytest.raises(ValueError, match=r"offset_verts_?: vert_offsets_packed .* mesh 1"):
            call(offsets)
    with pytest.raises(ValueError, match=r"offset_verts: vert_offsets_packed .* mesh 0"):
        m.offset_verts(torch.tensor([bad, 0.0, 0.0]))
    for call in (m.scale_verts, m.scale_verts_):
        with pytest.raises(ValueError, match=r"scale_verts_?: scale gives non-finite .* mesh 0"):
            call(bad)
        with pytest.raises(ValueError, match=r"scale_verts_?: scale gives non-finite .* mesh 1"):
            call(torch.tensor([1.0, bad]))
    with pytest.raises(ValueError, match=r"scale_verts: scale gives non-finite"):
        m.offset_verts(torch.full((3,), 10.0)).scale_verts(1e38)  # the float32 product overflows
    padded = m.verts_padded().clone()
    padded[1, 3] = bad  # padding: ignored
    assert torch.equal(m.update_padded(padded).verts_packed(), m.verts_packed())
    padded[1, 0, 2] = bad
    with pytest.raises(ValueError, match=r"update_padded: new_verts_padded .* mesh 1"):
        m.update_padded(padded)
    assert torch.equal(m.verts_packed(), torch.cat([V, V[:3]]))  # in-place ops left m as it was


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_vertex_colours_are_refused(bad):
    colours = torch.rand(4, 3)
    colours[2, 1] = bad
    with pytest.raises(ValueError, match=r"verts_features\[1\] must be finite, .* index \(2, 1\)"):
        TexturesVertex([torch.rand(4, 3), colours])
    with pytest.raises(ValueError, match=r"verts_features must be finite, .* index \(1, 2, 1\)"):
        TexturesVertex(torch.stack([torch.rand(4, 3), colours]))
