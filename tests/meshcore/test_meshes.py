"""Meshes: list/packed/padded views, vertex updates, geometry, caches."""

from __future__ import annotations

import pytest
import torch
from diffmesh.meshcore import Meshes

# ----------------------------------------------------------------- naive references


def ref_areas_normals(verts: torch.Tensor, faces: torch.Tensor):
    areas, normals = [], []
    for a, b, c in faces.tolist():
        n = torch.linalg.cross(verts[b] - verts[a], verts[c] - verts[a])
        length = n.norm()
        areas.append(0.5 * length)
        normals.append(n / length if length > 0 else torch.zeros(3, dtype=verts.dtype))
    if not areas:
        return torch.zeros(0, dtype=verts.dtype), torch.zeros(0, 3, dtype=verts.dtype)
    return torch.stack(areas), torch.stack(normals)


def ref_verts_normals(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    out = torch.zeros_like(verts)
    for a, b, c in faces.tolist():
        n = torch.linalg.cross(verts[b] - verts[a], verts[c] - verts[a])
        for i in (a, b, c):
            out[i] += n
    for i in range(out.shape[0]):
        if out[i].norm() > 0:
            out[i] = out[i] / out[i].norm()
    return out


# ----------------------------------------------------------------- views


def test_views_consistent_with_empty_mesh_in_middle(mixed_batch):
    m, verts, faces = mixed_batch
    assert len(m) == 3 and not m.isempty()
    assert m.num_verts_per_mesh().tolist() == [12, 0, 8]
    assert m.num_faces_per_mesh().tolist() == [20, 0, 12]
    assert m.mesh_to_verts_packed_first_idx().tolist() == [0, 12, 12]
    assert m.mesh_to_faces_packed_first_idx().tolist() == [0, 20, 20]
    assert m.verts_packed_to_mesh_idx().tolist() == [0] * 12 + [2] * 8
    assert m.faces_packed_to_mesh_idx().tolist() == [0] * 20 + [2] * 12
    for got, want in zip(m.verts_list(), verts, strict=False):
        torch.testing.assert_close(got, want)
    for got, want in zip(m.faces_list(), faces, strict=False):
        assert torch.equal(got, want)
    torch.testing.assert_close(m.verts_packed(), torch.cat(verts))
    assert torch.equal(m.faces_packed(), torch.cat([faces[0], faces[2] + 12]))
    vp, fp = m.verts_padded(), m.faces_padded()
    assert vp.shape == (3, 12, 3) and fp.shape == (3, 20, 3)
    assert fp.dtype == torch.long
    for n in range(3):
        nv, nf = len(verts[n]), len(faces[n])
        torch.testing.assert_close(vp[n, :nv], verts[n])
        assert (vp[n, nv:] == 0).all()
        assert torch.equal(fp[n, :nf], faces[n])
        assert (fp[n, nf:] == -1).all()
    # packed faces index the packed verts of the right mesh
    pv = m.verts_packed()
    for n in (0, 2):
        first = m.mesh_to_faces_packed_first_idx()[n]
        f = m.faces_packed()[first : first + len(faces[n])]
        torch.testing.assert_close(pv[f], verts[n][faces[n]])


def test_padded_input_matches_list_input(cube_mesh):
    v, f = cube_mesh
    vp = torch.stack([v, 2 * v])
    fp = torch.full((2, 12, 3), -1, dtype=torch.long)
    fp[0] = f
    fp[1, :6] = f[:6]
    m = Meshes(vp, fp)
    assert m.num_verts_per_mesh().tolist() == [8, 8]
    assert m.num_faces_per_mesh().tolist() == [12, 6]
    assert torch.equal(m.faces_padded(), fp)
    torch.testing.assert_close(m.verts_padded(), vp)
    ref = Meshes([v, 2 * v], [f, f[:6]])
    torch.testing.assert_close(m.verts_packed(), ref.verts_packed())
    assert torch.equal(m.faces_packed(), ref.faces_packed())


def test_int32_faces_are_converted(cube_mesh):
    v, f = cube_mesh
    m = Meshes([v], [f.int()])
    assert m.faces_packed().dtype == torch.long


def test_zero_meshes_and_all_empty():
    m = Meshes([], [])
    assert len(m) == 0 and m.isempty()
    assert m.verts_packed().shape == (0, 3) and m.faces_packed().shape == (0, 3)
    assert m.verts_padded().shape == (0, 0, 3)
    assert m.edges_packed().shape == (0, 2)
    e = Meshes([torch.zeros(0, 3)], [torch.zeros(0, 3, dtype=torch.long)])
    assert len(e) == 1 and e.isempty()
    assert e.faces_areas_packed().shape == (0,)
    assert e.verts_normals_packed().shape == (0, 3)
    assert e.num_edges_per_mesh().tolist() == [0]


# ----------------------------------------------------------------- geometry


def test_areas_and_normals_match_reference(mixed_batch):
    m, _verts, _faces = mixed_batch
    pv, pf = m.verts_packed(), m.faces_packed()
    areas, normals = ref_areas_normals(pv, pf)
    torch.testing.assert_close(m.faces_areas_packed(), areas)
    torch.testing.assert_close(m.faces_normals_packed(), normals)
    torch.testing.assert_close(m.verts_normals_packed(), ref_verts_normals(pv, pf))
    # cube: total area 6, normals outward and axis aligned
    cube_first = int(m.mesh_to_faces_packed_first_idx()[2])
    torch.testing.assert_close(
        m.faces_areas_packed()[cube_first:].sum(), torch.tensor(6.0, dtype=torch.float64)
    )
    # padded variants
    assert m.faces_normals_padded().shape == (3, 20, 3)
    assert m.faces_areas_padded().shape == (3, 20)
    torch.testing.assert_close(m.verts_normals_padded()[2, :8], m.verts_normals_list()[2])


def test_isolated_and_degenerate_no_nan():
    v = torch.tensor(
        [[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [2, 0, 0], [5, 5, 5], [0, 0, 0]], dtype=torch.float64
    )
    f = torch.tensor(
        [[0, 1, 2], [0, 1, 3], [5, 5, 5], [0, 0, 1]]
    )  # zero-area faces, vertex 4 isolated
    v = v.clone().requires_grad_(True)
    m = Meshes([v], [f])
    areas = m.faces_areas_packed()
    fn = m.faces_normals_packed()
    vn = m.verts_normals_packed()
    assert torch.equal(areas[1:], torch.zeros(3, dtype=torch.float64))
    assert torch.equal(fn[1:], torch.zeros(3, 3, dtype=torch.float64))
    assert torch.equal(vn[4], torch.zeros(3, dtype=torch.float64))
    assert torch.isfinite(vn).all()
    (areas.sum() + fn.sum() + vn.sum()).backward()
    assert torch.isfinite(v.grad).all()


@pytest.mark.parametrize(
    "what", ["faces_areas_packed", "faces_normals_packed", "verts_normals_packed"]
)
def test_geometry_gradcheck(what, ico_mesh):
    v, f = ico_mesh
    v = v + 0.05 * torch.randn(v.shape, generator=torch.Generator().manual_seed(0), dtype=v.dtype)
    v = v.clone().requires_grad_(True)

    def fn(x):
        return getattr(Meshes([x, 0.5 * x], [f, f[:7]]), what)()

    assert torch.autograd.gradcheck(fn, (v,))


# ----------------------------------------------------------------- vertex updates and topology sharing


def test_offset_verts_and_update_padded_share_topology(mixed_batch):
    m, _verts, _ = mixed_batch
    edges = m.edges_packed()
    f2e = m.faces_packed_to_edges_packed()
    d = torch.randn(m.verts_packed().shape, dtype=torch.float64)
    m2 = m.offset_verts(d)
    torch.testing.assert_close(m2.verts_packed(), m.verts_packed() + d)
    assert m2.topology is m.topology
    assert m2.edges_packed() is edges and m2.faces_packed_to_edges_packed() is f2e
    m3 = m.offset_verts(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    torch.testing.assert_close(
        m3.verts_packed(), m.verts_packed() + torch.tensor([1.0, 2, 3], dtype=torch.float64)
    )
    new_padded = m.verts_padded() * 3
    m4 = m.update_padded(new_padded)
    torch.testing.assert_close(m4.verts_packed(), 3 * m.verts_packed())
    torch.testing.assert_close(m4.verts_padded(), new_padded)
    assert m4.edges_packed() is edges
    for d_ in (m.detach(), m.clone(), m.scale_verts(2.0), m4.offset_verts(d)):
        assert d_.edges_packed() is edges
    # in place
    before = m.verts_packed().clone()
    m.offset_verts_(d)
    torch.testing.assert_close(m.verts_packed(), before + d)
    assert m.edges_packed() is edges
    m.scale_verts_(torch.tensor([2.0, 1.0, 0.5], dtype=torch.float64))
    torch.testing.assert_close(m.verts_list()[0], 2 * (before + d)[:12])
    torch.testing.assert_close(m.verts_list()[2], 0.5 * (before + d)[12:])


def test_offset_verts_gradients_flow(ico_mesh):
    v, f = ico_mesh
    src = Meshes([v], [f])
    deform = torch.zeros_like(v, requires_grad=True)
    new = src.offset_verts(deform)
    new.verts_padded().sum().backward()
    assert torch.equal(deform.grad, torch.ones_like(v))
    p = v[None].clone().requires_grad_(True)
    src.update_padded(p).faces_areas_packed().sum().backward()
    assert p.grad.abs().sum() > 0


def test_cache_respects_grad_mode(ico_mesh):
    v, f = ico_mesh
    v = v.clone().requires_grad_(True)
    m = Meshes([v], [f])
    with torch.no_grad():
        assert not m.verts_padded().requires_grad
        assert not m.verts_normals_packed().requires_grad
        assert not m.faces_areas_packed().requires_grad
    assert m.verts_padded().requires_grad
    assert m.verts_normals_packed().requires_grad
    assert m.faces_areas_packed().requires_grad
    m.faces_areas_packed().sum().backward()
    assert v.grad is not None and v.grad.abs().sum() > 0
    # cached within one grad mode
    assert m.faces_normals_packed() is m.faces_normals_packed()


def test_cache_invalidated_by_in_place_updates(ico_mesh):
    v, f = ico_mesh
    m = Meshes([v.clone()], [f])
    a = m.faces_areas_packed()
    m.scale_verts_(2.0)
    torch.testing.assert_close(m.faces_areas_packed(), 4 * a)
    m.verts_packed().mul_(0.5)  # user in-place edit: the version counter invalidates the cache
    torch.testing.assert_close(m.faces_areas_packed(), a)


# ----------------------------------------------------------------- batch operations


def test_getitem_extend_clone_detach_to(mixed_batch):
    m, verts, faces = mixed_batch
    one = m[2]
    assert len(one) == 1
    torch.testing.assert_close(one.verts_packed(), verts[2])
    assert torch.equal(one.faces_packed(), faces[2])
    sub = m[[2, 0]]
    assert sub.num_verts_per_mesh().tolist() == [8, 12]
    assert torch.equal(sub.faces_list()[1], faces[0])
    assert len(m[1:]) == 2 and m[1:].num_faces_per_mesh().tolist() == [0, 12]
    assert len(m[torch.tensor([True, False, True])]) == 2
    assert m[-1].num_verts_per_mesh().tolist() == [8]
    with pytest.raises(IndexError, match="out of range"):
        m[3]
    with pytest.raises(TypeError, match="index"):
        m[1.5]
    ext = m.extend(2)
    assert ext.num_verts_per_mesh().tolist() == [12, 12, 0, 0, 8, 8]
    torch.testing.assert_close(ext.verts_list()[5], verts[2])
    with pytest.raises(ValueError, match="n must be"):
        m.extend(0)
    c = m.clone()
    assert c.verts_packed().data_ptr() != m.verts_packed().data_ptr()
    torch.testing.assert_close(c.verts_packed(), m.verts_packed())
    vg = verts[0].clone().requires_grad_(True)
    g = Meshes([vg], [faces[0]])
    assert not g.detach().verts_packed().requires_grad
    assert g.to("cpu") is g and g.cpu() is g
    assert g.device == torch.device("cpu")
    assert "Meshes(N=3" in repr(m)


def test_extend_gradients_flow(ico_mesh):
    v, f = ico_mesh
    v = v.clone().requires_grad_(True)
    Meshes([v], [f]).extend(3).verts_packed().sum().backward()
    assert torch.equal(v.grad, torch.full_like(v, 3.0))


def test_padded_views_gradcheck(cube_mesh):
    v, f = cube_mesh
    v = v.clone().requires_grad_(True)
    padded = torch.stack([v, v.flip(0)]).detach().requires_grad_(True)

    def from_list(x):
        return Meshes([x, x[:5]], [f, f[:2]]).verts_padded()

    def from_padded(p):
        return (
            Meshes([v.detach(), v.detach()[:5]], [f, f[:2]])
            .update_padded(p[:, :8])
            .faces_normals_packed()
        )

    assert torch.autograd.gradcheck(from_list, (v,))
    assert torch.autograd.gradcheck(from_padded, (padded,))


def test_empty_mesh_gradients_are_finite():
    v = torch.zeros(0, 3, dtype=torch.float64, requires_grad=True)
    m = Meshes([v], [torch.zeros(0, 3, dtype=torch.long)])
    out = m.verts_normals_packed().sum() + m.faces_areas_packed().sum() + m.verts_padded().sum()
    out.backward()
    assert v.grad is not None and v.grad.shape == (0, 3)


def test_getitem_and_extend_keep_textures(mixed_batch):
    from diffmesh.meshcore import TexturesVertex

    _, verts, faces = mixed_batch
    feats = [
        torch.full((v.shape[0], 1), float(i), dtype=torch.float64) for i, v in enumerate(verts)
    ]
    m = Meshes(verts, faces, textures=TexturesVertex(feats))
    ext = m.extend(2)
    assert len(ext.textures) == 6
    assert ext.textures.verts_features_packed().shape == (40, 1)
    first_of_last = int(ext.mesh_to_faces_packed_first_idx()[5])
    bary = torch.tensor([[0.2, 0.3, 0.5]], dtype=torch.float64)
    assert ext.sample_textures(torch.tensor([first_of_last]), bary).item() == 2.0
    sub = m[[2]]
    assert sub.textures.verts_features_packed().shape == (8, 1)
    assert sub.sample_textures(torch.tensor([0]), bary).item() == 2.0
    assert m.clone().textures.verts_features_packed() is not m.textures.verts_features_packed()
    assert m.offset_verts(torch.zeros(3, dtype=torch.float64)).textures is m.textures
