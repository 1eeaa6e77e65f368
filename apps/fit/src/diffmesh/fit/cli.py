"""The ``fit`` command line: ``fit shape``, ``fit images``, ``fit render``.

Thin: options are parsed and checked here, the work is done by the pipeline functions.
Every error ends as one line on stderr and a non-zero exit code, never a traceback:
bad options exit 2 (click's usage errors), failures while running exit 1, Ctrl-C exits
130 after writing what was recorded.

This module imports neither torch nor the pipelines: ``fit --help``, ``fit --version`` and
every ``fit COMMAND --help`` answer without loading them (they load when a command runs).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn

import click
from click.core import ParameterSource
from diffmesh.fit.launch import deferred_interrupt
from diffmesh.fit.optimizer_defaults import DEFAULTS, LR_SCHEDULES, OPTIMIZERS, resolve_defaults

__all__ = ["cli", "main"]

EXIT_INTERRUPTED = 130
_TRACEBACK_ENV = "DIFFMESH_FIT_TRACEBACK"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 400 else text[:397] + "..."


def _interrupted(message: str) -> NoReturn:
    click.echo(f"Interrupted: {message}", err=True)
    raise click.exceptions.Exit(EXIT_INTERRUPTED)


class FitGroup(click.Group):
    """A click group that funnels every error into a one-line message and an exit code.

    Usage errors (bad options) print ``Error: ...`` on one line (with where to find help)
    and exit 2; failures while running exit 1; Ctrl-C exits 130.
    """

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:  # bare `fit`: show the help
            click.echo(exc.ctx.get_help() if exc.ctx is not None else exc.format_message())
            sys.exit(0)
        except click.exceptions.UsageError as exc:
            hint = ""
            if exc.ctx is not None:
                hint = f" (see '{exc.ctx.command_path} --help')"
            click.echo(f"Error: {_one_line(exc.format_message())}{hint}", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.ClickException as exc:
            click.echo(f"Error: {_one_line(exc.format_message())}", err=True)
            sys.exit(exc.exit_code)
        except (click.exceptions.Abort, KeyboardInterrupt):
            click.echo("Interrupted.", err=True)
            sys.exit(EXIT_INTERRUPTED)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            _interrupted("stopped; files already written are kept")
        except (ValueError, TypeError, OSError, RuntimeError) as exc:
            if os.environ.get(_TRACEBACK_ENV):
                raise
            raise click.ClickException(_one_line(exc)) from None
        except Exception as exc:  # a bug: still one line, with a way to see the traceback
            if os.environ.get(_TRACEBACK_ENV):
                raise
            raise click.ClickException(
                f"internal error ({type(exc).__name__}: {_one_line(exc)}); set {_TRACEBACK_ENV}=1 for the traceback"
            ) from None


def _device_callback(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        with deferred_interrupt():  # the first torch import (resolve_device's) runs whole
            from diffmesh.fit.devices import resolve_device

            resolve_device(value)
    except (ValueError, TypeError) as exc:
        raise click.BadParameter(_one_line(exc).removeprefix("--device: "), ctx=ctx, param=param) from None
    return value


def _version() -> str:
    try:
        return metadata.version("diffmesh-fit")
    except metadata.PackageNotFoundError:
        return "unknown"


class FiniteFloat(click.ParamType):
    """A finite float within ``[low, high]`` (``low_open``: strictly above ``low``).

    click's FloatRange lets NaN through every bound (NaN compares false) and accepts inf.
    """

    name = "float"

    def __init__(self, low: float | None = None, high: float | None = None, *, low_open: bool = False,
                 high_open: bool = False) -> None:
        self.low, self.high, self.low_open, self.high_open = low, high, low_open, high_open

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number):
            self.fail(f"expected a finite number, got {value!r}", param, ctx)
        too_low = self.low is not None and (number <= self.low if self.low_open else number < self.low)
        too_high = self.high is not None and (number >= self.high if self.high_open else number > self.high)
        if too_low or too_high:
            self.fail(f"{value!r} is not in {self._describe()}", param, ctx)
        return number

    def _describe(self) -> str:
        left = "-inf" if self.low is None else f"{self.low:g}"
        right = "inf" if self.high is None else f"{self.high:g}"
        return f"{'(' if self.low_open or self.low is None else '['}{left}, {right}{')' if self.high_open or self.high is None else ']'}"


class ThreadsType(click.ParamType):
    """``auto`` or a thread count in [1, 1024]."""

    name = "auto|N"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str | int:
        if isinstance(value, int) or str(value).strip().lower() != "auto":
            try:
                count = int(value)
            except (TypeError, ValueError):
                self.fail(f"expected 'auto' or a number of threads, got {value!r}", param, ctx)
            if not 1 <= count <= 1024:
                self.fail(f"expected 'auto' or a number of threads in [1, 1024], got {value!r}", param, ctx)
            return count
        return "auto"


#: Upper bounds of sizes, far above any sensible run, so that a typo fails at once naming
#: the option instead of later in the allocator.
MAX_ITERS = 10_000_000
MAX_SAMPLES = 10_000_000
MAX_IMAGE_SIZE = 4096
MAX_VIEWS = 10_000


def _given(ctx: click.Context) -> set[str]:
    """The options given on the command line (not left at their defaults)."""
    return {name for name in ctx.params if ctx.get_parameter_source(name) is not ParameterSource.DEFAULT}


POSITIVE = click.IntRange(min=1)
NONNEG = FiniteFloat(0.0)
SEED = click.IntRange(-(2**63), 2**64 - 1)  # what torch.manual_seed accepts


class OutFolder(click.Path):
    """A folder path that is not empty (click would read ``--out ''`` as the working folder)."""

    def __init__(self) -> None:
        super().__init__(file_okay=False, path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.strip():
            self.fail("expected a folder, got an empty path", param, ctx)
        return super().convert(value, param, ctx)


#: The option of each optimizer-dependent setting (``DEFAULTS``' keys).
_OPTION_OF = {"lr": "--lr", "lr_schedule": "--lr-schedule", "lambda_": "--lambda", "w_silhouette": "--w-silhouette",
              "w_edge": "--w-edge", "w_normal": "--w-normal", "w_laplacian": "--w-laplacian"}


def _largesteps_defaults(command: str) -> str:
    """``--lr 0.05, --lambda 10, ...``: the largesteps defaults of ``command`` as options."""
    return ", ".join(f"{_OPTION_OF[k]} {v:g}" if isinstance(v, float) else f"{_OPTION_OF[k]} {v}"
                     for k, v in DEFAULTS[command]["largesteps"].items())


def _common(func):
    """Options the fitting commands share: --seed, then those of every command."""
    func = click.option("--seed", type=SEED, default=0, show_default=True, help="Random seed.")(func)
    return _io_options(func)


def _io_options(func):
    """Options every command shares: --device, --threads, --out, --quiet."""
    func = click.option("--quiet", "-q", is_flag=True, help="No progress bar.")(func)
    func = click.option(
        "--out", type=OutFolder(), default=None,
        help="Output folder (created if missing).",
    )(func)
    func = click.option(
        "--threads", type=ThreadsType(), default="auto", show_default=True,
        help="CPU threads: auto uses every core while the machine is free and fewer while "
             "other processes want them; N fixes the count.",
    )(func)
    func = click.option(
        "--device", default="auto", show_default=True, callback=_device_callback,
        help="auto, cpu, cuda, cuda:N or mps.",
    )(func)
    return func


def _fit_options(func):
    """Options of both fitting commands."""
    func = click.option("--plot-every", type=POSITIVE, default=None,
                        help="Iterations between GIF frames [default: ceil(iters / 8), about 8 frames].")(func)
    func = click.option("--momentum", type=FiniteFloat(0.0, 1.0, high_open=True), default=0.9,
                        show_default=True, help="SGD momentum.")(func)
    func = click.option("--lambda", "lambda_", type=NONNEG, default=10.0, show_default=True,
                        help="largesteps: the matrix M = I + lambda L (fit images: see --optimizer).")(func)
    func = click.option("--lr", type=FiniteFloat(0.0, low_open=True), default=1.0,
                        show_default=True, help="Learning rate (largesteps: see --optimizer).")(func)
    func = click.option("--optimizer", type=click.Choice(OPTIMIZERS), default="sgd", show_default=True,
                        help="sgd: the tutorial's. largesteps: u = (I + lambda L) v stepped by AdamUniform; "
                        "unless given, these options take its own defaults (fit shape: "
                        f"{_largesteps_defaults('shape')}; fit images: {_largesteps_defaults('images')}).")(func)
    func = click.option("--iters", type=click.IntRange(1, MAX_ITERS), default=2000, show_default=True,
                        help="Optimisation iterations.")(func)
    func = click.option("--level", type=click.IntRange(0, 6), default=4, show_default=True,
                        help="ico_sphere level of the starting mesh.")(func)
    return func


@click.group(name="fit", cls=FitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), "--version", "-V", prog_name="fit")
def cli() -> None:
    """Fit a sphere to a 3D shape (fit shape) or to images (fit images); render datasets (fit render)."""


def _report(out: Path, files: Sequence[Path], summary: str, quiet: bool) -> None:
    """Print where the outputs went (only the folder with ``--quiet``)."""
    if quiet:
        click.echo(str(out))
        return
    click.echo(summary)
    click.echo(f"Outputs in {out}/: " + ", ".join(p.name for p in files))


def _report_fit(out: Path, result: Any, summary: str, quiet: bool) -> None:
    """:func:`_report` for a fit; then exit 1 if it diverged, 130 if Ctrl-C stopped it."""
    m = result.metrics
    if m["iterations"] == 0 and (result.interrupted or getattr(result, "diverged", False)):
        if getattr(result, "diverged", False):
            raise click.ClickException(
                f"the fit diverged at its first iteration (the losses are not finite); nothing "
                f"written, earlier results in {out}/ are kept"
            )
        _interrupted(f"stopped before the first iteration completed; nothing written, earlier results in {out}/ are kept")
    if getattr(result, "diverged", False):
        _report(out, result.files, summary, quiet)
        loss = result.diverged_loss
        rose = f"the total loss rose to {loss:.3g}" if math.isfinite(loss) else "a loss or parameter became infinite or NaN"
        raise click.ClickException(
            f"the fit diverged at iteration {result.diverged_at} ({rose}): the learning rate "
            f"(--lr {m['config']['lr']:g}) is likely too high; try a smaller one. Wrote the best-so-far "
            f"mesh (iteration {m['best_iteration']}) to {out}/"
        )
    _report(out, result.files, summary, quiet)
    if result.interrupted:
        _interrupted(
            f"stopped at iteration {m['iterations']}/{m['iterations_requested']}; "
            f"wrote the best-so-far mesh and the losses so far to {out}/"
        )


@contextlib.contextmanager
def _thread_policy(threads: str | int) -> Iterator[None]:
    """Apply ``--threads`` for the command: ``auto`` drives a
    :class:`~diffmesh.fit.threads.ThreadPolicy` (the one the ``fit`` entry point installed
    at start, or a new one), N fixes torch's thread count; both are undone at the end."""
    with deferred_interrupt():
        import torch
        from diffmesh.fit import threads as thread_policy

    before = torch.get_num_threads()
    if threads == "auto":
        policy = thread_policy.active_policy()
        previous = thread_policy.install_policy(policy or thread_policy.ThreadPolicy())
    else:
        previous = thread_policy.install_policy(None)
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        thread_policy.install_policy(previous)
        torch.set_num_threads(before)


