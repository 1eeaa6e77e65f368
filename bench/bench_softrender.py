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


def _tutorial_pairs() -> tuple[torch.Tensor, torch.Tensor, object, object]:
    """The tutorial render's face vertices (F, 3, 3) as a leaf, face_to_mesh, options, mesh."""
    from diffmesh.softrender import Materials  # noqa: F401  (the shaders' defaults)

    verts, faces = _sphere(4)
    mesh = Meshes([verts], [faces], textures=TexturesVertex([torch.full_like(verts, 0.5)]))
    R, T = look_at_view_transform(2.7, 20.0, 35.0)
    cameras = FoVPerspectiveCameras(R=R, T=T)
    settings = RasterizationSettings(image_size=128, blur_radius=BLUR, faces_per_pixel=50, perspective_correct=False)
    rasterizer = MeshRasterizer(cameras, settings)
    fv = rasterizer.transform(mesh)[mesh.faces_packed()].detach().requires_grad_()
    return fv, mesh.faces_packed_to_mesh_idx(), settings.resolve(cameras), mesh


def _raster_autograd(fv: torch.Tensor, face_to_mesh: torch.Tensor, o: object) -> tuple[torch.Tensor, ...]:
    """The rasterizer's per-pair values in plain autograd (tutorial options: no perspective
    correction, clipped barycentrics): the same pairs, the same formulas."""
    from diffmesh.softrender.raster.kernel import ndc_pixel_centers, select_pairs

    g = select_pairs(fv.detach(), face_to_mesh, o.image_size, o.blur_radius, o.faces_per_pixel,
                     o.perspective_correct, o.clip_barycentric_coords, o.cull_backfaces, need_grad=False)
    (h, w), v = o.image_size, fv.index_select(0, g.face)
    local = g.pix % (h * w)
    px = ndc_pixel_centers(w, h, fv.dtype, fv.device)[local % w]
    py = ndc_pixel_centers(h, w, fv.dtype, fv.device)[local // w]
    (x0, y0, z0), (x1, y1, z1), (x2, y2, z2) = (v[:, i].unbind(1) for i in range(3))
    area = (x2 - x0) * (y1 - y0) - (y2 - y0) * (x1 - x0) + 1e-8
    b = torch.stack(((px - x1) * (y2 - y1) - (py - y1) * (x2 - x1), (px - x2) * (y0 - y2) - (py - y2) * (x0 - x2),
                     (px - x0) * (y1 - y0) - (py - y0) * (x1 - x0)), dim=1) / area[:, None]
    c = b.clamp(min=0.0)
    bary = c / c.sum(1, keepdim=True).clamp(min=1e-5)
    zbuf = bary[:, 0] * z0 + bary[:, 1] * z1 + bary[:, 2] * z2

    def seg(ax: torch.Tensor, ay: torch.Tensor, bx: torch.Tensor, by: torch.Tensor) -> torch.Tensor:
        dx, dy = bx - ax, by - ay
        s = (((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0)
        return (ax + s * dx - px) ** 2 + (ay + s * dy - py) ** 2

    dist = torch.minimum(torch.minimum(seg(x0, y0, x1, y1), seg(x0, y0, x2, y2)), seg(x1, y1, x2, y2))
    dists = torch.where(b.min(1).values > 0, -dist, dist)
    return bary, zbuf, dists


def _raster_ab(hand_written: bool) -> Callable[[], object]:
    """Rasterizer fwd+bwd of the tutorial's faces: ``raster/function.py`` or plain autograd."""
    from diffmesh.softrender.raster.function import rasterize_pairs

    fv, face_to_mesh, options, _ = _tutorial_pairs()

    def step() -> None:
        if hand_written:
            bary, zbuf, dists, _, _ = rasterize_pairs(fv, face_to_mesh, options)
        else:
            bary, zbuf, dists = _raster_autograd(fv, face_to_mesh, options)
        (bary[:, 0].sum() + zbuf.sum() + dists.sum()).backward()

    return step


def _blend_ab(hand_written: bool) -> Callable[[], object]:
    """Soft blend fwd+bwd of the tutorial's pairs: ``blending.softmax_blend`` or plain autograd."""
    import torch.nn.functional as F
    from diffmesh.softrender.blending import blend_weights, softmax_blend
    from diffmesh.softrender.raster import rasterize_faces

    fv, face_to_mesh, options, _ = _tutorial_pairs()
    pairs = rasterize_faces(fv, face_to_mesh, 1, options).pairs
    blend = BlendParams(sigma=SIGMA, gamma=SIGMA)
    weights = blend_weights(pairs, blend, 1.0, 100.0)
    colors = torch.rand(weights.needed.shape[0], 3, generator=torch.Generator().manual_seed(0)).requires_grad_()
    zbuf, dists = pairs.zbuf.detach().requires_grad_(), pairs.dists.detach().requires_grad_()
    pix, npix, eps = pairs.pix, pairs.num_pixels, 1e-10

    def autograd_blend() -> torch.Tensor:
        prob = torch.sigmoid(-dists / SIGMA)
        z_inv = (100.0 - zbuf) / 99.0
        z_max = z_inv.new_zeros(npix).scatter_reduce(0, pix, z_inv, "amax").clamp(min=eps)
        w = prob * torch.exp((z_inv - z_max[pix]) / SIGMA)
        delta = torch.exp((eps - z_max) / SIGMA).clamp(min=eps)
        wq, pq = w[weights.needed], pix[weights.needed]
        num = colors.new_zeros(npix, 3).index_add(0, pq, wq[:, None] * colors) + delta[:, None]
        rgb = num / (w.new_zeros(npix).index_add(0, pix, w) + delta)[:, None]
        alpha = 1.0 - torch.exp(w.new_zeros(npix).index_add(0, pix, F.logsigmoid(dists / SIGMA)))
        return torch.cat((rgb, alpha[:, None]), dim=1)

    def step() -> None:
        if hand_written:
            from diffmesh.softrender.fragments import RasterPairs

            p = RasterPairs(pix, pairs.face, pairs.bary, zbuf, dists, 1, pairs.image_size, pairs.faces_per_pixel)
            out = softmax_blend(p, weights, colors, blend)
        else:
            out = autograd_blend()
        out.sum().backward()

    return step


def _interpolate_ab(hand_written: bool) -> Callable[[], object]:
    """Interpolation of positions, normals and colours at the tutorial's shaded pairs, fwd+bwd:
    ``fragments.interpolate_vertex_groups`` or ``(bary[..., None] * attrs[corners]).sum(1)``."""
    from diffmesh.softrender.blending import blend_weights
    from diffmesh.softrender.fragments import interpolate_vertex_groups
    from diffmesh.softrender.raster import rasterize_faces

    fv, face_to_mesh, options, mesh = _tutorial_pairs()
    pairs = rasterize_faces(fv.detach(), face_to_mesh, 1, options).pairs
    idx = blend_weights(pairs, BlendParams(sigma=SIGMA, gamma=SIGMA)).needed
    corners = mesh.faces_packed().index_select(0, pairs.face.index_select(0, idx))
    bary = pairs.bary.index_select(0, idx).requires_grad_()
    attrs = [t.detach().clone().requires_grad_() for t in (mesh.verts_packed(), mesh.verts_normals_packed(),
                                                           mesh.textures.verts_features_packed())]

    def step() -> None:
        if hand_written:
            outs = interpolate_vertex_groups(corners, bary, *attrs)
        else:
            outs = [(bary[:, :, None] * a[corners]).sum(1) for a in attrs]
        sum(o.sum() for o in outs).backward()

    return step


AB_CASES = {"rasterizer (raster/function.py)": _raster_ab, "soft blend (blending.py)": _blend_ab,
            "pair interpolation (fragments.py)": _interpolate_ab, "Phong terms (lighting.py)": _phong_terms}


def ab_backward(rounds: int = 15) -> None:
    """Each hand-written backward against the same formula in autograd, interleaved in one
    process (alternating order), medians and ratios."""
    import statistics
    import time

    for name, make in AB_CASES.items():
        fns = {True: make(True), False: make(False)}
        times: dict[bool, list[float]] = {True: [], False: []}
        for fn in fns.values():
            fn(), fn()  # warm-up
        for r in range(rounds):
            for variant in (True, False) if r % 2 == 0 else (False, True):
                start = time.perf_counter()
                fns[variant]()
                times[variant].append(time.perf_counter() - start)
        hand, auto = statistics.median(times[True]), statistics.median(times[False])
        print(f"{name}: hand-written {hand * 1e3:.1f} ms, autograd {auto * 1e3:.1f} ms, autograd/hand {auto / hand:.2f}x")


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
        *(Case("softrender", f"{name} of the tutorial render, fwd+bwd: {label}", (lambda m=make, h=h: m(h)),
               repeats=15)
          for name, make in AB_CASES.items() if make is not _phong_terms
          for h, label in ((True, "hand-written backward"), (False, "the same formula in autograd"))),
    ]


if __name__ == "__main__":  # python bench/bench_softrender.py [threads]: the interleaved A/B
    import sys

    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    ab_backward()
