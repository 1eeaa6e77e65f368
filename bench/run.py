"""Run every benchmark of the monorepo and print one table.

Usage:
    uv run python bench/run.py                 # everything
    uv run python bench/run.py --only chamfer  # cases whose group or name contains "chamfer"
    uv run python bench/run.py --list          # list the cases

Timings are medians over repeated calls with torch at 2 threads (the CI machine's size),
each case in a fresh subprocess so that no timing depends on what ran before it (the
allocator's state after a long fit, e.g. glibc's trim thresholds, or torch's caches);
peak memory is the resident-set high-water mark above the post-setup baseline, measured in
another fresh subprocess per case so that earlier cases do not hide it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import torch  # noqa: E402
from common import Case, peak_rss_above_baseline_mb, set_threads, time_median  # noqa: E402


def collect_cases() -> list[Case]:
    cases: list[Case] = []
    for path in sorted(HERE.glob("bench_*.py")):
        module = importlib.import_module(path.stem)
        cases.extend(module.cases())
    return cases


def _format_time(seconds: float) -> str:
    if seconds >= 1.0:
        return f"{seconds:.2f} s"
    return f"{seconds * 1e3:.1f} ms"


def _format_rate(case: Case, seconds: float) -> str:
    if case.items is None or seconds <= 0:
        return ""
    rate = case.items / seconds
    if rate >= 1e6:
        return f"{rate / 1e6:.2f} M {case.items_unit}"
    if rate >= 1e3:
        return f"{rate / 1e3:.1f} k {case.items_unit}"
    return f"{rate:.1f} {case.items_unit}"


def _in_subprocess(flag: str, index: int, threads: int, key: str) -> float | None:
    """Run one case's measurement (``--time-of`` or ``--memory-of``) in a fresh process."""
    cmd = [sys.executable, str(Path(__file__).resolve()), flag, str(index), "--threads", str(threads)]
    if "DIFFMESH_BENCH_DEVICE" in os.environ:
        cmd += ["--device", os.environ["DIFFMESH_BENCH_DEVICE"]]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.stderr.write(result.stderr[-2000:])
        return None
    return float(json.loads(result.stdout.strip().splitlines()[-1])[key])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="run cases whose group or name contains this text")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    parser.add_argument("--device", default=None, help="torch device for the workloads (default cpu)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--in-process", action="store_true",
                        help="time every case in this one process (default: a fresh process each); "
                             "process-wide settings of a case (the fit rows' malloc thresholds) "
                             "then apply to the cases after it")
    parser.add_argument("--memory-of", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--time-of", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    set_threads(args.threads)
    if args.device:
        os.environ["DIFFMESH_BENCH_DEVICE"] = args.device  # read by common.bench_device()
    cases = collect_cases()

    if args.memory_of is not None:  # child process: one memory measurement
        case = cases[args.memory_of]
        fn = case.setup()
        # No warm-up call: the RSS high-water mark would then already hold the peak.
        print(json.dumps({"peak_mb": peak_rss_above_baseline_mb(fn)}))
        return 0
    if args.time_of is not None:  # child process: one timing
        case = cases[args.time_of]
        print(json.dumps({"seconds": time_median(case.setup(), case.repeats, case.warmup)}))
        return 0

    selected = [(i, c) for i, c in enumerate(cases)
                if args.only.lower() in f"{c.group} {c.name}".lower()]
    if args.list:
        for _, case in selected:
            print(f"{case.group:11s} {case.name}")
        return 0

    print(f"# diffmesh benchmarks: torch {torch.__version__}, {platform.machine()}, "
          f"{os.cpu_count()} cores, {torch.get_num_threads()} torch threads, "
          f"python {platform.python_version()}, device {os.environ.get('DIFFMESH_BENCH_DEVICE', 'cpu')}")
    header = ("group", "case", "median", "throughput", "peak mem", "goal")
    rows: list[tuple[str, ...]] = []
    for index, case in selected:
        if args.in_process:
            seconds: float | None = time_median(case.setup(), case.repeats, case.warmup)
        else:
            seconds = _in_subprocess("--time-of", index, args.threads, "seconds")
        peak = None
        if case.memory and not args.no_memory:
            peak = _in_subprocess("--memory-of", index, args.threads, "peak_mb")
        if seconds is None:
            print(f"{case.group} {case.name}: failed (see above)", file=sys.stderr)
            continue
        row = (case.group, case.name, _format_time(seconds), _format_rate(case, seconds),
               "" if peak is None else f"{peak:.0f} MB", case.goal)
        rows.append(row)
        print("  ".join(row), file=sys.stderr, flush=True)  # progress while the table builds

    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"
    print(line)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
