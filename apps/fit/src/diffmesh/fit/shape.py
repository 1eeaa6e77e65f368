"""``fit shape``: deform spheres into target meshes with 3D losses.

The pipeline of PyTorch3D's tutorial "Deform a source mesh to form a target mesh using 3D
loss functions": each target is centred at its vertex mean and scaled to max |coordinate|
= 1; an ``ico_sphere(level)`` gets per-vertex offsets optimised by SGD on chamfer + edge +
normal consistency + uniform Laplacian, sampling both surfaces afresh every iteration.
A target may also be a point cloud (PLY without faces, XYZ, PTS): its samples are then
drawn from its points (see :mod:`diffmesh.fit.targets`). Several targets fit together as
one batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from diffmesh.fit import threads
from diffmesh.fit.cameras_io import CameraSet
from diffmesh.fit.devices import resolve_device
from diffmesh.fit.gif import save_gif
from diffmesh.fit.imaging import caption, hstack, to_image, vstack
from diffmesh.fit.loop import StepCallback, check_loop_settings, optimize, require
from diffmesh.fit.mesh_files import frame_interval, write_mesh_files
from diffmesh.fit.metrics import FLIPPED_EVAL, eval_chamfer, flipped_fraction, signed_volumes
from diffmesh.fit.optimizers import LR_SCHEDULES, OPTIMIZERS, Parameterization, lr_factor
from diffmesh.fit.outputs import OutputSet, atomic_path, environment_info, prepare_out_dir
from diffmesh.fit.plot import save_loss_plot
from diffmesh.fit.progress import Progress, announce
from diffmesh.fit.render_points import render_points
from diffmesh.fit.render_views import render_shaded
from diffmesh.fit.targets import ShapeTargets, eval_chamfer_targets, load_targets, portable_source
from diffmesh.meshcore import Meshes
from diffmesh.meshio import ico_sphere, save_obj
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
        targets: mesh files (OBJ, PLY, OFF), point-cloud files (PLY without faces, XYZ,
            PTS) or bundled names; one fit per target, all in one batch.
        level: ico_sphere subdivision level of the starting mesh.
        iters: optimisation iterations.
        lr: learning rate (SGD's, or AdamUniform's with ``largesteps``).
        momentum: SGD momentum.
        optimizer: ``"sgd"`` (the tutorial's) or ``"largesteps"`` (see
            :mod:`diffmesh.fit.optimizers`; its defaults are in ``optimizers.DEFAULTS``).
        lr_schedule: ``"constant"`` or ``"cosine"``: the geometry's learning rate falls
            from ``lr`` to ``lr_final * lr`` along a half cosine over the iterations after
            ``lr_decay_start * iters`` (:func:`~diffmesh.fit.optimizer_defaults.lr_factor`).
        lr_decay_start: fraction of the iterations before the decay, in [0, 1).
        lr_final: the last iteration's learning rate as a fraction of ``lr``, in (0, 1].
        lambda_: Large Steps' ``M = I + lambda L`` (``largesteps`` only).
        samples: points sampled per mesh and iteration for the chamfer loss.
        w_chamfer, w_edge, w_normal, w_laplacian: loss weights.
        seed: seed of torch's generator (sampling).
        device: ``auto``, ``cpu``, ``cuda[:N]`` or ``mps``.
        out: output folder; None writes nothing.
        plot_every: iterations between GIF frames; None gives about 8 frames
            (:func:`~diffmesh.fit.mesh_files.frame_interval`).
        quiet: no progress bar.
        eval_samples: points per mesh for the final chamfer measure.
        eval_draws: draws averaged for the final chamfer measure.
        eval_dense_samples: points per mesh for the dense chamfer measure
            (``chamfer_dense``, with a sampling floor 1/20 of the 10k one); 0 skips it.
        eval_dense_draws: draws averaged for the dense chamfer measure.
        frame_size: side of each GIF frame's renders, in pixels.
        callback: called after every iteration with (iteration, losses).
    """

    targets: tuple[str | Path, ...] = ("fish_low_resolution",)
    level: int = 4
    iters: int = 2000
    lr: float = 1.0
    momentum: float = 0.9
    optimizer: str = "sgd"
    lr_schedule: str = "constant"
    lr_decay_start: float = 0.5
    lr_final: float = 0.05
    lambda_: float = 10.0
    samples: int = 5000
    w_chamfer: float = 1.0
    w_edge: float = 1.0
    w_normal: float = 0.01
    w_laplacian: float = 0.1
    seed: int = 0
    device: str = "auto"
    out: Path | None = None
    plot_every: int | None = None
    quiet: bool = False
    eval_samples: int = 10000
    eval_draws: int = 5
    eval_dense_samples: int = 200_000
    eval_dense_draws: int = 2
    frame_size: int = 160
    callback: StepCallback | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        require(len(self.targets) > 0, "targets: expected at least one target mesh, got none")
        require(self.samples >= 1, f"samples: expected a positive integer, got {self.samples}")
        check_loop_settings(self, ("w_chamfer", "w_edge", "w_normal", "w_laplacian", "lambda_"))
        require(self.optimizer in OPTIMIZERS, f"optimizer: expected one of {OPTIMIZERS}, got {self.optimizer!r}")
        require(self.lr_schedule in LR_SCHEDULES,
                f"lr_schedule: expected one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        require(0.0 <= self.lr_decay_start < 1.0,
                f"lr_decay_start: expected a number in [0, 1), got {self.lr_decay_start}")
        require(0.0 < self.lr_final <= 1.0, f"lr_final: expected a number in (0, 1], got {self.lr_final}")
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


