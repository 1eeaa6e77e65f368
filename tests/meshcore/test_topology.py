"""Topology: unique edges, face->edge map, per-mesh edge counts, sharing."""

from __future__ import annotations

import torch
from diffmesh.meshcore import Meshes


def ref_edges(faces_packed: torch.Tensor) -> list[tuple[int, int]]:
    edges = set()
    for a, b, c in faces_packed.tolist():
        for i, j in ((b, c), (c, a), (a, b)):
            edges.add((min(i, j), max(i, j)))
    return sorted(edges)


def test_euler_characteristic_cube_and_icosahedron(cube_mesh, ico_mesh):
    for (v, f), num_edges in ((cube_mesh, 18), (ico_mesh, 30)):
        m = Meshes([v], [f])
        e = m.edges_packed()
        assert e.shape == (num_edges, 2) and e.dtype == torch.long
        assert v.shape[0] - e.shape[0] + f.shape[0] == 2


def test_edges_and_face_map_match_loop_reference(mixed_batch):
    m, _, _ = mixed_batch
    fp = m.faces_packed()
    e = m.edges_packed()
    assert [tuple(r) for r in e.tolist()] == ref_edges(fp)
    assert (e[:, 0] < e[:, 1]).all()
    f2e = m.faces_packed_to_edges_packed()
    assert f2e.shape == fp.shape and f2e.dtype == torch.long
    for i, (a, b, c) in enumerate(fp.tolist()):
        for k, (p, q) in enumerate(((b, c), (c, a), (a, b))):
            assert tuple(e[f2e[i, k]].tolist()) == (min(p, q), max(p, q))
    assert m.num_edges_per_mesh().tolist() == [30, 0, 18]
    assert m.edges_packed_to_mesh_idx().tolist() == [0] * 30 + [2] * 18
    assert m.mesh_to_edges_packed_first_idx().tolist() == [0, 30, 30]


def test_closed_manifold_every_edge_in_two_faces(ico_mesh):
    v, f = ico_mesh
    m = Meshes([v], [f])
    counts = torch.bincount(m.faces_packed_to_edges_packed().flatten())
    assert (counts == 2).all()


def test_topology_built_once(mixed_batch):
    m, _, _ = mixed_batch
    e1 = m.edges_packed()
    assert m.edges_packed() is e1
    assert m.num_edges_per_mesh() is m.num_edges_per_mesh()
    topo = m.topology
    for _ in range(3):
        m = m.offset_verts(torch.full((3,), 0.1, dtype=torch.float64))
        m = m.update_padded(m.verts_padded())
        m = m.detach()
    assert m.topology is topo
    assert m.edges_packed() is e1
    assert m.faces_padded() is topo.faces_padded


def test_topology_to_same_device_is_identity(mixed_batch):
    m, _, _ = mixed_batch
    assert m.topology.to("cpu") is m.topology


def test_derived_cache_and_weakref(mixed_batch):
    import weakref

    m, _, _ = mixed_batch
    calls = []

    def compute():
        calls.append(1)
        return torch.bincount(m.edges_packed().flatten())

    first = m.topology.derived(("degree", 1), compute)
    again = m.offset_verts(torch.zeros(3, dtype=torch.float64)).topology.derived(
        ("degree", 1), compute
    )
    assert again is first and len(calls) == 1
    assert m.topology.derived("other", lambda: 5) == 5
    ref = weakref.ref(m.topology)
    assert ref() is m.topology
    assert {m.topology: 1}[m.detach().topology] == 1
