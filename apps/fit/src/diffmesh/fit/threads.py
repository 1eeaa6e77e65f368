"""CPU thread policy: every core while the machine is free, fewer threads while others want them.

torch runs its CPU kernels on OpenMP worker threads. Between two parallel regions (a fitting
iteration has hundreds) GNU OpenMP's idle workers spin for ``GOMP_SPINCOUNT`` (300,000
``pause`` instructions by default, a fraction of a millisecond to several milliseconds
depending on the CPU) before they sleep, and a region ends only when its slowest thread
does. When more threads want the cores than there are cores (a second fit, a build, a test
suite), a thread that holds a region's last chunk waits for a time slice while its
partners spin away theirs: two `fit shape` runs on two cores took 40x
as long as one, instead of 2x. One thread per process has no barrier to wait at, but alone
on the machine it is about 20 % slower than two, and a blanket passive wait policy about
25 % slower.

So :class:`ThreadPolicy` measures what the other processes take: over the last interval, the
busy time of the CPUs this process may run on (``/proc/stat``, every process) minus this
process's own CPU time (``os.times``), divided by the interval, is the number of cores busy
with other work. It then uses ``cores - others`` threads, rounded to the nearest, at least 1,
at most the thread count torch started with; it lowers at once and raises only with a
quarter of a core to spare, so that it does not flap. Two fits on two cores each measure the
other's core and settle at one thread each, whether the other fit runs this policy or not;
alone, the measure is about 0 and the policy keeps every thread (spinning included: the
process's own spinning is its own time, not the others'). It decides on measurements, not
on timings, so it holds on any machine speed.

The policy needs ``/proc/stat`` (Linux); elsewhere it keeps the thread count as it is.
Thread counts apply per calling thread in OpenMP, so :meth:`ThreadPolicy.poll` must be
called from the thread that runs the torch work (a fitting loop calls it every iteration;
it reads the counters only once per ``interval``).

torch is imported only when a thread count is applied, never by this module.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = [
    "CpuSample",
    "ThreadPolicy",
    "active_policy",
    "choose_threads",
    "install_policy",
    "others_busy_cores",
    "poll",
    "read_cpu_sample",
]

#: Fields of a ``cpuN`` line of /proc/stat counted as busy: user, nice, system, irq,
#: softirq, steal (guest time is already inside user; idle and iowait are not busy).
_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)


@dataclass(frozen=True)
class CpuSample:
    """CPU time counters at one moment.

    Attributes:
        wall: ``time.monotonic()`` seconds.
        busy: CPU-seconds the watched CPUs have been busy since boot, every process counted.
        own: CPU-seconds this process has used (all its threads, user + system).
        cores: number of watched CPUs (those this process may run on).
    """

    wall: float
    busy: float
    own: float
    cores: int


def _allowed_cpus() -> set[int] | None:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def read_cpu_sample(
    cpus: Iterable[int] | None = None, *, stat_path: str = "/proc/stat"
) -> CpuSample | None:
    """Read the CPU counters of ``cpus`` (default: those this process may run on).

    Args:
        cpus: CPU numbers to watch; None for the process's affinity set.
        stat_path: the kernel's statistics file (a parameter for tests).

    Returns:
        The sample, or None where the counters cannot be read (no ``/proc/stat``).
    """
    wanted = set(cpus) if cpus is not None else _allowed_cpus()
    try:
        with open(stat_path, encoding="ascii") as f:
            lines = f.read().splitlines()
        ticks = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, AttributeError):
        return None
    busy = 0
    cores = 0
    for line in lines:
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or name == "cpu":
            continue
        try:
            index = int(name[3:])
            values = [int(v) for v in rest.split()]
        except ValueError:
            continue
        if (wanted is not None and index not in wanted) or len(values) < 8:
            continue
        busy += sum(values[i] for i in _BUSY_FIELDS)
        cores += 1
    if cores == 0 or ticks <= 0:
        return None
    own = os.times()
    return CpuSample(
        wall=time.monotonic(), busy=busy / ticks, own=own.user + own.system, cores=cores
    )


def others_busy_cores(before: CpuSample, after: CpuSample) -> float:
    """Average number of watched cores busy with other processes between two samples.

    ``(busy time of every process - this process's CPU time) / wall time``, clamped to
    ``[0, cores]`` (the counters tick at 100 Hz: short intervals are noisy).
    """
    wall = after.wall - before.wall
    if wall <= 0:
        return 0.0
    others = ((after.busy - before.busy) - (after.own - before.own)) / wall
    return min(max(others, 0.0), float(after.cores))


def choose_threads(current: int, maximum: int, cores: int, others: float) -> int:
    """The thread count for the next interval, given what other processes took in the last.

    ``free = cores - others``; lower at once to ``round(free)``; raise to ``floor(free +
    0.25)`` only (a quarter core to spare, so a measure near a half does not flap); always
    within ``[1, maximum]``.

    Args:
        current: threads in use now.
        maximum: the most threads to use (the count torch started with, or the user's).
        cores: cores this process may run on.
        others: cores busy with other processes (:func:`others_busy_cores`).

    Returns:
        The thread count to use.
    """
    free = cores - others
    down = min(max(math.floor(free + 0.5), 1), maximum)
    if down < current:
        return down
    up = min(max(math.floor(free + 0.25), 1), maximum)
    return up if up > current else min(current, maximum)


def _torch_get_threads() -> int:
    import torch

    return torch.get_num_threads()


def _torch_set_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


class ThreadPolicy:
    """Adapt torch's intra-op thread count to what other processes leave free.

    Create it early (before torch's first parallel work: the first interval then covers
    the imports), call :meth:`poll` often from the thread that runs the torch work (every
    iteration of a loop is fine: it reads counters only every ``interval`` seconds).

    >>> policy = ThreadPolicy()          # doctest: +SKIP
    >>> for step in range(iters):        # doctest: +SKIP
    ...     policy.poll()
    ...     loss = ...; loss.backward(); optimizer.step()

    Args:
        maximum: the most threads to use; None for torch's count at the first poll
            (``OMP_NUM_THREADS`` or the number of cores).
        interval: seconds between two measurements.
        sampler: returns a :class:`CpuSample` or None (a parameter for tests).
        get_threads: returns torch's current thread count (a parameter for tests).
        set_threads: sets torch's thread count (a parameter for tests).
    """

    def __init__(
        self,
        *,
        maximum: int | None = None,
        interval: float = 0.5,
        sampler: Callable[[], CpuSample | None] = read_cpu_sample,
        get_threads: Callable[[], int] = _torch_get_threads,
        set_threads: Callable[[int], None] = _torch_set_threads,
    ) -> None:
        if maximum is not None and (not isinstance(maximum, int) or maximum < 1):
            raise ValueError(f"maximum: expected a positive integer or None, got {maximum!r}")
        if not interval > 0:
            raise ValueError(f"interval: expected a positive number of seconds, got {interval!r}")
        self.maximum = maximum
        self.interval = float(interval)
        self._sampler = sampler
        self._get_threads = get_threads
        self._set_threads = set_threads
        self._last = sampler()
        self._current: int | None = None
        #: (seconds since the policy started, threads) at every change; the first is the start.
        self.changes: list[tuple[float, int]] = []
        self._start = self._last.wall if self._last is not None else time.monotonic()

    @property
    def enabled(self) -> bool:
        """False where the CPU counters cannot be read (the thread count is then left alone)."""
        return self._last is not None

    @property
    def threads(self) -> int | None:
        """The thread count the policy set last (None before the first decision)."""
        return self._current

    def poll(self, *, now: float | None = None) -> int | None:
        """Measure and adjust if ``interval`` has passed since the last measurement.

        Args:
            now: the ``time.monotonic()`` reading to compare with (a parameter for tests).

        Returns:
            The thread count in use after the call (None while the policy is disabled).
        """
        last = self._last
        if last is None:
            return None
        if (time.monotonic() if now is None else now) - last.wall < self.interval:
            return self._current
        sample = self._sampler()
        if sample is None:
            return self._current
        self._last = sample
        if self._current is None:
            self._current = self._get_threads()
            if self.maximum is None:
                self.maximum = self._current
            self.changes.append((sample.wall - self._start, self._current))
        assert self.maximum is not None  # set above on the first decision
        target = choose_threads(
            self._current, self.maximum, sample.cores, others_busy_cores(last, sample)
        )
        if target != self._current:
            self._set_threads(target)
            self._current = target
            self.changes.append((sample.wall - self._start, target))
        return self._current


_active: ThreadPolicy | None = None


def install_policy(policy: ThreadPolicy | None) -> ThreadPolicy | None:
    """Make ``policy`` the one that :func:`poll` drives (None removes it); returns the previous."""
    global _active
    previous, _active = _active, policy
    return previous


def active_policy() -> ThreadPolicy | None:
    """The installed policy, if any."""
    return _active


def poll() -> None:
    """Poll the installed policy (the pipelines call this between iterations and phases);
    does nothing when none is installed."""
    if _active is not None:
        _active.poll()