def load_shape_targets(
    targets: Sequence[str | Path], device: torch.device
) -> tuple[list[str], Meshes, torch.Tensor, torch.Tensor]:
    """Load target meshes and normalize each (centre at the vertex mean, max |coord| = 1).

    Meshes only (see :func:`diffmesh.fit.targets.load_targets` for point clouds too).

    Args:
        targets: mesh paths (OBJ, PLY, OFF) or bundled names.
        device: where the meshes go.

    Returns:
        ``(names, meshes, centers (N, 3), scales (N,))`` with
        ``original = normalized * scale + center`` per mesh.

    Raises:
        FileNotFoundError: a missing file.
        ValueError: a malformed file, a mesh without faces, one whose vertices coincide, or
            one whose faces all have zero area (nothing to sample).
    """
    loaded = load_targets(targets, device)
    for path, cloud in zip(loaded.paths, loaded.is_cloud, strict=True):
        if cloud:
            raise ValueError(f"TARGET {str(path)!r}: the mesh has no faces")
    meshes = loaded.meshes()
    assert meshes is not None  # every target is a mesh (checked above)
    return loaded.names, meshes, loaded.centers, loaded.scales


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
    """Write each fitted mesh into the set: in the target's frame (OBJ, PLY, GLB) and in the
    normalized one (OBJ)."""
    faces = fitted_norm.faces_list()
    for i, name in enumerate(names):
        stem = "fitted" if len(names) == 1 else f"fitted_{name}"
        write_mesh_files(outs, stem, fitted_orig.verts_list()[i], faces[i])
        with atomic_path(outs.path(f"{stem}_normalized.obj")) as tmp:
            save_obj(str(tmp), fitted_norm.verts_list()[i].cpu(), faces[i].cpu())


@torch.no_grad()
def _render_targets(targets: ShapeTargets, size: int) -> torch.Tensor:
    """The GIF's target column: shaded meshes, depth-shaded splats for point clouds."""
    n = len(targets)
    device = targets.verts[0].device
    cams = CameraSet.look_at(_VIEW["dist"], torch.full((n,), _VIEW["elev"]), torch.full((n,), _VIEW["azim"]))
    cameras = cams.cameras(None, device)
    images = torch.ones(n, size, size, 3, device=device)
    meshes = [i for i, cloud in enumerate(targets.is_cloud) if not cloud]
    clouds = [i for i, cloud in enumerate(targets.is_cloud) if cloud]
    if meshes:
        images[meshes] = render_shaded(
            [targets.verts[i] for i in meshes], [targets.faces[i] for i in meshes], [_TARGET_COLOR] * len(meshes),
            cameras[meshes], image_size=size, light_location=_light(),
        )
    if clouds:
        images[clouds] = render_points([targets.verts[i] for i in clouds], [_TARGET_COLOR] * len(clouds),
                                       cameras[clouds], image_size=size)
    return images


