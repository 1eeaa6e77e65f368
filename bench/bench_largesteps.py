"""Large Steps benchmarks: one `fit shape` iteration of each recipe at levels 4 and 5, and the
Large Steps iteration's memory at level 6.

The tutorial recipe: offsets, chamfer + edge + normal consistency + uniform Laplacian, SGD.
Large Steps: ``v = M^-1 u`` (``M = I + 10 L``), chamfer only, AdamUniform; its backward pass
is a second solve, with the solver ``method="auto"`` picks (the banded Cholesky factor at
levels 4 to 6). Both fit ico_sphere(level) to the fish with 5000 samples, through
:class:`diffmesh.fit.optimizers.Parameterization`, as `fit shape` does; the timed calls go
on fitting after 100 untimed iterations.

Run as a script, it times the recipes (and Large Steps with each solver) interleaved in one
process and prints each one's ratio to the tutorial's, the comparison that survives a
loaded machine:

    uv run python bench/bench_largesteps.py --levels 4 5 --threads 1 --clock cpu
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

from common import Case, bench_device
from diffmesh.fit.optimizers import DEFAULTS, Parameterization
from diffmesh.fit.shape import load_shape_targets
from diffmesh.meshio import ico_sphere
from diffmesh.meshloss import (
    chamfer_distance,
    largesteps_matrix,
    mesh_edge_loss,
    mesh_laplacian_smoothing,
    mesh_normal_consistency,
    sample_points_from_meshes,
)


def _setup_iteration(
    level: int, optimizer: str, fitted: int = 100, method: str = "auto"
) -> Callable[[], Callable[[], object]]:
    def setup() -> Callable[[], object]:
        from diffmesh.fit import keep_freed_memory

        keep_freed_memory()  # as the `fit` command does
        device = bench_device()
        _, target, _, _ = load_shape_targets(["fish_low_resolution"], device)
        source = ico_sphere(level, device)
        settings = DEFAULTS["shape"][optimizer]
        param = Parameterization(
            source, optimizer, lr=settings["lr"], momentum=0.9, lambda_=settings["lambda_"]
        )
        if method != "auto":  # the same matrix, another solver
            param.matrix = largesteps_matrix(source, settings["lambda_"], method=method)
        weights = (settings["w_edge"], settings["w_normal"], settings["w_laplacian"])

        def step() -> None:
            mesh = source.offset_verts(param.offsets())
            loss = chamfer_distance(
                sample_points_from_meshes(target, 5000), sample_points_from_meshes(mesh, 5000)
            )[0]
            if any(weights):
                loss = (
                    loss
                    + weights[0] * mesh_edge_loss(mesh)
                    + weights[1] * mesh_normal_consistency(mesh)
                    + weights[2] * mesh_laplacian_smoothing(mesh, method="uniform")
                )
            param.optimizer.zero_grad()
            loss.backward()
            param.optimizer.step()

        for _ in range(fitted):
            step()
        return step

    return setup


def cases() -> list[Case]:
    out = []
    for level in (4, 5):
        for optimizer, what in (
            ("sgd", "tutorial recipe (SGD, 3 penalties)"),
            ("largesteps", "largesteps (2 solves, AdamUniform)"),
        ):
            out.append(
                Case(
                    "largesteps",
                    f"fit shape iteration 100+, ico_sphere({level}) vs fish, {what}",
                    _setup_iteration(level, optimizer),
                    repeats=30,
                    warmup=3,
                    goal="<= 1.2x the tutorial's" if optimizer == "largesteps" else "",
                )
            )
    out.append(
        Case(
            "largesteps",
            "fit shape iteration, ico_sphere(6) vs fish, largesteps (memory)",
            _setup_iteration(6, "largesteps", fitted=2),
            repeats=1,
            warmup=0,
            memory=True,
            goal="bounded (banded factor 83 MB; a dense V x V: 6.7 GB)",
        )
    )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description="interleaved time ratios to the tutorial's")
    parser.add_argument("--levels", type=int, nargs="+", default=[4, 5])
    parser.add_argument(
        "--methods",
        nargs="+",
        default=["auto", "cg"],
        help="Large Steps solvers: auto, banded, cholesky, cg",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--clock",
        choices=["cpu", "wall"],
        default="cpu",
        help="process CPU time (default; robust to other jobs) or wall time",
    )
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--fitted", type=int, default=60, help="untimed iterations first")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    for level in args.levels:
        steps = {"tutorial": _setup_iteration(level, "sgd", args.fitted)()}
        for method in args.methods:
            steps[f"largesteps {method}"] = _setup_iteration(
                level, "largesteps", args.fitted, method
            )()
        times: dict[str, list[float]] = {name: [] for name in steps}
        for _ in range(args.repeats):
            for name, step in steps.items():
                start = clock()
                step()
                times[name].append(clock() - start)
        base = statistics.median(times["tutorial"])
        row = ", ".join(
            f"{name} {statistics.median(t) * 1e3:.1f} ms ({statistics.median(t) / base:.2f}x)"
            for name, t in times.items()
        )
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(
            f"ico_sphere({level}), {args.threads} thread(s), {args.clock} time, median of "
            f"{args.repeats}, load {load:.1f}: {row}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
