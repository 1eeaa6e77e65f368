"""Every meshcore op on an accelerator matches the CPU (skipped without CUDA)."""

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

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _all_views(m: Meshes) -> dict[str, torch.Tensor]:
    names = [
        "verts_packed", "verts_padded", "faces_packed", "faces_padded", "num_verts_per_mesh",
        "num_faces_per_mesh", "mesh_to_verts_packed_first_idx", "verts_packed_to_mesh_idx",
        "faces_packed_to_mesh_idx", "edges_packed", "faces_packed_to_edges_packed",
        "edges_packed_to_mesh_idx", "num_edges_per_mesh", "faces_areas_packed",
        "faces_normals_packed", "verts_normals_packed",
    ]  # fmt: skip
    return {n: getattr(m, n)() for n in names}


def test_cuda_matches_cpu(mixed_batch):
    m, verts, faces = mixed_batch
    dev = torch.device("cuda")
    cpu_views = _all_views(m)
    g = m.to(dev)
    assert g.device.type == "cuda" and g.topology.faces_packed.device.type == "cuda"
    for name, value in _all_views(g).items():
        assert value.device.type == "cuda", name
        torch.testing.assert_close(value.cpu(), cpu_views[name], msg=name)
    built = Meshes([v.to(dev) for v in verts], [f.to(dev) for f in faces])
    for name, value in _all_views(built).items():
        torch.testing.assert_close(value.cpu(), cpu_views[name], msg=name)
    moved = g.offset_verts(torch.ones(3, dtype=torch.float64, device=dev))
    assert moved.edges_packed() is g.edges_packed()
    assert len(join_meshes_as_batch([g, g[0]])) == 4
    assert join_meshes_as_scene(g).num_verts_per_mesh().tolist() == [20]
    back = g.cpu()
    torch.testing.assert_close(back.verts_packed(), m.verts_packed())


def test_cuda_textures_and_gradients(mixed_batch):
    _, verts, faces = mixed_batch
    dev = torch.device("cuda")
    feats = [torch.rand(v.shape[0], 3, dtype=torch.float64) for v in verts]
    maps = torch.rand(3, 8, 8, 3, dtype=torch.float64)
    vuv = [torch.rand(5, 2, dtype=torch.float64) for _ in faces]
    fuv = [torch.randint(0, 5, f.shape) for f in faces]
    face_idx = torch.tensor([0, 7, -1, 25, 31])
    bary = torch.full((5, 3), 1 / 3, dtype=torch.float64)
    for tex in (TexturesVertex(feats), TexturesUV(maps, fuv, vuv)):
        cpu = Meshes(verts, faces, textures=tex)
        gpu = cpu.to(dev)
        assert gpu.textures.device.type == "cuda"
        want = cpu.sample_textures(face_idx, bary)
        got = gpu.sample_textures(face_idx.to(dev), bary.to(dev))
        torch.testing.assert_close(got.cpu(), want)
    v = verts[0].to(dev).requires_grad_(True)
    Meshes([v], [faces[0].to(dev)]).verts_normals_packed().sum().backward()
    assert v.grad is not None and torch.isfinite(v.grad).all()
