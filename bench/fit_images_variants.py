"""`fit images --optimizer largesteps` variants that the command line does not offer.

Measures the variants behind the fit README's tuning table for `fit images`: coarse to fine
(the sphere's level raised during the fit), an exponential average of the vertices over the
last iterations, and a cosine learning-rate decay, beside the plain settings. With none of
them it is `fit images --optimizer largesteps` iteration for iteration (same view draws, same
steps, bit-identical meshes at the same settings and seed); the penalties are computed only
where their weight is not 0. One run per call, one thread, the cow from 20 views at 128 px;
prints one JSON line (IoU mean / worst over the views, chamfer to the cow with 10k and 200k
samples as metrics.json's ``chamfer`` and ``chamfer_dense``, flipped faces), the final mesh
and, with ``ema_start``, the averaged one:

    uv run python bench/fit_images_variants.py '{"seed": 2, "lam": 3, "w_normal": 0.01,
        "w_laplacian": 1.0}'
    uv run python bench/fit_images_variants.py '{"seed": 2, "lam": 5, "levels": [2, 3, 4],
        "upsample_at": [250, 750]}'

Spec keys (defaults): ``seed`` (0), ``iters`` (2000), ``lr`` (0.03), ``lam`` (5.0),
``w_silhouette`` (10), ``w_normal`` (0), ``w_laplacian`` (0), ``levels`` ([4]) with
``upsample_at`` (the iterations at which the next level starts; midpoint subdivision of the
current mesh, which gives ``ico_sphere``'s faces of that level; the vertex colours of a new
vertex are its edge's mean; the optimizers start afresh), ``ema_start`` and ``ema`` (decay,
0.99), ``cosine`` ([start fraction, final factor], as ``fit shape --lr-schedule cosine``).
"""

from __future__ import annotations

import json
import sys
import time

import torch
from diffmesh.fit.data import resolve_mesh_path
from diffmesh.fit.metrics import eval_chamfer, flipped_fraction, silhouette_iou
from diffmesh.fit.optimizers import Parameterization, lr_factor
from diffmesh.fit.render_views import (
    ImageDataset,
    load_normalized_mesh,
    render_soft,
    render_targets,
    soft_settings,
    tutorial_cameras,
)
from diffmesh.meshcore import Meshes, TexturesVertex
from diffmesh.meshio import ico_sphere
from diffmesh.meshio.ico_sphere import subdivide_sphere
from diffmesh.meshloss import mesh_laplacian_smoothing, mesh_normal_consistency
from diffmesh.softrender import PointLights

SIGMA = 1e-4
FACES_PER_PIXEL = 50


def subdivide(verts: torch.Tensor, faces: torch.Tensor, colors: torch.Tensor):
    """Midpoint subdivision in ``ico_sphere``'s vertex order: ``(V + E, 3)`` verts, ``(4F, 3)``
    faces and ``(V + E, 3)`` colours, a new vertex and its colour the mean of its edge's."""
    a, b, c = faces.unbind(1)
    edges = torch.stack([torch.stack([a, b], 1), torch.stack([b, c], 1), torch.stack([c, a], 1)], 1)
    unique = torch.unique(edges.sort(dim=2).values.view(-1, 2), dim=0)
    _, new_faces = subdivide_sphere(torch.ones(verts.shape[0], 3), faces)  # topology only
    return (torch.cat([verts, verts[unique].mean(1)]), new_faces,
            torch.cat([colors, colors[unique].mean(1)]))


def evaluate(verts, faces, colors, target, data, settings, lights) -> dict:
    mesh = Meshes(verts=[verts], faces=[faces], textures=TexturesVertex(verts_features=[colors.clamp(0, 1)]))
    renders = torch.cat([
        render_soft(mesh.extend(4), data.cameras.cameras(torch.arange(i, i + 4), verts.device), lights,
                    settings, sigma=SIGMA)
        for i in range(0, len(data.cameras), 4)
    ])
    iou = silhouette_iou(renders[..., 3], data.silhouette)
    fitted = Meshes(verts=[verts], faces=[faces])
    goal = Meshes(verts=target.verts_list(), faces=target.faces_list())
    return {
        "iou_mean": round(float(iou.mean()), 4),
        "iou_worst": round(float(iou.min()), 4),
        "chamfer": float(eval_chamfer(fitted, goal, samples=10000, draws=5)[0]),
        "chamfer_dense": float(eval_chamfer(fitted, goal, samples=200_000, draws=2)[0]),
        "flipped_faces": round(float(flipped_fraction(fitted, goal)[0]), 4),
    }


