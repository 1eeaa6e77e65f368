"""The CPU thread policy: its measure of other processes' load and its decisions (fake counters)."""

from __future__ import annotations

import os

import pytest
from diffmesh.fit.threads import (
    CpuSample,
    ThreadPolicy,
    choose_threads,
    install_policy,
    others_busy_cores,
    poll,
    read_cpu_sample,
)


@pytest.mark.parametrize(
    ("current", "maximum", "cores", "others", "expected"),
    [
        (2, 2, 2, 0.0, 2),  # alone: every core
        (2, 2, 2, 0.1, 2),  # a little background noise: keep
        (2, 2, 2, 0.6, 1),  # another process takes more than half a core: one thread
        (2, 2, 2, 1.0, 1),  # a second fit at one thread
        (2, 2, 2, 2.0, 1),  # everything busy: never below one
        (1, 2, 2, 1.0, 1),  # still contended: stay
        (1, 2, 2, 0.6, 1),  # no clear room: stay (hysteresis)
        (1, 2, 2, 0.5, 1),  # exactly half a core: stay
        (1, 2, 2, 0.2, 2),  # the other process is gone: back to every core
        (8, 8, 8, 4.0, 4),  # 8 cores, another process on 4 of them: the other 4
        (4, 8, 8, 4.0, 4),  # ... and stay there
        (16, 16, 16, 8.0, 8),  # two 16-thread fits on 16 cores each see 8 taken: 8 each, stable
        (8, 16, 16, 8.0, 8),
        (1, 2, 2, 0.0, 2),
        (1, 1, 2, 0.0, 1),  # the maximum (the user's count) is never exceeded
        (3, 2, 2, 0.0, 2),
    ],
)
def test_choose_threads(current, maximum, cores, others, expected):
    assert choose_threads(current, maximum, cores, others) == expected


def test_two_fits_settle_at_one_thread_each_and_recover():
    """Two processes running the policy on 2 cores, each measuring the other's CPU use.

    A toy model of the machine: a process at t threads gets min(t, fair share) cores;
    with 2 + 2 threads on 2 cores each gets 1 core (spinning included)."""
    cores = 2
    threads = [2, 2]
    for _ in range(5):
        total = sum(threads)
        use = [t * min(1.0, cores / total) for t in threads]
        threads = [choose_threads(threads[i], 2, cores, use[1 - i]) for i in range(2)]
    assert threads == [1, 1]
    threads[1] = 0  # the second fit ends
    for _ in range(2):
        threads[0] = choose_threads(threads[0], 2, cores, 0.0)
    assert threads[0] == 2


def _sample(wall: float, busy: float, own: float, cores: int = 2) -> CpuSample:
    return CpuSample(wall=wall, busy=busy, own=own, cores=cores)


def test_others_busy_cores():
    a = _sample(10.0, 100.0, 5.0)
    # 1 s later: the CPUs were busy 2 CPU-seconds, 1 of them ours -> others took 1 core.
    assert others_busy_cores(a, _sample(11.0, 102.0, 6.0)) == pytest.approx(1.0)
    assert others_busy_cores(a, _sample(11.0, 102.0, 7.0)) == pytest.approx(0.0)  # all ours
    assert others_busy_cores(a, _sample(11.0, 101.0, 7.0)) == 0.0  # tick noise: clamped at 0
    assert others_busy_cores(a, _sample(11.0, 110.0, 5.0)) == 2.0  # clamped at the core count
    assert others_busy_cores(a, a) == 0.0  # no time passed


