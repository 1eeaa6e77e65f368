"""meshloss benchmarks: chamfer, knn, sampling, the regularizers and one `fit shape` iteration.

Every timed call is forward + backward (where there is a gradient), with torch at 2 threads.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from common import Case, bench_device
from diffmesh.meshcore import Meshes
from diffmesh.meshio import ico_sphere, load_obj
from diffmesh.meshloss import (
    chamfer_distance,
    knn_points,
    mesh_edge_loss,
    mesh_laplacian_smoothing,
    mesh_normal_consistency,
    sample_points_from_meshes,
)

FISH = (Path(__file__).resolve().parents[1] / "apps" / "fit" / "src" / "diffmesh" / "fit" / "data"
        / "fish" / "fish_low_resolution.obj")


def _surface_clouds(n: int, points: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two (n, points, 3) clouds sampled on a sphere and on a slightly deformed one."""
    g = torch.Generator().manual_seed(0)
    sphere = ico_sphere(4)
    target = sphere.offset_verts(0.1 * torch.randn(sphere.verts_packed().shape, generator=g))
    x = sample_points_from_meshes(sphere.extend(n), points, generator=g)
    y = sample_points_from_meshes(target.extend(n), points, generator=g)
    device = bench_device()
    return x.to(device).requires_grad_(True), y.to(device).requires_grad_(True)


def _setup_chamfer(n: int, points: int) -> Callable[[], Callable[[], object]]:
    def setup() -> Callable[[], object]:
        x, y = _surface_clouds(n, points)

        def run() -> None:
            loss, _ = chamfer_distance(x, y)
            loss.backward()
        return run
    return setup


def _setup_knn_large() -> Callable[[], object]:
    g = torch.Generator().manual_seed(0)
    device = bench_device()
    p1 = torch.rand(1, 100_000, 3, generator=g).to(device)
    p2 = torch.rand(1, 100_000, 3, generator=g).to(device)
    return lambda: knn_points(p1, p2)


def _offset_sphere() -> tuple[Meshes, torch.Tensor]:
    sphere = ico_sphere(4, device=bench_device())
    offsets = torch.zeros_like(sphere.verts_packed(), requires_grad=True)
    return sphere, offsets


def _setup_sampling() -> Callable[[], object]:
    sphere, offsets = _offset_sphere()

    def run() -> None:
        points = sample_points_from_meshes(sphere.offset_verts(offsets), 5000)
        points.sum().backward()
    return run


def _setup_regularizer(loss_fn: Callable[[Meshes], torch.Tensor]) -> Callable[[], Callable[[], object]]:
    def setup() -> Callable[[], object]:
        sphere, offsets = _offset_sphere()

        def run() -> None:
            loss_fn(sphere.offset_verts(offsets)).backward()
        return run
    return setup


def _setup_fit_iteration(fitted: int, keep_memory: bool = False) -> Callable[[], Callable[[], object]]:
    """One `fit shape` step: ico_sphere(4) towards the fish, 5000 samples, SGD(1.0, 0.9).

    ``fitted == 0`` times the first iteration again and again (the sphere is reset after each
    call); otherwise setup first runs ``fitted`` iterations and the timed calls go on fitting
    (the sphere is then close to the fish, as during most of a 2000-iteration fit).
    ``keep_memory`` first sets glibc's malloc as the `fit` command does
    (``diffmesh.fit.keep_freed_memory``); without it, whether the iterations page-fault
    depends on the process's allocation history, so the figure varies between runs.
    """
    def setup() -> Callable[[], object]:
        if keep_memory:
            from diffmesh.fit import keep_freed_memory

            keep_freed_memory()
        verts, faces, _ = load_obj(FISH, load_textures=False)
        device = bench_device()
        verts = verts.to(device)
        verts = (verts - verts.mean(0)) / (verts - verts.mean(0)).norm(dim=1).max()
        target = Meshes([verts], [faces.verts_idx.to(device)])
        sphere, offsets = _offset_sphere()
        optimizer = torch.optim.SGD([offsets], lr=1.0, momentum=0.9)

        def step() -> None:
            mesh = sphere.offset_verts(offsets)
            sample_target = sample_points_from_meshes(target, 5000)
            sample_source = sample_points_from_meshes(mesh, 5000)
            loss = (chamfer_distance(sample_target, sample_source)[0]
                    + 1.0 * mesh_edge_loss(mesh)
                    + 0.01 * mesh_normal_consistency(mesh)
                    + 0.1 * mesh_laplacian_smoothing(mesh, method="uniform"))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        if fitted == 0:
            def run() -> None:
                step()
                with torch.no_grad():
                    offsets.zero_()
            return run
        for _ in range(fitted):
            step()
        return step
    return setup


def cases() -> list[Case]:
    faces = 20 * 4**4
    return [
        Case("meshloss", "chamfer_distance (1,5000,3) vs (1,5000,3), fwd+bwd",
             _setup_chamfer(1, 5000), repeats=20, goal="< 15 ms"),
        Case("meshloss", "chamfer_distance (4,20000,3) vs (4,20000,3), fwd+bwd",
             _setup_chamfer(4, 20000), repeats=5, memory=True),
        Case("meshloss", "knn_points K=1 (1,100000,3) vs (1,100000,3) uniform cube, fwd",
             _setup_knn_large, repeats=1, warmup=0, memory=True, goal="well under 2 GB"),
        Case("meshloss", "sample_points_from_meshes ico_sphere(4), 5000 samples, fwd+bwd",
             _setup_sampling, repeats=30, items=5000, items_unit="samples/s"),
        Case("meshloss", f"mesh_edge_loss ico_sphere(4) ({faces} faces), fwd+bwd",
             _setup_regularizer(mesh_edge_loss), repeats=30),
        Case("meshloss", f"mesh_normal_consistency ico_sphere(4) ({faces} faces), fwd+bwd",
             _setup_regularizer(mesh_normal_consistency), repeats=30),
        Case("meshloss", f"mesh_laplacian_smoothing uniform ico_sphere(4) ({faces} faces), fwd+bwd",
             _setup_regularizer(lambda m: mesh_laplacian_smoothing(m, "uniform")), repeats=30),
        Case("meshloss", f"mesh_laplacian_smoothing cot ico_sphere(4) ({faces} faces), fwd+bwd",
             _setup_regularizer(lambda m: mesh_laplacian_smoothing(m, "cot")), repeats=30),
        Case("meshloss", f"mesh_laplacian_smoothing cotcurv ico_sphere(4) ({faces} faces), fwd+bwd",
             _setup_regularizer(lambda m: mesh_laplacian_smoothing(m, "cotcurv")), repeats=30),
        Case("meshloss", "fit shape iteration 1: ico_sphere(4) vs fish, 5000 samples, SGD step",
             _setup_fit_iteration(0), repeats=50, goal="the slowest; mean < 15 ms: fit row"),
        Case("meshloss", "fit shape iteration 300+: ico_sphere(4) vs fish, 5000 samples, SGD step",
             _setup_fit_iteration(300), repeats=100, goal="< 15 ms"),
        Case("meshloss", "fit shape iteration 1, freed memory kept mapped (as `fit` runs it)",
             _setup_fit_iteration(0, keep_memory=True), repeats=50, goal="the slowest; mean < 15 ms: fit row"),
        Case("meshloss", "fit shape iteration 300+, freed memory kept mapped (as `fit` runs it)",
             _setup_fit_iteration(300, keep_memory=True), repeats=100, goal="< 15 ms"),
    ]