@cli.command("shape")
@click.argument("targets", nargs=-1, metavar="[TARGET ...]")
@_fit_options
@click.option("--samples", type=click.IntRange(1, MAX_SAMPLES), default=5000, show_default=True,
              help="Points sampled per mesh and iteration.")
@click.option("--lr-schedule", type=click.Choice(LR_SCHEDULES), default="constant", show_default=True,
              help="cosine: the learning rate falls from --lr to --lr-final x --lr along a half cosine "
              "after --lr-decay-start x --iters iterations.")
@click.option("--lr-decay-start", type=FiniteFloat(0.0, 1.0, high_open=True), default=0.5, show_default=True,
              help="cosine: fraction of the iterations before the learning rate starts to fall.")
@click.option("--lr-final", type=FiniteFloat(0.0, 1.0, low_open=True), default=0.05, show_default=True,
              help="cosine: the last iteration's learning rate as a fraction of --lr.")
@click.option("--w-chamfer", type=NONNEG, default=1.0, show_default=True, help="Chamfer loss weight.")
@click.option("--w-edge", type=NONNEG, default=1.0, show_default=True, help="Edge length loss weight.")
@click.option("--w-normal", type=NONNEG, default=0.01, show_default=True, help="Normal consistency weight.")
@click.option("--w-laplacian", type=NONNEG, default=0.1, show_default=True, help="Laplacian smoothing weight.")
@_common
def shape_command(targets: tuple[str, ...], out: Path | None, **options: Any) -> None:
    """Deform a sphere into TARGETs with 3D losses (default: the bundled fish).

    A TARGET is a mesh (.obj, .ply, .off) or a point cloud (.ply without faces, .xyz,
    .pts: x y z [nx ny nz] per line), whose points are then the samples. Several targets
    fit together as one batch. Writes fitted.obj, fitted.ply and fitted.glb (target's
    frame), fitted_normalized.obj, losses.png, progress.gif and metrics.json to --out
    (default fit-out/shape-<target name>).
    """
    with deferred_interrupt():
        from diffmesh.fit.data import resolve_mesh_path

    targets = targets or ("fish_low_resolution",)
    stems = [resolve_mesh_path(t, argument="TARGET").stem for t in targets]
    with deferred_interrupt():
        from diffmesh.fit.shape import ShapeConfig, fit_shape  # heavy imports: only when used

    if out is None:
        out = Path("fit-out") / ("shape-" + ("+".join(stems[:3]) + ("+more" if len(stems) > 3 else "")))
    threads = options.pop("threads")
    options = resolve_defaults("shape", options, _given(click.get_current_context()))
    config = ShapeConfig(targets=tuple(targets), out=out, **options)
    with _thread_policy(threads):
        result = fit_shape(config)
    m = result.metrics
    summary = (
        f"fit shape: {m['iterations']} iterations in {m['seconds']:.1f} s "
        f"({m['iterations_per_second'] or 0:.1f} it/s), chamfer {m.get('chamfer', math.nan):.3g} "
        f"({config.eval_samples} samples)"
        + (f", dense {m['chamfer_dense']:.3g} ({config.eval_dense_samples} samples)" if "chamfer_dense" in m else "")
        + ", normalized frame"
    )
    _report_fit(out, result, summary, options["quiet"])


