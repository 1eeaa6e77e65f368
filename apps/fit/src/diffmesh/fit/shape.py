"""``fit shape``: deform spheres into target meshes with 3D losses.

The pipeline of PyTorch3D's tutorial "Deform a source mesh to form a target mesh using 3D
loss functions": each target is centred at its vertex mean and scaled to max |coordinate|
= 1; an ``ico_sphere(level)`` gets per-vertex offsets optimised by SGD on chamfer + edge +
normal consistency + uniform Laplacian, sampling both surfaces afresh every iteration.
Several targets fit together as one batch.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from diffmesh.fit import threads
from diffmesh.fit.cameras_io import CameraSet
from diffmesh.fit.data import resolve_mesh_path
from diffmesh.fit.devices import resolve_device
from diffmesh.fit.gif import save_gif
from diffmesh.fit.imaging import caption, hstack, to_image, vstack
from diffmesh.fit.loop import StepCallback, check_loop_settings, optimize, require
from diffmesh.fit.metrics import FLIPPED_EVAL, eval_chamfer, flipped_fraction, signed_volumes
from diffmesh.fit.optimizers import OPTIMIZERS, Parameterization
from diffmesh.fit.outputs import OutputSet, atomic_path, environment_info, prepare_out_dir
from diffmesh.fit.plot import save_loss_plot
from diffmesh.fit.progress import Progress, announce
from diffmesh.fit.render_views import render_shaded
from diffmesh.meshcore import Meshes
from diffmesh.meshio import ico_sphere, load_obj, save_obj
from diffmesh.meshloss import (
    chamfer_distance,
    mesh_edge_loss,
    mesh_laplacian_smoothing,
    mesh_normal_consistency,
    sample_points_from_meshes,
)

__all__ = ["ShapeConfig", "ShapeResult", "fit_shape", "load_shape_targets"]

_FITTED_COLOR = (0.35, 0.6, 0.9)
_TARGET_COLOR = (0.9, 0.62, 0.35)
_VIEW = {"dist": 2.3, "elev": 20.0, "azim": 90.0}  # the fish side-on, the unit sphere in frame


@dataclass(frozen=True)
class ShapeConfig:
    """Settings of ``fit shape`` (defaults are the tutorial's).

    Attributes:
        targets: OBJ paths or bundled names; one fit per target, all in one batch.
        level: ico_sphere subdivision level of the starting mesh.
        iters: optimisation iterations.
        lr: learning rate (SGD's, or AdamUniform's with ``largesteps``).
        momentum: SGD momentum.
        optimizer: ``"sgd"`` (the tutorial's) or ``"largesteps"`` (see
            :mod:`diffmesh.fit.optimizers`; its defaults are in ``optimizers.DEFAULTS``).
        lambda_: Large Steps' ``M = I + lambda L`` (``largesteps`` only).
        samples: points sampled per mesh and iteration for the chamfer loss.
        w_chamfer, w_edge, w_normal, w_laplacian: loss weights.
        seed: seed of torch's generator (sampling).
        device: ``auto``, ``cpu``, ``cuda[:N]`` or ``mps``.
        out: output folder; None writes nothing.
        plot_every: iterations between GIF frames.
        quiet: no progress bar.
        eval_samples: points per mesh for the final chamfer measure.
        eval_draws: draws averaged for the final chamfer measure.
        frame_size: side of each GIF frame's renders, in pixels.
        callback: called after every iteration with (iteration, losses).
    """

    targets: tuple[str | Path, ...] = ("fish_low_resolution",)
    level: int = 4
    iters: int = 2000
    lr: float = 1.0
    momentum: float = 0.9
    optimizer: str = "sgd"
    lambda_: float = 10.0
    samples: int = 5000
    w_chamfer: float = 1.0
    w_edge: float = 1.0
    w_normal: float = 0.01
    w_laplacian: float = 0.1
    seed: int = 0
    device: str = "auto"
    out: Path | None = None
    plot_every: int = 250
    quiet: bool = False
    eval_samples: int = 10000
    eval_draws: int = 5
    frame_size: int = 160
    callback: StepCallback | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        require(len(self.targets) > 0, "targets: expected at least one target mesh, got none")
        require(self.samples >= 1, f"samples: expected a positive integer, got {self.samples}")
        check_loop_settings(self, ("w_chamfer", "w_edge", "w_normal", "w_laplacian", "lambda_"))
        require(self.optimizer in OPTIMIZERS, f"optimizer: expected one of {OPTIMIZERS}, got {self.optimizer!r}")
        require(self.frame_size >= 16, f"frame_size: expected at least 16 pixels, got {self.frame_size}")


@dataclass
class ShapeResult:
    """What ``fit_shape`` produced.

    Attributes:
        names: one name per target (file stems, made unique).
        fitted: the fitted meshes in each target's original frame.
        fitted_normalized: the same in the normalized frame.
        metrics: the content of metrics.json.
        history: loss term -> per-iteration values (batch means).
        files: the files written (empty when ``out`` is None).
        interrupted: True when Ctrl-C stopped the fit (outputs hold the best-so-far mesh;
            none are written when it stopped before the first iteration completed).
        diverged: True when the fit diverged and stopped (outputs hold the best-so-far mesh).
        diverged_at: the iteration that showed the divergence (-1 if none).
        diverged_loss: its total loss (NaN where not finite or not computed).
    """

    names: list[str]
    fitted: Meshes
    fitted_normalized: Meshes
    metrics: dict[str, Any]
    history: dict[str, list[float]]
    files: list[Path] = field(default_factory=list)
    interrupted: bool = False
    diverged: bool = False
    diverged_at: int = -1
    diverged_loss: float = math.nan


def _unique_names(paths: Sequence[Path]) -> list[str]:
    names: list[str] = []
    for path in paths:
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem) or "target"
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


def load_shape_targets(
    targets: Sequence[str | Path], device: torch.device
) -> tuple[list[str], Meshes, torch.Tensor, torch.Tensor]:
    """Load target meshes and normalize each (centre at the vertex mean, max |coord| = 1).

    Args:
        targets: OBJ paths or bundled names.
        device: where the meshes go.

    Returns:
        ``(names, meshes, centers (N, 3), scales (N,))`` with
        ``original = normalized * scale + center`` per mesh.

    Raises:
        FileNotFoundError: a missing file.
        ValueError: a malformed OBJ, a mesh without faces, one whose vertices coincide, or
            one whose faces all have zero area (nothing to sample).
    """
    paths = [resolve_mesh_path(t, argument="TARGET") for t in targets]
    verts_list, faces_list, centers, scales = [], [], [], []
    for path in paths:
        verts, faces, _ = load_obj(str(path), load_textures=False, device=device)
        faces_idx = faces.verts_idx
        if faces_idx.shape[0] == 0:
            raise ValueError(f"TARGET {str(path)!r}: the mesh has no faces")
        center = verts.mean(0)
        scale = (verts - center).abs().max()
        if not bool(scale > 0) or not bool(torch.isfinite(scale)):
            raise ValueError(f"TARGET {str(path)!r}: all vertices coincide; nothing to fit")
        if not bool(Meshes(verts=[verts], faces=[faces_idx]).faces_areas_packed().sum() > 0):
            raise ValueError(f"TARGET {str(path)!r}: every face has zero area; no surface to fit")
        verts_list.append((verts - center) / scale)
        faces_list.append(faces_idx)
        centers.append(center)
        scales.append(scale)
    meshes = Meshes(verts=verts_list, faces=faces_list)
    return _unique_names(paths), meshes, torch.stack(centers), torch.stack(scales)


def _shape_frame(fitted: Meshes, target_renders: torch.Tensor, iteration: int, size: int) -> Any:
    cams = CameraSet.look_at(_VIEW["dist"], torch.full((len(fitted),), _VIEW["elev"]),
                             torch.full((len(fitted),), _VIEW["azim"]))
    renders = render_shaded(
        fitted.verts_list(), fitted.faces_list(), [_FITTED_COLOR] * len(fitted),
        cams.cameras(None, fitted.device), image_size=size, light_location=_light(),
    )
    rows = [hstack([to_image(renders[i]), to_image(target_renders[i])]) for i in range(len(fitted))]
    return caption(vstack(rows), f"iteration {iteration}   (fitted | target)")


def _light() -> tuple[float, float, float]:
    elev, azim, dist = math.radians(_VIEW["elev"]), math.radians(_VIEW["azim"]), _VIEW["dist"]
    return (dist * math.cos(elev) * math.sin(azim), dist * math.sin(elev), dist * math.cos(elev) * math.cos(azim))


def _write_meshes(outs: OutputSet, names: Sequence[str], fitted_orig: Meshes, fitted_norm: Meshes) -> None:
    """Write each fitted mesh in the target's frame and in the normalized one into the set."""
    faces = fitted_norm.faces_list()
    for i, name in enumerate(names):
        stem = "fitted" if len(names) == 1 else f"fitted_{name}"
        for suffix, mesh in (("", fitted_orig), ("_normalized", fitted_norm)):
            with atomic_path(outs.path(f"{stem}{suffix}.obj")) as tmp:
                save_obj(str(tmp), mesh.verts_list()[i].cpu(), faces[i].cpu())


def fit_shape(config: ShapeConfig) -> ShapeResult:
    """Run the shape pipeline and, when ``config.out`` is set, write its outputs.

    Outputs: ``fitted.obj`` (original frame), ``fitted_normalized.obj``, ``losses.png``,
    ``progress.gif``, ``metrics.json``; with several targets the meshes are
    ``fitted_<name>.obj`` and ``fitted_<name>_normalized.obj``. The files are published
    together (:class:`~diffmesh.fit.outputs.OutputSet`): ``metrics.json`` carries the
    ``run_id`` and lists the set. When Ctrl-C interrupts the fit, or the fit diverges, the
    outputs are written from what was recorded, with the best-so-far mesh; when it stops
    before the first iteration completed, nothing is written and earlier results stay.

    Args:
        config: the settings.

    Returns:
        The fitted meshes, metrics, loss history and written files.
    """
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    names, targets, centers, scales = load_shape_targets(config.targets, device)
    out = prepare_out_dir(config.out) if config.out is not None else None
    n = len(targets)

    source = ico_sphere(config.level, device).extend(n)
    param = Parameterization(source, config.optimizer, lr=config.lr, momentum=config.momentum,
                             lambda_=config.lambda_)
    weights = {"chamfer": config.w_chamfer, "edge": config.w_edge, "normal": config.w_normal,
               "laplacian": config.w_laplacian}

    def step(_: int) -> dict[str, torch.Tensor]:
        mesh = source.offset_verts(param.offsets())
        sample_trg = sample_points_from_meshes(targets, config.samples)
        sample_src = sample_points_from_meshes(mesh, config.samples)
        terms = {
            "chamfer": chamfer_distance(sample_trg, sample_src)[0],
            "edge": mesh_edge_loss(mesh),
            "normal": mesh_normal_consistency(mesh),
            "laplacian": mesh_laplacian_smoothing(mesh, method="uniform"),
        }
        total = sum(weights[k] * v for k, v in terms.items())
        return {"total": total, **terms}  # type: ignore[dict-item]

    frames = []
    target_renders = None
    if out is not None:
        threads.poll()
        announce(f"fit shape: rendering {n} target view{'s' if n > 1 else ''} for progress.gif",
                 enabled=not config.quiet)
        cams = CameraSet.look_at(_VIEW["dist"], torch.full((n,), _VIEW["elev"]), torch.full((n,), _VIEW["azim"]))
        target_renders = render_shaded(
            targets.verts_list(), targets.faces_list(), [_TARGET_COLOR] * n, cams.cameras(None, device),
            image_size=config.frame_size, light_location=_light(),
        )

    def snapshot(iteration: int) -> None:
        if target_renders is not None:
            frames.append(_shape_frame(source.offset_verts(param.offsets().detach()), target_renders,
                                       iteration, config.frame_size))

    label = "fit shape" + (f" ({names[0]})" if n == 1 else f" ({n} targets)")
    with Progress(config.iters, label, enabled=not config.quiet) as progress:
        run = optimize(
            param.params, step, iters=config.iters, lr=config.lr, momentum=config.momentum,
            loss_scale=float(n), progress=progress, snapshot=snapshot if out is not None else None,
            snapshot_every=config.plot_every, callback=config.callback, optimizer=param.optimizer,
        )

    stopped_early = run.interrupted or run.diverged
    with torch.no_grad():
        final_deform = param.offsets(run.best_params[0] if stopped_early else None)
    fitted_norm = source.offset_verts(final_deform).detach()
    fitted_orig = Meshes(
        verts=[v * scales[i] + centers[i] for i, v in enumerate(fitted_norm.verts_list())],
        faces=fitted_norm.faces_list(),
    )
    its = run.iterations / run.seconds if run.seconds > 0 else None
    metrics: dict[str, Any] = {
        "command": "shape",
        "iterations": run.iterations,
        "iterations_requested": config.iters,
        "interrupted": run.interrupted,
        "diverged": run.diverged,
        "diverged_at": run.diverged_at if run.diverged else None,
        "mesh_written": "best-so-far" if stopped_early else "final",
        "best_iteration": run.best_iteration,
        "seconds": run.seconds,
        "snapshot_seconds": run.snapshot_seconds,
        "iterations_per_second": its,
        "initial_losses": {k: (v[0] if v else None) for k, v in run.history.items()},
        "final_losses": {k: (v[-1] if v else None) for k, v in run.history.items()},
        "config": {k: getattr(config, k) for k in (
            "level", "iters", "optimizer", "lr", "momentum", "lambda_", "samples", "w_chamfer", "w_edge",
            "w_normal", "w_laplacian", "seed", "plot_every")},
        "optimizer": param.settings(),
        **environment_info(str(device)),
    }
    result = ShapeResult(names, fitted_orig, fitted_norm, metrics, run.history, interrupted=run.interrupted,
                         diverged=run.diverged, diverged_at=run.diverged_at, diverged_loss=run.diverged_loss)
    if out is None:
        _evaluate(result, targets, centers, scales, config)
        return result
    if run.iterations == 0:  # nothing fitted: earlier results in `out` stay as they were
        return result
    with OutputSet(out) as outs:
        _write_meshes(outs, names, fitted_orig, fitted_norm)
        try:  # a Ctrl-C from here on publishes the meshes with what metrics.json has so far
            announce(f"{label}: evaluating", enabled=not config.quiet)
            _evaluate(result, targets, centers, scales, config)
            if run.iterations > 0:
                save_loss_plot(outs.path("losses.png"), run.history, title=f"{label}: losses")
            if frames:
                save_gif(outs.path("progress.gif"), frames)
        except KeyboardInterrupt:
            result.interrupted = metrics["interrupted"] = True
            metrics["incomplete"] = "interrupted while evaluating and plotting: only the files listed were written"
            result.files = outs.commit(metrics)
            raise
        result.files = outs.commit(metrics)
    return result


def _evaluate(result: ShapeResult, targets: Meshes, centers: torch.Tensor, scales: torch.Tensor,
              config: ShapeConfig) -> None:
    """Add the quality measures (chamfer at fixed samples, volume, finiteness) to the metrics."""
    fitted_norm = result.fitted_normalized
    chamfer = eval_chamfer(fitted_norm, targets, samples=config.eval_samples, draws=config.eval_draws)
    volumes = signed_volumes(fitted_norm)
    flipped = flipped_fraction(fitted_norm, targets)
    counts = fitted_norm.num_verts_per_mesh().tolist()
    result.metrics["chamfer"] = float(chamfer.mean())
    result.metrics["flipped_faces"] = float(flipped.mean())
    result.metrics["flipped_faces_eval"] = FLIPPED_EVAL
    result.metrics["chamfer_eval"] = {"samples": config.eval_samples, "draws": config.eval_draws,
                                      "frame": "normalized"}
    result.metrics["targets"] = [
        {
            "name": result.names[i],
            "target": str(resolve_mesh_path(config.targets[i], argument="TARGET")),
            "chamfer": float(chamfer[i]),
            "signed_volume": float(volumes[i]),
            "flipped_faces": float(flipped[i]),
            "finite": bool(torch.isfinite(v).all()),
            "verts": int(counts[i]),
            "center": centers[i].tolist(),
            "scale": float(scales[i]),
        }
        for i, v in enumerate(fitted_norm.verts_list())
    ]