def test_read_cpu_sample_parses_proc_stat(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text(
        "cpu  300 0 100 5000 10 0 0 0 0 0\n"
        "cpu0 100 0 50 2500 5 0 0 0 0 0\n"
        "cpu1 200 10 50 2500 5 3 2 5 0 0\n"
        "cpu2 999 0 0 0 0 0 0 0 0 0\n"
        "intr 12345\nctxt 999\n"
    )
    ticks = os.sysconf("SC_CLK_TCK")
    sample = read_cpu_sample([0, 1], stat_path=str(stat))
    assert sample is not None and sample.cores == 2
    # busy = user + nice + system + irq + softirq + steal over cpu0 and cpu1 (cpu2 not watched)
    assert sample.busy == pytest.approx((150 + 200 + 10 + 50 + 3 + 2 + 5) / ticks)
    assert sample.own > 0
    assert read_cpu_sample([0], stat_path=str(tmp_path / "missing")) is None
    assert read_cpu_sample([7], stat_path=str(stat)) is None  # no watched CPU in the file


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="no /proc/stat here")
def test_read_cpu_sample_of_this_machine():
    sample = read_cpu_sample()
    assert sample is not None and sample.cores == len(os.sched_getaffinity(0))
    assert sample.busy > 0


class FakeMachine:
    """Counters for a ThreadPolicy: each call of ``sample`` first lets 1 s pass, during which
    the other processes take ``others`` cores and this one ``own`` cores."""

    def __init__(self, cores: int = 2) -> None:
        self.cores = cores
        self.wall = self.busy = self.own_time = 0.0
        self.others = 0.0
        self.own = 1.0
        self.threads = cores
        self.set_calls: list[int] = []

    def sample(self) -> CpuSample:
        self.wall += 1.0
        self.busy += self.others + self.own
        self.own_time += self.own
        return _sample(self.wall, self.busy, self.own_time, self.cores)

    def set_threads(self, n: int) -> None:
        self.threads = n
        self.set_calls.append(n)


def _policy(machine: FakeMachine, **kwargs) -> ThreadPolicy:
    return ThreadPolicy(
        sampler=machine.sample,
        get_threads=lambda: machine.threads,
        set_threads=machine.set_threads,
        **kwargs,
    )


def test_policy_follows_the_load():
    machine = FakeMachine()
    policy = _policy(machine)
    assert policy.enabled and policy.threads is None
    assert policy.poll(now=machine.wall + 1.0) == 2  # alone: keeps torch's count, sets nothing
    assert machine.set_calls == []
    machine.others = 1.0  # another fit starts
    assert policy.poll(now=machine.wall + 1.0) == 1
    assert policy.poll(now=machine.wall + 1.0) == 1
    machine.others = 0.05  # it ended
    assert policy.poll(now=machine.wall + 1.0) == 2
    assert machine.set_calls == [1, 2]
    assert [t for _, t in policy.changes] == [2, 1, 2]


def test_policy_measures_only_once_per_interval():
    machine = FakeMachine()
    policy = _policy(machine, interval=5.0)
    machine.others = 1.0
    assert (
        policy.poll(now=machine.wall + 1.0) is None
    )  # 1 s < 5 s since the first sample: no decision
    assert machine.set_calls == []
    assert policy.poll(now=machine.wall + 10.0) == 1


def test_policy_respects_a_maximum_and_a_missing_proc():
    machine = FakeMachine(cores=8)
    machine.threads = 8
    policy = _policy(machine, maximum=3)
    assert policy.poll(now=machine.wall + 1.0) == 3  # lowered to the maximum at the first decision
    disabled = ThreadPolicy(
        sampler=lambda: None, get_threads=lambda: 2, set_threads=machine.set_threads
    )
    assert not disabled.enabled and disabled.poll(now=1e9) is None
    with pytest.raises(ValueError, match="maximum"):
        ThreadPolicy(maximum=0, sampler=machine.sample)
    with pytest.raises(ValueError, match="interval"):
        ThreadPolicy(interval=0.0, sampler=machine.sample)


def test_installed_policy_is_polled():
    machine = FakeMachine()
    machine.others = 1.5
    policy = _policy(machine, interval=1e-9)
    previous = install_policy(policy)
    try:
        poll()
        assert machine.threads == 1
    finally:
        install_policy(previous)
    poll()  # none installed: nothing happens
