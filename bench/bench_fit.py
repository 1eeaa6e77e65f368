"""Benchmarks of the fit app: the two pipelines' default runs, end to end.

Each case runs the real pipeline function (the one `fit shape` / `fit images` call), outputs
included (meshes, loss plot, GIF frames every 250 iterations, metrics), into a temporary
folder, once (repeats=1, no warm-up: a run is long and its cost is the same each time), in
a process whose malloc keeps freed memory mapped, as the `fit` command's does.

`fit images` at its full 2000 iterations takes many minutes on a 2-core CPU, so the case
runs DIFFMESH_BENCH_FIT_IMAGES_ITERS iterations (default 200; set 2000 for the full run) and
says so in its name; the it/s column is comparable across both.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from common import Case, bench_device

IMAGES_ITERS = int(os.environ.get("DIFFMESH_BENCH_FIT_IMAGES_ITERS", "200"))


def _shape_setup():
    from diffmesh.fit import ShapeConfig, fit_shape, keep_freed_memory

    keep_freed_memory()  # as the `fit` command does

    def run() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            fit_shape(ShapeConfig(device=str(bench_device()), out=Path(tmp), quiet=True))

    return run


def _images_setup():
    from diffmesh.fit import ImagesConfig, fit_images, keep_freed_memory

    keep_freed_memory()  # as the `fit` command does

    def run() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            fit_images(ImagesConfig(iters=IMAGES_ITERS, device=str(bench_device()), out=Path(tmp), quiet=True))

    return run


def cases() -> list[Case]:
    images_name = "fit images default (cow, 20 views, 128 px, level 4)"
    if IMAGES_ITERS != 2000:
        images_name += f", {IMAGES_ITERS} of the 2000 iterations"
    return [
        Case(
            group="fit",
            name="fit shape default (fish, level 4, 5000 samples, 2000 iterations), whole run",
            setup=_shape_setup,
            repeats=1,
            warmup=0,
            items=2000,
            items_unit="it/s",
            goal="< 30 s",
        ),
        Case(
            group="fit",
            name=images_name + ", whole run incl. 20 target renders",
            setup=_images_setup,
            repeats=1,
            warmup=0,
            items=IMAGES_ITERS,
            items_unit="it/s",
            goal="2000 iterations < 5 min (>= 6.7 it/s)",
        ),
    ]