def run(spec: dict) -> dict:
    torch.set_num_threads(1)
    seed, iters = spec.get("seed", 0), spec.get("iters", 2000)
    levels, upsample_at = spec.get("levels", [4]), spec.get("upsample_at", [])
    if len(upsample_at) != len(levels) - 1:
        raise ValueError("upsample_at: expected one iteration per level after the first")
    device = torch.device("cpu")
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    target, _, _ = load_normalized_mesh(resolve_mesh_path("cow", argument="cow"), device)
    cameras = tutorial_cameras(20)
    rgb, sil = render_targets(target, cameras, 128, sigma=SIGMA, faces_per_pixel=FACES_PER_PIXEL)
    data = ImageDataset(cameras, rgb, sil, [f"view_{i:03d}" for i in range(20)])
    settings = soft_settings(128, SIGMA, FACES_PER_PIXEL)
    lights = PointLights(device=device, location=[list(data.light_location)])
    weights = {"normal": spec.get("w_normal", 0.0), "laplacian": spec.get("w_laplacian", 0.0)}

    def start(verts, faces, colors):
        source = Meshes(verts=[verts], faces=[faces])
        colors = colors[None].clone().requires_grad_(True)
        param = Parameterization(source, "largesteps", lr=spec.get("lr", 0.03), momentum=0.9,
                                 lambda_=spec.get("lam", 5.0), extra=[colors])
        return source, param, colors

    sphere = ico_sphere(levels[0])
    faces = sphere.faces_packed()
    source, param, colors = start(sphere.verts_packed(), faces, torch.full((sphere.verts_packed().shape[0], 3), 0.5))
    average = None
    began = time.perf_counter()
    for iteration in range(iters):
        if iteration in upsample_at:
            with torch.no_grad():
                verts = source.verts_packed() + param.offsets()
                for _ in range(levels[upsample_at.index(iteration) + 1] - levels[upsample_at.index(iteration)]):
                    verts, faces, new_colors = subdivide(verts, faces, colors.detach()[0])
                    colors = new_colors[None]
            source, param, colors = start(verts, faces, colors[0])
        if "cosine" in spec:
            start_fraction, final = spec["cosine"]
            param.set_lr_factor(lr_factor("cosine", iteration, iters, start=start_fraction, final=final))
        param.optimizer.zero_grad()
        mesh = source.offset_verts(param.offsets())
        views = torch.randperm(20, generator=generator)[:2]
        mesh.textures = TexturesVertex(verts_features=colors)
        images = render_soft(mesh.extend(2), data.cameras.cameras(views, device), lights, settings, sigma=SIGMA)
        loss = (spec.get("w_silhouette", 10.0) * ((images[..., 3] - data.silhouette[views]) ** 2).mean()
                + ((images[..., :3] - data.rgb[views]) ** 2).mean())
        if weights["normal"]:
            loss = loss + weights["normal"] * mesh_normal_consistency(mesh)
        if weights["laplacian"]:
            loss = loss + weights["laplacian"] * mesh_laplacian_smoothing(mesh, method="uniform")
        loss.backward()
        param.optimizer.step()
        if iteration >= spec.get("ema_start", iters):
            with torch.no_grad():
                verts = source.verts_packed() + param.offsets()
                decay = spec.get("ema", 0.99)
                average = verts.clone() if average is None else average.mul_(decay).add_(verts, alpha=1 - decay)
    seconds = time.perf_counter() - began
    with torch.no_grad():
        final_colors = colors.detach()[0]
        rows = {"final": evaluate(source.verts_packed() + param.offsets(), faces, final_colors, target, data,
                                  settings, lights)}
        if average is not None:
            rows["averaged"] = evaluate(average, faces, final_colors, target, data, settings, lights)
    return {"spec": spec, **rows, "seconds": round(seconds)}


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {})))
