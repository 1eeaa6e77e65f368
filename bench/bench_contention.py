"""Contention: `fit shape --iters 300 --quiet` alone, then two at once, as separate processes.

The issue's bars: two concurrent runs each finish within 2.5x of one run alone, and one run
alone is no more than 5 % slower than before the thread policy (``--threads N`` with N the
core count is the old behaviour: torch's default thread count, no policy).

Run it as a script on an otherwise idle machine for the ratios::

    uv run python bench/bench_contention.py             # auto, the old fixed count, 1 thread, PASSIVE
    uv run python bench/bench_contention.py --rounds 3  # alternate the variants 3 times, report medians
    uv run python bench/bench_contention.py --variant "spin 10k=2:GOMP_SPINCOUNT=10000"  # add one

A variant is ``label=THREADS[:VAR=VALUE,...]``: the ``--threads`` value and environment
variables of both processes (``GOMP_SPINCOUNT``, ``OMP_WAIT_POLICY`` are read when torch
loads, so they must come from the environment).

Each number is the wall time of a whole `fit` process (start-up included, as a user sees
it). The variants alternate round by round, so that a load change on the machine hits
them alike. ``bench/run.py`` also lists the solo and the pair as two rows (``--only
contention``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import Case

ITERS = int(os.environ.get("DIFFMESH_BENCH_CONTENTION_ITERS", "300"))
_LAUNCH = "from diffmesh.fit.launch import main; main()"


def _parse_variant(text: str) -> tuple[str, str, dict[str, str]]:
    label, _, rest = text.partition("=")
    threads, _, env_text = rest.partition(":")
    env = dict(item.split("=", 1) for item in env_text.split(",") if "=" in item)
    if not label or not threads:
        raise SystemExit(f"--variant: expected LABEL=THREADS[:VAR=VALUE,...], got {text!r}")
    return label, threads, env


def _command(out: Path, threads: str, iters: int) -> list[str]:
    return [
        sys.executable,
        "-c",
        _LAUNCH,
        "shape",
        "--iters",
        str(iters),
        "--quiet",
        "--device",
        "cpu",
        "--threads",
        threads,
        "--out",
        str(out),
    ]


def run_fits(
    count: int, threads: str = "auto", iters: int = ITERS, env: dict[str, str] | None = None
) -> list[float]:
    """Start ``count`` `fit shape` processes at once; the wall time of each, in seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        procs = [
            subprocess.Popen(
                _command(Path(tmp) / f"o{i}", threads, iters),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, **(env or {})},
            )
            for i in range(count)
        ]
        times = [0.0] * count
        pending = set(range(count))
        while pending:
            for i in list(pending):
                if procs[i].poll() is not None:
                    times[i] = time.perf_counter() - start
                    pending.discard(i)
            time.sleep(0.02)
        for proc in procs:
            err = proc.stderr.read() if proc.stderr else ""
            if proc.returncode != 0:
                raise RuntimeError(f"fit shape failed ({proc.returncode}): {err[-500:]}")
    return times


def _solo() -> object:
    return lambda: run_fits(1)


def _pair() -> object:
    return lambda: run_fits(2)


def cases() -> list[Case]:
    name = f"fit shape --iters {ITERS} --quiet, whole process"
    return [
        Case(group="contention", name=name + ", alone", setup=_solo, repeats=1, warmup=0),
        Case(
            group="contention",
            name=name + ", two at once (time until both end)",
            setup=_pair,
            repeats=1,
            warmup=0,
            goal="<= 2.5x alone",
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="alternate the variants this many times"
    )
    parser.add_argument("--iters", type=int, default=ITERS, help="iterations per fit (default 300)")
    cores = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )
    parser.add_argument(
        "--old", default=str(cores), help="--threads of the old behaviour (default: the cores)"
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="LABEL=THREADS[:VAR=VALUE,...]",
        help="add a variant (repeatable)",
    )
    parser.add_argument(
        "--only-auto-and-old", action="store_true", help="skip the 1-thread and PASSIVE variants"
    )
    args = parser.parse_args()
    old = f"fixed {args.old} (old)"
    variants: dict[str, tuple[str, dict[str, str]]] = {"auto": ("auto", {}), old: (args.old, {})}
    if not args.only_auto_and_old:
        variants["fixed 1"] = ("1", {})
        variants[f"fixed {args.old}, OMP_WAIT_POLICY=PASSIVE"] = (
            args.old,
            {"OMP_WAIT_POLICY": "PASSIVE"},
        )
    for text in args.variant:
        label, threads, env = _parse_variant(text)
        variants[label] = (threads, env)
    solo: dict[str, list[float]] = {k: [] for k in variants}
    pair: dict[str, list[float]] = {k: [] for k in variants}
    for r in range(args.rounds):
        for label, (threads, env) in variants.items():
            solo[label] += run_fits(1, threads, args.iters, env)
            pair[label] += run_fits(2, threads, args.iters, env)
            print(
                f"round {r + 1}: {label}: alone {solo[label][-1]:.1f} s, two at once "
                f"{pair[label][-2]:.1f} s and {pair[label][-1]:.1f} s",
                file=sys.stderr,
                flush=True,
            )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"# fit shape --iters {args.iters} --quiet, whole processes: {cores} cores, {args.rounds} round(s), "
        f"load average at the end {load:.2f}"
    )
    print(
        "| variant | alone | vs old alone | two at once (each, median) | slower of the two / alone |"
    )
    print("|---|---|---|---|---|")
    base = statistics.median(solo[old])
    for label in variants:
        alone = statistics.median(solo[label])
        print(
            f"| {label} | {alone:.1f} s | {alone / base:.2f}x | {statistics.median(pair[label]):.1f} s | "
            f"{max(pair[label]) / alone:.2f}x |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
