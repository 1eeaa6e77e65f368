"""meshcore benchmarks: building a large Meshes and its edges, one fitting-loop step of
vertex-derived geometry, and texture sampling at renderer-sized batches of points."""

from __future__ import annotations

from collections.abc import Callable

import torch
from common import Case, bench_device
from diffmesh.meshcore import Meshes, TexturesUV, TexturesVertex


def _grid(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """An n x n planar grid: (n*n, 3) float32 verts, (2 (n-1)^2, 3) long faces."""
    i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    verts = torch.stack([i.reshape(-1) / n, j.reshape(-1) / n, torch.zeros(n * n)], 1).float()
    q = (i[:-1, :-1] * n + j[:-1, :-1]).reshape(-1)
    faces = torch.cat([torch.stack([q, q + 1, q + n], 1), torch.stack([q + 1, q + n + 1, q + n], 1)])
    dev = bench_device()
    return verts.to(dev), faces.to(dev)


def _setup_build() -> Callable[[], object]:
    verts, faces = _grid(708)
    return lambda: Meshes([verts], [faces]).edges_packed()


def _setup_fit_step() -> Callable[[], object]:
    verts, faces = _grid(51)  # 5000 faces per mesh, a level-4 ico_sphere's size
    src = Meshes([verts, verts], [faces, faces])
    src.edges_packed()
    deform = torch.zeros(2 * verts.shape[0], 3, device=verts.device, requires_grad=True)

    def step() -> None:
        m = src.offset_verts(deform)
        loss = m.verts_normals_packed().sum() + m.faces_areas_packed().sum()
        (loss + m.verts_padded().sum()).backward()

    return step


def _sample_inputs(num_faces: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    face_idx = torch.randint(-1, num_faces, (2, 256, 256, 8), generator=g)
    bary = torch.rand(2, 256, 256, 8, 3, generator=g)
    bary = bary / bary.sum(-1, keepdim=True)
    return face_idx.to(bench_device()), bary.to(bench_device())


def _setup_uv() -> Callable[[], object]:
    verts, faces = _grid(51)
    maps = torch.rand(2, 1024, 1024, 3, device=verts.device)
    tex = TexturesUV(maps, [faces, faces], [verts[:, :2], verts[:, :2]])
    m = Meshes([verts, verts], [faces, faces], textures=tex)
    face_idx, bary = _sample_inputs(2 * faces.shape[0])
    return lambda: m.sample_textures(face_idx, bary)


def _setup_vertex() -> Callable[[], object]:
    verts, faces = _grid(51)
    m = Meshes([verts, verts], [faces, faces], textures=TexturesVertex([verts, verts]))
    face_idx, bary = _sample_inputs(2 * faces.shape[0])
    return lambda: m.sample_textures(face_idx, bary)


def cases() -> list[Case]:
    points = 2 * 256 * 256 * 8
    return [
        Case(
            group="meshcore",
            name="Meshes(list) + edges_packed, 1.00M faces",
            setup=_setup_build,
            repeats=5,
            memory=True,
            items=2 * 707**2,
            items_unit="faces/s",
        ),
        Case(
            group="meshcore",
            name="offset_verts + normals + areas + padded, fwd+bwd, 2 x 5k faces",
            setup=_setup_fit_step,
            repeats=20,
        ),
        Case(
            group="meshcore",
            name="TexturesUV.sample_at, 2x256x256x8 points, 1024^2 maps",
            setup=_setup_uv,
            repeats=5,
            memory=True,
            items=points,
            items_unit="points/s",
        ),
        Case(
            group="meshcore",
            name="TexturesVertex.sample_at, 2x256x256x8 points",
            setup=_setup_vertex,
            repeats=5,
            items=points,
            items_unit="points/s",
        ),
    ]