def fit_shape(config: ShapeConfig) -> ShapeResult:
    """Run the shape pipeline and, when ``config.out`` is set, write its outputs.

    Outputs: ``fitted.obj``, ``fitted.ply`` and ``fitted.glb`` (original frame),
    ``fitted_normalized.obj``, ``losses.png``, ``progress.gif``, ``metrics.json``; with
    several targets the meshes are ``fitted_<name>.obj`` (``.ply``, ``.glb``) and
    ``fitted_<name>_normalized.obj``. The files are published together
    (:class:`~diffmesh.fit.outputs.OutputSet`): ``metrics.json`` carries the ``run_id`` and
    lists the set. When Ctrl-C interrupts the fit, or the fit diverges, the outputs are
    written from what was recorded, with the best-so-far mesh; when it stops before the
    first iteration completed, nothing is written and earlier results stay.

    Args:
        config: the settings.

    Returns:
        The fitted meshes, metrics, loss history and written files.
    """
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    loaded = load_targets(config.targets, device)
    names, centers, scales = loaded.names, loaded.centers, loaded.scales
    target_meshes = loaded.meshes()
    out = prepare_out_dir(config.out) if config.out is not None else None
    n = len(loaded)
    plot_every = config.plot_every if config.plot_every is not None else frame_interval(config.iters)

    source = ico_sphere(config.level, device).extend(n)
    param = Parameterization(source, config.optimizer, lr=config.lr, momentum=config.momentum,
                             lambda_=config.lambda_)
    weights = {"chamfer": config.w_chamfer, "edge": config.w_edge, "normal": config.w_normal,
               "laplacian": config.w_laplacian}

    def step(iteration: int) -> dict[str, torch.Tensor]:
        if config.lr_schedule != "constant":
            param.set_lr_factor(lr_factor(config.lr_schedule, iteration, config.iters,
                                          start=config.lr_decay_start, final=config.lr_final))
        mesh = source.offset_verts(param.offsets())
        sample_trg, trg_lengths = loaded.sample(config.samples, target_meshes)
        sample_src = sample_points_from_meshes(mesh, config.samples)
        terms = {
            "chamfer": chamfer_distance(sample_trg, sample_src, x_lengths=trg_lengths)[0],
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
        target_renders = _render_targets(loaded, config.frame_size)

    def snapshot(iteration: int) -> None:
        if target_renders is not None:
            frames.append(_shape_frame(source.offset_verts(param.offsets().detach()), target_renders,
                                       iteration, config.frame_size))

    label = "fit shape" + (f" ({names[0]})" if n == 1 else f" ({n} targets)")
    with Progress(config.iters, label, enabled=not config.quiet) as progress:
        run = optimize(
            param.params, step, iters=config.iters, lr=config.lr, momentum=config.momentum,
            loss_scale=float(n), progress=progress, snapshot=snapshot if out is not None else None,
            snapshot_every=plot_every, callback=config.callback, optimizer=param.optimizer,
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
            "level", "iters", "optimizer", "lr", "lr_schedule", "lr_decay_start", "lr_final", "momentum", "lambda_", "samples", "w_chamfer", "w_edge",
            "w_normal", "w_laplacian", "seed")} | {"plot_every": plot_every},
        "optimizer": param.settings(),
        **environment_info(str(device)),
    }
    result = ShapeResult(names, fitted_orig, fitted_norm, metrics, run.history, interrupted=run.interrupted,
                         diverged=run.diverged, diverged_at=run.diverged_at, diverged_loss=run.diverged_loss)
    if out is None:
        _evaluate(result, loaded, config, out)
        return result
    if run.iterations == 0:  # nothing fitted: earlier results in `out` stay as they were
        return result
    with OutputSet(out) as outs:
        _write_meshes(outs, names, fitted_orig, fitted_norm)
        try:  # a Ctrl-C from here on publishes the meshes with what metrics.json has so far
            announce(f"{label}: evaluating", enabled=not config.quiet)
            _evaluate(result, loaded, config, out)
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


