"""``fit images``: deform and colour a sphere until its renders match target images.

The pipeline of PyTorch3D's tutorial "Fit a mesh via rendering" (textured part): targets
are 20 views of the normalized cow (dist 2.7, elevation 0..360, azimuth -180..180, point
light at (0, 0, -3), 128 px), or a folder of RGBA images with cameras.json. Per-vertex
offsets and RGB colours of an ``ico_sphere(4)`` are optimised by SGD; each iteration
renders 2 random views with SoftPhongShader (sigma 1e-4, 50 faces per pixel, blur
log(1/1e-4 - 1) * sigma) and sums silhouette and RGB squared errors with the edge, normal
consistency and uniform Laplacian priors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from diffmesh.fit import threads
from diffmesh.fit.data import resolve_mesh_path
from diffmesh.fit.devices import resolve_device
from diffmesh.fit.gif import save_gif
from diffmesh.fit.imaging import caption, grid, hstack, save_png, to_image, vstack
from diffmesh.fit.loop import StepCallback, check_loop_settings, optimize, require
from diffmesh.fit.mesh_files import frame_interval, write_mesh_files
from diffmesh.fit.metrics import (
    FLIPPED_EVAL,
    eval_chamfer,
    flipped_fraction,
    masked_psnr,
    silhouette_iou,
)
from diffmesh.fit.optimizers import OPTIMIZERS, Parameterization
from diffmesh.fit.outputs import OutputSet, atomic_path, environment_info, prepare_out_dir
from diffmesh.fit.plot import save_loss_plot
from diffmesh.fit.progress import Progress, announce
from diffmesh.fit.render_views import (
    ImageDataset,
    load_image_dataset,
    load_normalized_mesh,
    render_soft,
    render_targets,
    soft_settings,
    tutorial_cameras,
)
from diffmesh.fit.targets import portable_source
from diffmesh.meshcore import Meshes, TexturesVertex
from diffmesh.meshio import ico_sphere, save_obj
from diffmesh.meshloss import mesh_edge_loss, mesh_laplacian_smoothing, mesh_normal_consistency
from diffmesh.softrender import PointLights
from PIL import Image

__all__ = ["ImagesConfig", "ImagesResult", "fit_images"]


@dataclass(frozen=True)
class ImagesConfig:
    """Settings of ``fit images`` (defaults are the tutorial's).

    Attributes:
        target_mesh: mesh rendered into the targets (path or bundled name); None with
            ``images`` None means the bundled cow.
        images: folder of RGBA PNGs plus cameras.json, instead of ``target_mesh``.
        views: target views rendered from ``target_mesh``.
        image_size: side of the rendered views, pixels (``target_mesh`` only).
        views_per_iter: views rendered per iteration.
        level: ico_sphere level of the starting mesh.
        iters: optimisation iterations.
        lr: learning rate (SGD's, or the geometry's AdamUniform's with ``largesteps``).
        momentum: SGD momentum.
        optimizer: ``"sgd"`` (the tutorial's) or ``"largesteps"`` (see
            :mod:`diffmesh.fit.optimizers`; its defaults are in ``optimizers.DEFAULTS``).
        lambda_: Large Steps' ``M = I + lambda L`` (``largesteps`` only).
        w_silhouette, w_rgb, w_edge, w_normal, w_laplacian: loss weights.
        sigma: soft rasterization sharpness (blur radius log(1/1e-4 - 1) * sigma).
        faces_per_pixel: faces blended per pixel.
        seed: seed of the view choice.
        device: ``auto``, ``cpu``, ``cuda[:N]`` or ``mps``.
        out: output folder; None writes nothing.
        plot_every: iterations between GIF frames; None gives about 8 frames
            (:func:`~diffmesh.fit.mesh_files.frame_interval`).
        quiet: no progress bar.
        eval_samples: points per mesh for the final chamfer to the target mesh.
        eval_draws: draws averaged for that chamfer.
        eval_dense_samples: points per mesh for the dense chamfer to the target mesh
            (``chamfer_dense``, with a sampling floor 1/20 of the 10k one); 0 skips it.
        eval_dense_draws: draws averaged for the dense chamfer.
        callback: called after every iteration with (iteration, losses).
    """

    target_mesh: str | Path | None = None
    images: Path | None = None
    views: int = 20
    image_size: int = 128
    views_per_iter: int = 2
    level: int = 4
    iters: int = 2000
    lr: float = 1.0
    momentum: float = 0.9
    optimizer: str = "sgd"
    lambda_: float = 10.0
    w_silhouette: float = 1.0
    w_rgb: float = 1.0
    w_edge: float = 1.0
    w_normal: float = 0.01
    w_laplacian: float = 1.0
    sigma: float = 1e-4
    faces_per_pixel: int = 50
    seed: int = 0
    device: str = "auto"
    out: Path | None = None
    plot_every: int | None = None
    quiet: bool = False
    eval_samples: int = 10000
    eval_draws: int = 5
    eval_dense_samples: int = 200_000
    eval_dense_draws: int = 2
    callback: StepCallback | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        require(self.target_mesh is None or self.images is None,
               "target_mesh, images: give one of them, not both")
        require(self.views >= 1, f"views: expected a positive integer, got {self.views}")
        require(self.image_size >= 8, f"image_size: expected at least 8 pixels, got {self.image_size}")
        require(self.views_per_iter >= 1, f"views_per_iter: expected a positive integer, got {self.views_per_iter}")
        check_loop_settings(self, ("w_silhouette", "w_rgb", "w_edge", "w_normal", "w_laplacian", "lambda_"))
        require(self.optimizer in OPTIMIZERS, f"optimizer: expected one of {OPTIMIZERS}, got {self.optimizer!r}")
        require(self.sigma > 0, f"sigma: expected a positive number, got {self.sigma}")
        require(self.faces_per_pixel >= 1, f"faces_per_pixel: expected a positive integer, got {self.faces_per_pixel}")


@dataclass
class ImagesResult:
    """What ``fit_images`` produced.

    Attributes:
        fitted: the fitted mesh with vertex colours (TexturesVertex), in the target mesh's
            original frame (``target_mesh``, or ``images`` made by ``fit render``, which
            records the normalization) or else the cameras' frame.
        metrics: the content of metrics.json.
        history: loss term -> per-iteration values.
        files: the files written (empty when ``out`` is None).
        interrupted: True when Ctrl-C stopped the fit (outputs hold the best-so-far mesh;
            none are written when it stopped before the first iteration completed).
        diverged: True when the fit diverged and stopped (outputs hold the best-so-far mesh).
        diverged_at: the iteration that showed the divergence (-1 if none).
        diverged_loss: its total loss (NaN where not finite or not computed).
    """

    fitted: Meshes
    metrics: dict[str, Any]
    history: dict[str, list[float]]
    files: list[Path] = field(default_factory=list)
    interrupted: bool = False
    diverged: bool = False
    diverged_at: int = -1
    diverged_loss: float = math.nan


def _with_colors(verts: torch.Tensor, faces: torch.Tensor, rgb: torch.Tensor) -> Meshes:
    return Meshes(verts=[verts], faces=[faces], textures=TexturesVertex(verts_features=[rgb]))


@torch.no_grad()
def _render_all(mesh: Meshes, data: ImageDataset, settings, lights, sigma: float, chunk: int = 4) -> torch.Tensor:
    """Soft renders of one mesh from every camera, ``chunk`` views at a time: (V, H, W, 4)."""
    out = []
    for start in range(0, len(data.cameras), chunk):
        threads.poll()
        idx = torch.arange(start, min(start + chunk, len(data.cameras)))
        cams = data.cameras.cameras(idx, mesh.device)
        out.append(render_soft(mesh.extend(int(idx.numel())), cams, lights, settings, sigma=sigma))
    return torch.cat(out)


def _views_sheet(tiles: list[Image.Image], columns: int) -> Image.Image:
    """The views grid under a header row naming each tile's columns: fitted | target."""
    body = grid(tiles, columns=columns, gap=6)
    tile_w = tiles[0].width
    half = (tile_w - 4) // 2  # hstack's gap is 4 pixels
    blank = Image.new("RGB", (half, 1), "white")
    label = hstack([caption(blank, "fitted"), caption(blank, "target")])
    header = hstack([label] * min(columns, len(tiles)), gap=6)
    return vstack([header, body], gap=2)


def fit_images(config: ImagesConfig) -> ImagesResult:
    """Run the images pipeline and, when ``config.out`` is set, write its outputs.

    Outputs: ``fitted.obj``, ``fitted.ply`` and ``fitted.glb`` (vertex colours),
    ``losses.png``, ``progress.gif`` (fitted | target for a fixed view), ``views.png``
    (every view as fitted | target, as the GIF, under a header naming the columns) and
    ``metrics.json`` (silhouette IoU mean and worst, PSNR over the object, chamfer to the
    target mesh when one was given). With a target mesh (or images from
    ``fit render``, whose cameras.json records the normalization), ``fitted.obj`` is in the
    mesh's original frame and ``fitted_normalized.obj`` in the rendered frame.

    Args:
        config: the settings.

    Returns:
        The fitted mesh, metrics, loss history and written files.
    """
    device = resolve_device(config.device)
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    target = center = None
    scale = 1.0
    if config.images is not None:
        data = load_image_dataset(config.images, device)
        source_path = Path(config.images)
        if data.normalization is not None:  # images of a normalized mesh: write it back in its frame
            center, scale = data.normalization
    else:
        path = resolve_mesh_path(config.target_mesh or "cow", argument="--target-mesh")
        target, center, scale = load_normalized_mesh(path, device)
        cameras = tutorial_cameras(config.views)
        threads.poll()
        announce(f"fit images: rendering {config.views} target view{'s' if config.views > 1 else ''} "
                 f"of {path.name} at {config.image_size} px", enabled=not config.quiet)
        rgb, sil = render_targets(target, cameras, config.image_size, sigma=config.sigma,
                                  faces_per_pixel=config.faces_per_pixel)
        data = ImageDataset(cameras, rgb, sil, [f"view_{i:03d}" for i in range(config.views)])
        source_path = path
    out = prepare_out_dir(config.out) if config.out is not None else None
    source_name = portable_source(source_path, out)
    plot_every = config.plot_every if config.plot_every is not None else frame_interval(config.iters)
    num_views = len(data.cameras)
    per_iter = min(config.views_per_iter, num_views)
    size = tuple(data.rgb.shape[1:3])
    settings = soft_settings(size if size[0] != size[1] else size[0], config.sigma, config.faces_per_pixel)
    lights = PointLights(device=device, location=[list(data.light_location)])

    source = ico_sphere(config.level, device)
    faces = source.faces_packed()
    colors = torch.full((1, source.verts_packed().shape[0], 3), 0.5, device=device, requires_grad=True)
    param = Parameterization(source, config.optimizer, lr=config.lr, momentum=config.momentum,
                             lambda_=config.lambda_, extra=[colors])
    weights = {"silhouette": config.w_silhouette, "rgb": config.w_rgb, "edge": config.w_edge,
               "normal": config.w_normal, "laplacian": config.w_laplacian}

    def step(_: int) -> dict[str, torch.Tensor]:
        mesh = source.offset_verts(param.offsets())
        idx = torch.randperm(num_views, generator=generator)[:per_iter]
        mesh.textures = TexturesVertex(verts_features=colors)  # as the tutorial; topology stays shared
        colored = mesh.extend(per_iter)
        images = render_soft(colored, data.cameras.cameras(idx, device), lights, settings, sigma=config.sigma)
        idx_d = idx.to(device)
        terms = {
            "silhouette": ((images[..., 3] - data.silhouette[idx_d]) ** 2).mean(),
            "rgb": ((images[..., :3] - data.rgb[idx_d]) ** 2).mean(),
            "edge": mesh_edge_loss(mesh),
            "normal": mesh_normal_consistency(mesh),
            "laplacian": mesh_laplacian_smoothing(mesh, method="uniform"),
        }
        total = sum(weights[k] * v for k, v in terms.items())
        return {"total": total, **terms}  # type: ignore[dict-item]

    fixed_view = 1 if num_views > 1 else 0
    frames = []
    zoom = max(1, 256 // max(size))

    def snapshot(iteration: int) -> None:
        mesh = _with_colors(source.verts_packed() + param.offsets().detach(), faces, colors.detach()[0].clamp(0, 1))
        cams = data.cameras.cameras([fixed_view], device)
        pred = render_soft(mesh, cams, lights, settings, sigma=config.sigma)[0]
        pair = [to_image(pred[..., :3]), to_image(data.rgb[fixed_view])]
        pair = [im.resize((im.width * zoom, im.height * zoom)) for im in pair]
        frames.append(caption(hstack(pair), f"iteration {iteration}   (fitted | target)"))

    name = source_path.resolve().stem or "images"
    label = f"fit images ({name})"
    with Progress(config.iters, label, enabled=not config.quiet) as progress:
        run = optimize(
            param.params, step, iters=config.iters, lr=config.lr, momentum=config.momentum,
            progress=progress, snapshot=snapshot if out is not None else None,
            snapshot_every=plot_every, callback=config.callback, optimizer=param.optimizer,
        )

    stopped_early = run.interrupted or run.diverged
    final_geometry, final_colors = run.best_params if stopped_early else (None, colors.detach())
    with torch.no_grad():
        final_deform = param.offsets(final_geometry)
    verts_norm = source.verts_packed() + final_deform
    vert_rgb = final_colors[0].clamp(0, 1)
    fitted_norm = _with_colors(verts_norm, faces, vert_rgb)
    verts_out = verts_norm * scale + (center if center is not None else 0.0)
    metrics: dict[str, Any] = {
        "command": "images",
        "source": source_name,
        "views": num_views,
        "image_size": list(size),
        "iterations": run.iterations,
        "iterations_requested": config.iters,
        "interrupted": run.interrupted,
        "diverged": run.diverged,
        "diverged_at": run.diverged_at if run.diverged else None,
        "mesh_written": "best-so-far" if stopped_early else "final",
        "best_iteration": run.best_iteration,
        "seconds": run.seconds,
        "snapshot_seconds": run.snapshot_seconds,
        "iterations_per_second": run.iterations / run.seconds if run.seconds > 0 else None,
        "final_losses": {k: (v[-1] if v else None) for k, v in run.history.items()},
        "finite": bool(torch.isfinite(verts_norm).all()),
        "config": {k: getattr(config, k) for k in (
            "views_per_iter", "level", "iters", "optimizer", "lr", "momentum", "lambda_", "w_silhouette",
            "w_rgb", "w_edge", "w_normal", "w_laplacian", "sigma", "faces_per_pixel", "seed")}
        | {"plot_every": plot_every},
        "optimizer": param.settings(),
        **environment_info(str(device)),
    }
    fitted = _with_colors(verts_out, faces, vert_rgb)
    result = ImagesResult(fitted, metrics, run.history, interrupted=run.interrupted, diverged=run.diverged,
                          diverged_at=run.diverged_at, diverged_loss=run.diverged_loss)

    def evaluate() -> torch.Tensor:
        renders = _render_all(fitted_norm, data, settings, lights, config.sigma)
        iou = silhouette_iou(renders[..., 3], data.silhouette)
        metrics.update({
            "iou_mean": float(iou.mean()),
            "iou_worst": float(iou.min()),
            "iou_per_view": iou.tolist(),
            "iou_threshold": 0.5,
            "psnr": masked_psnr(renders[..., :3], data.rgb, data.silhouette > 0.5),
            "psnr_mask": "target silhouette > 0.5",
        })
        if target is not None:
            fitted_geom = Meshes(verts=[verts_norm], faces=[faces])
            target_geom = Meshes(verts=target.verts_list(), faces=target.faces_list())
            metrics["chamfer"] = float(
                eval_chamfer(fitted_geom, target_geom, samples=config.eval_samples, draws=config.eval_draws)[0]
            )
            metrics["chamfer_eval"] = {"samples": config.eval_samples, "draws": config.eval_draws,
                                       "frame": "normalized"}
            if config.eval_dense_samples > 0:
                metrics["chamfer_dense"] = float(eval_chamfer(
                    fitted_geom, target_geom, samples=config.eval_dense_samples, draws=config.eval_dense_draws
                )[0])
                metrics["chamfer_dense_eval"] = {"samples": config.eval_dense_samples,
                                                 "draws": config.eval_dense_draws, "frame": "normalized"}
            metrics["flipped_faces"] = float(flipped_fraction(fitted_geom, target_geom)[0])
            metrics["flipped_faces_eval"] = FLIPPED_EVAL
        return renders

    if out is None:
        evaluate()
        return result
    if run.iterations == 0:  # nothing fitted: earlier results in `out` stay as they were
        return result
    with OutputSet(out) as outs:
        write_mesh_files(outs, "fitted", verts_out, faces, vert_rgb)
        if center is not None:
            with atomic_path(outs.path("fitted_normalized.obj")) as tmp:
                save_obj(str(tmp), verts_norm.detach().cpu(), faces.cpu(), verts_colors=vert_rgb.detach().cpu())
        try:  # a Ctrl-C from here on publishes the meshes with what metrics.json has so far
            announce(f"{label}: evaluating (rendering the fitted mesh from {num_views} views)",
                     enabled=not config.quiet)
            renders = evaluate()
            save_loss_plot(outs.path("losses.png"), run.history, title=f"{label}: losses")
            if frames:
                save_gif(outs.path("progress.gif"), frames)
            tiles = [
                caption(hstack([to_image(renders[i, ..., :3]), to_image(data.rgb[i])]),
                        f"{data.names[i]}  IoU {metrics['iou_per_view'][i]:.3f}")
                for i in range(num_views)
            ]
            save_png(outs.path("views.png"), _views_sheet(tiles, columns=4))
        except KeyboardInterrupt:
            result.interrupted = metrics["interrupted"] = True
            metrics["incomplete"] = "interrupted while evaluating and plotting: only the files listed were written"
            result.files = outs.commit(metrics)
            raise
        result.files = outs.commit(metrics)
    return result