def _image_size_callback(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    if value is not None and not 8 <= value <= MAX_IMAGE_SIZE:
        raise click.BadParameter(f"expected 8 to {MAX_IMAGE_SIZE} pixels, got {value}", ctx=ctx, param=param)
    return value


@cli.command("images")
@click.option("--target-mesh", type=str, default=None, metavar="MESH",
              help="Mesh to render the target views from (OBJ path or bundled name; default: cow).")
@click.option("--images", "images_dir", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="Folder of RGBA PNGs plus cameras.json (instead of --target-mesh).")
@click.option("--views", type=click.IntRange(1, MAX_VIEWS), default=None,
              help="Target views rendered from --target-mesh [default: 20].")
@click.option("--image-size", type=int, default=None, callback=_image_size_callback,
              help="Side of the rendered views in pixels [default: 128; --images uses the images' size].")
@click.option("--views-per-iter", type=click.IntRange(1, MAX_VIEWS), default=2, show_default=True, help="Views rendered per iteration.")
@_fit_options
@click.option("--w-silhouette", type=NONNEG, default=1.0, show_default=True, help="Silhouette loss weight (largesteps: see --optimizer).")
@click.option("--w-rgb", type=NONNEG, default=1.0, show_default=True, help="RGB loss weight.")
@click.option("--w-edge", type=NONNEG, default=1.0, show_default=True, help="Edge length loss weight.")
@click.option("--w-normal", type=NONNEG, default=0.01, show_default=True, help="Normal consistency weight.")
@click.option("--w-laplacian", type=NONNEG, default=1.0, show_default=True, help="Laplacian smoothing weight.")
@_common
def images_command(target_mesh: str | None, images_dir: Path | None, image_size: int | None,
                   views: int | None, out: Path | None, **options: Any) -> None:
    """Deform and colour a sphere until its renders match target images.

    Targets are --views renders of --target-mesh (default: the bundled cow), or the RGBA
    PNGs of --images DIR with its cameras.json (as written by `fit render`). Writes
    fitted.obj, fitted.ply and fitted.glb (with vertex colours), losses.png, progress.gif,
    views.png and metrics.json
    to --out (default fit-out/images-<name>).
    """
    if target_mesh is not None and images_dir is not None:
        raise click.UsageError("give either --target-mesh or --images, not both")
    if images_dir is not None and image_size is not None:
        raise click.UsageError("--image-size applies to --target-mesh; --images uses the size of its images")
    if images_dir is not None and views is not None:
        raise click.UsageError("--views applies to --target-mesh; --images uses every image of its folder")
    with deferred_interrupt():
        from diffmesh.fit.data import resolve_mesh_path

    if images_dir is not None:
        if not images_dir.is_dir():
            raise FileNotFoundError(f"--images: no such folder: {str(images_dir)!r}")
        name = images_dir.resolve().name or "images"
    else:
        name = resolve_mesh_path(target_mesh or "cow", argument="--target-mesh").stem
    with deferred_interrupt():
        from diffmesh.fit.images import ImagesConfig, fit_images

    if out is None:
        out = Path("fit-out") / f"images-{name}"
    threads = options.pop("threads")
    options = resolve_defaults("images", options, _given(click.get_current_context()))
    config = ImagesConfig(
        target_mesh=target_mesh, images=images_dir, views=views or 20, image_size=image_size or 128, out=out,
        **options,
    )
    with _thread_policy(threads):
        result = fit_images(config)
    m = result.metrics
    summary = (
        f"fit images: {m['iterations']} iterations in {m['seconds']:.1f} s "
        f"({m['iterations_per_second'] or 0:.2f} it/s), silhouette IoU mean {m.get('iou_mean', math.nan):.3f} "
        f"worst {m.get('iou_worst', math.nan):.3f}, PSNR {m.get('psnr', math.nan):.1f} dB"
    )
    _report_fit(out, result, summary, options["quiet"])


@cli.command("render")
@click.argument("mesh", metavar="MESH")
@click.option("--views", type=click.IntRange(1, MAX_VIEWS), default=20, show_default=True, help="Number of views.")
@click.option("--image-size", type=int, default=128, show_default=True, callback=_image_size_callback,
              help="Side of the images in pixels.")
@click.option("--dist", type=FiniteFloat(0.0, low_open=True), default=2.7, show_default=True,
              help="Camera distance from the origin.")
@click.option("--no-normalize", is_flag=True,
              help="Keep the mesh's frame (default: centre it and scale it to max |coordinate| = 1).")
@_io_options
def render_command(mesh: str, out: Path | None, **options: Any) -> None:
    """Render MESH (OBJ path or bundled name) to RGBA PNGs plus cameras.json.

    The folder is what `fit images --images DIR` reads: views spread as in the
    PyTorch3D tutorial, RGB shaded with a point light, alpha the soft silhouette.
    """
    with deferred_interrupt():
        from diffmesh.fit.data import resolve_mesh_path

    path = resolve_mesh_path(mesh, argument="MESH")
    with deferred_interrupt():
        from diffmesh.fit.render_dataset import RenderConfig, render_dataset

    out = out if out is not None else Path("fit-out") / f"render-{path.stem}"
    normalize = not options.pop("no_normalize")
    threads = options.pop("threads")
    config = RenderConfig(mesh=path, out=out, normalize=normalize, **options)
    with _thread_policy(threads):
        result = render_dataset(config)
    _report(out, result.files, f"fit render: {len(result.names)} views of {path.name}", options["quiet"])


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Run the command line (the ``fit`` console script's work: see :mod:`diffmesh.fit.launch`)."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="fit")
    sys.exit(0)  # cli.main exits itself in standalone mode; kept for type checkers
