"""softrender benchmarks: the fitting tutorial's training renders, a 512 px fish, a 1M-face hard render."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch
from common import Case, bench_device
from diffmesh.meshcore import Meshes, TexturesVertex
from diffmesh.meshio import ico_sphere, load_obj
from diffmesh.softrender import (
    BlendParams,
    FoVPerspectiveCameras,
    HardPhongShader,
    MeshRasterizer,
    MeshRenderer,
    PointLights,
    RasterizationSettings,
    SoftPhongShader,
    SoftSilhouetteShader,
    look_at_view_transform,
)

SIGMA = 1e-4
BLUR = math.log(1.0 / 1e-4 - 1.0) * SIGMA  # the tutorial's blur: about 1.9 px at 128 px
FISH = Path(__file__).resolve().parents[1] / "apps" / "fit" / "src" / "diffmesh" / "fit" / "data" / "fish" / "fish.obj"


def _soft_render(verts: torch.Tensor, faces: torch.Tensor, size: int, silhouette: bool) -> Callable[[], object]:
    """A training step's render: fresh Meshes from (verts + offsets), render, backward of the sum."""
    device = bench_device()
    verts, faces = verts.to(device), faces.to(device)
    R, T = look_at_view_transform(2.7, 20.0, 35.0)
    cameras = FoVPerspectiveCameras(R=R, T=T, device=device)
    settings = RasterizationSettings(image_size=size, blur_radius=BLUR, faces_per_pixel=50, perspective_correct=False)
    blend = BlendParams(sigma=SIGMA, gamma=SIGMA)
    if silhouette:
        shader = SoftSilhouetteShader(blend)
    else:
        lights = PointLights(location=[[0.0, 0.0, -3.0]], device=device)
        shader = SoftPhongShader(device=device, cameras=cameras, lights=lights, blend_params=blend)
    renderer = MeshRenderer(MeshRasterizer(cameras, settings), shader)
    offsets = torch.zeros_like(verts, requires_grad=True)
    colors = torch.full_like(verts, 0.5, requires_grad=True)

    def step() -> None:
        mesh = Meshes([verts + offsets], [faces], textures=TexturesVertex([colors]))
        renderer(mesh).sum().backward()

    return step


def _sphere(level: int) -> tuple[torch.Tensor, torch.Tensor]:
    sphere = ico_sphere(level)
    return sphere.verts_packed(), sphere.faces_packed()


def _fish() -> tuple[torch.Tensor, torch.Tensor]:
    verts, faces, _ = load_obj(FISH, load_textures=False)
    verts = verts - verts.mean(0)
    return verts / verts.abs().max(), faces.verts_idx


def _hard_render(level: int, size: int) -> Callable[[], object]:
    device = bench_device()
    verts, faces = _sphere(level)
    mesh = Meshes([verts.to(device)], [faces.to(device)])
    R, T = look_at_view_transform(2.7, 20.0, 35.0)
    cameras = FoVPerspectiveCameras(R=R, T=T, device=device)
    settings = RasterizationSettings(image_size=size, blur_radius=0.0, faces_per_pixel=1)
    renderer = MeshRenderer(MeshRasterizer(cameras, settings), HardPhongShader(device=device, cameras=cameras))

    def render() -> None:
        with torch.no_grad():
            renderer(mesh)

    return render


def _phong_terms(hand_written: bool) -> Callable[[], object]:
    """The Phong terms of the tutorial's shaded pairs (60k points, point light, shininess 64),
    fwd+bwd: ``lighting.phong_terms`` (hand-written backward) or the same formula in autograd."""
    from diffmesh.softrender.lighting import phong_terms

    g = torch.Generator().manual_seed(0)
    normals = torch.randn(60_000, 3, generator=g).requires_grad_()
    points = torch.randn(60_000, 3, generator=g).requires_grad_()
    light, camera = torch.tensor([0.0, 0.0, -3.0]), torch.tensor([1.0, 0.8, -2.0])

    def autograd_terms() -> tuple[torch.Tensor, torch.Tensor]:
        n = normals / normals.norm(dim=-1, keepdim=True).clamp_min(1e-6)
        d = light - points
        d = d / d.norm(dim=-1, keepdim=True).clamp_min(1e-6)
        v = camera - points
        v = v / v.norm(dim=-1, keepdim=True).clamp_min(1e-6)
        cos = (n * d).sum(-1)
        alpha = (v * (2.0 * cos[:, None] * n - d)).sum(-1)
        spec = torch.where((cos > 0) & (alpha > 0), alpha, 0.0) ** 64
        return cos.clamp_min(0.0), spec

    def step() -> None:
        if hand_written:
            diffuse, spec = phong_terms(normals, light, points, camera, point_light=True, shininess=64.0)
        else:
            diffuse, spec = autograd_terms()
        (diffuse.sum() + spec.sum()).backward()

    return step


def cases() -> list[Case]:
    return [
        Case("softrender", "SoftPhong ico_sphere(4) 128px K=50 (tutorial), fwd+bwd",
             lambda: _soft_render(*_sphere(4), 128, silhouette=False), repeats=15, memory=True,
             goal="< 50 ms, < 100 MB"),
        Case("softrender", "SoftSilhouette ico_sphere(4) 128px K=50, fwd+bwd",
             lambda: _soft_render(*_sphere(4), 128, silhouette=True), repeats=15, goal="< 25 ms"),
        Case("softrender", "SoftPhong fish (21,568 faces) 512px K=50, fwd+bwd",
             lambda: _soft_render(*_fish(), 512, silhouette=False), repeats=3, warmup=1, memory=True,
             goal="< 1 GB"),
        Case("softrender", "HardPhong ico_sphere(8) (1.3M faces) 512px K=1, fwd",
             lambda: _hard_render(8, 512), repeats=3, warmup=1, items=20 * 4**8, items_unit="faces/s"),
        Case("softrender", "Phong terms, 60k points, fwd+bwd: hand-written backward (lighting.py)",
             lambda: _phong_terms(True), repeats=15),
        Case("softrender", "Phong terms, 60k points, fwd+bwd: the same formula in autograd",
             lambda: _phong_terms(False), repeats=15),
    ]