def _evaluate(result: ShapeResult, loaded: ShapeTargets, config: ShapeConfig, out: Path | None) -> None:
    """Add the quality measures to the metrics: chamfer at fixed samples (against the points
    themselves for a point-cloud target), signed volume, finiteness, and for mesh targets
    (a cloud has no surface normals to compare with) the fraction of flipped faces and the
    chamfer floor: the same measure between the target and itself, which no fit can go
    much below (two independent draws of ``eval_samples`` points never coincide). With
    ``eval_dense_samples`` > 0 also ``chamfer_dense`` (and its floor): the same measure at
    that many samples, whose floor is far below what a good fit misses."""
    fitted_norm = result.fitted_normalized
    chamfer = eval_chamfer_targets(fitted_norm, loaded, samples=config.eval_samples, draws=config.eval_draws)
    volumes = signed_volumes(fitted_norm)
    mesh_idx = [i for i, cloud in enumerate(loaded.is_cloud) if not cloud]
    flipped: list[float | None] = [None] * len(loaded)
    floor: list[float | None] = [None] * len(loaded)
    if mesh_idx:
        meshes = loaded.meshes()
        fractions = flipped_fraction(fitted_norm[mesh_idx], meshes)
        # the chamfer of the target against itself, as measured: the sampling floor
        floors = eval_chamfer(meshes, meshes, samples=config.eval_samples, draws=config.eval_draws)
        for k, i in enumerate(mesh_idx):
            flipped[i], floor[i] = float(fractions[k]), float(floors[k])
    dense: list[float | None] = [None] * len(loaded)
    dense_floor: list[float | None] = [None] * len(loaded)
    if config.eval_dense_samples > 0:
        dense = eval_chamfer_targets(fitted_norm, loaded, samples=config.eval_dense_samples,
                                     draws=config.eval_dense_draws).tolist()
        if mesh_idx:
            floors = eval_chamfer(meshes, meshes, samples=config.eval_dense_samples,
                                  draws=config.eval_dense_draws)
            for k, i in enumerate(mesh_idx):
                dense_floor[i] = float(floors[k])
    counts = fitted_norm.num_verts_per_mesh().tolist()
    known = [f for f in flipped if f is not None]
    result.metrics["chamfer"] = float(chamfer.mean())
    result.metrics["chamfer_eval"] = {"samples": config.eval_samples, "draws": config.eval_draws,
                                      "frame": "normalized"}
    floors_known = [f for f in floor if f is not None]
    all_meshes = len(floors_known) == len(loaded)
    result.metrics["chamfer_floor"] = sum(floors_known) / len(floors_known) if all_meshes else None
    if config.eval_dense_samples > 0:
        result.metrics["chamfer_dense"] = sum(dense) / len(dense)
        result.metrics["chamfer_dense_eval"] = {"samples": config.eval_dense_samples,
                                                "draws": config.eval_dense_draws, "frame": "normalized"}
        dense_floors = [f for f in dense_floor if f is not None]
        result.metrics["chamfer_dense_floor"] = sum(dense_floors) / len(dense_floors) if all_meshes else None
    result.metrics["flipped_faces"] = sum(known) / len(known) if known else None
    result.metrics["flipped_faces_eval"] = FLIPPED_EVAL
    result.metrics["targets"] = [
        {
            "name": result.names[i],
            "target": portable_source(loaded.paths[i], out),
            "target_kind": loaded.kinds[i],
            "target_points": int(loaded.verts[i].shape[0]),
            "chamfer": float(chamfer[i]),
            "chamfer_floor": floor[i],
            "chamfer_dense": dense[i],
            "chamfer_dense_floor": dense_floor[i],
            "signed_volume": float(volumes[i]),
            "flipped_faces": flipped[i],
            "finite": bool(torch.isfinite(v).all()),
            "verts": int(counts[i]),
            "center": loaded.centers[i].tolist(),
            "scale": float(loaded.scales[i]),
        }
        for i, v in enumerate(fitted_norm.verts_list())
    ]
