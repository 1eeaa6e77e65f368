"""Shared pieces of the benchmark runner: the `Case` record and the timing/memory helpers.

Each ``bench/bench_*.py`` module defines ``cases() -> list[Case]``. A case's ``setup`` builds the
workload (untimed) and returns the zero-argument callable that is timed.
"""

from __future__ import annotations

import gc
import os
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Case:
    """One benchmark line.

    Attributes:
        group: the package or app the line belongs to (``"meshio"``, ``"softrender"``, ...).
        name: what is measured, e.g. ``"chamfer (1,5000,3) vs (1,5000,3), fwd+bwd"``.
        setup: builds the workload and returns the callable to time (called once per process).
        repeats: timed calls after ``warmup`` untimed ones; the median is reported.
        warmup: untimed calls before timing.
        memory: also report the peak RSS above the post-setup baseline (fresh subprocess).
        items: work items per call (faces, iterations, ...) for a throughput column.
        items_unit: unit of the throughput column, e.g. ``"faces/s"``.
        goal: the target stated by the issue, printed beside the figure (text, not checked).
    """

    group: str
    name: str
    setup: Callable[[], Callable[[], object]]
    repeats: int = 10
    warmup: int = 2
    memory: bool = False
    items: float | None = None
    items_unit: str = ""
    goal: str = ""


def time_median(fn: Callable[[], object], repeats: int, warmup: int) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeats`` calls after ``warmup`` calls.

    The calls run back to back, as the steps of a fitting loop do, with Python's cyclic
    garbage collector off while they run (as ``timeit`` does): a full collection walks
    every Python object (about 190k after importing torch, 90 ms) and leaves the caches
    cold, which slowed the next call of the millisecond cases by up to 40 %.
    """
    for _ in range(warmup):
        fn()
    times = []
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(max(repeats, 1)):
            synchronize()
            start = time.perf_counter()
            fn()
            synchronize()
            times.append(time.perf_counter() - start)
    finally:
        if enabled:
            gc.enable()
    return statistics.median(times)


def peak_rss_above_baseline_mb(fn: Callable[[], object]) -> float:
    """Peak resident memory of one call of ``fn`` above the memory in use before it, in MB.

    Meant to run in a fresh process right after setup: the resident-set high-water mark is
    reset to the current footprint (imports + inputs) and read after the call. On a CUDA device it is the peak of
    torch's allocator above what was allocated before the call.
    """
    gc.collect()
    device = bench_device()
    if device.type == "cuda":  # GPU memory: the caching allocator's own peak counter
        synchronize()
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn()
        synchronize()
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    if _reset_peak_rss():  # Linux: the high-water mark restarts from the current RSS
        before = _status_kib("VmRSS")
        fn()
        return max(_status_kib("VmHWM") - before, 0) / 1024.0
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fn()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return max(after - before, 0) / 1024.0  # ru_maxrss is in KiB on Linux


def _reset_peak_rss() -> bool:
    """Reset the kernel's resident-set high-water mark (VmHWM); False where unsupported.

    Without it, the peak reached while importing torch hides the peak of the measured call.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def bench_device() -> torch.device:
    """The device cases build their workloads on: ``cpu`` unless ``bench/run.py --device`` says."""
    return torch.device(os.environ.get("DIFFMESH_BENCH_DEVICE", "cpu"))


def synchronize() -> None:
    """Wait for queued GPU work, so that a timed call measures the work and not its launch."""
    device = bench_device()
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def set_threads(n: int) -> None:
    """Pin torch's intra-op threads (the CI machine has 2 cores)."""
    torch.set_num_threads(n)
