"""The optimisation loop: history, snapshots, best-so-far and Ctrl-C, on a toy problem."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from diffmesh.fit.loop import MomentumSGD, optimize


def _toy():
    x = torch.tensor([3.0, -2.0], requires_grad=True)
    target = torch.tensor([1.0, 1.0])

    def step(_: int) -> dict[str, torch.Tensor]:
        a = ((x - target) ** 2).sum()
        b = 0.1 * (x**2).sum()
        return {"total": a + b, "fit": a, "prior": b}

    return x, step


def test_loop_records_every_iteration_and_snapshots():
    x, step = _toy()
    seen = []
    run = optimize([x], step, iters=25, lr=0.1, momentum=0.5, snapshot=seen.append, snapshot_every=10)
    assert not run.interrupted and run.iterations == 25
    assert list(run.history) == ["total", "fit", "prior"]
    assert all(len(v) == 25 for v in run.history.values())
    assert run.history["total"][-1] < 0.1 * run.history["total"][0]
    assert seen == [0, 10, 20, 25]  # first, every 10, and the final state
    # Reference: the same SGD written out by hand.
    y = torch.tensor([3.0, -2.0], requires_grad=True)
    opt = torch.optim.SGD([y], lr=0.1, momentum=0.5)
    for _ in range(25):
        opt.zero_grad()
        (((y - 1.0) ** 2).sum() + 0.1 * (y**2).sum()).backward()
        opt.step()
    assert torch.equal(x, y)  # bit for bit: MomentumSGD is torch.optim.SGD written out


def test_momentum_sgd_matches_torch_sgd_with_skipped_and_zero_momentum_params():
    a, b = torch.tensor([1.0, -4.0, 2.5], requires_grad=True), torch.tensor([0.5], requires_grad=True)
    a_ref, b_ref = a.detach().clone().requires_grad_(True), b.detach().clone().requires_grad_(True)
    for momentum in (0.0, 0.9):
        mine = MomentumSGD([a, b], lr=0.3, momentum=momentum)
        ref = torch.optim.SGD([a_ref, b_ref], lr=0.3, momentum=momentum)
        for i in range(6):
            for opt, (p, q) in ((mine, (a, b)), (ref, (a_ref, b_ref))):
                opt.zero_grad()
                loss = (p**3).sum() if i % 2 else (p**2).sum() + (q * p[0]).sum()
                loss.backward()  # odd steps: q has no gradient and must be skipped
                opt.step()
            assert torch.equal(a, a_ref) and torch.equal(b, b_ref)


def test_the_loop_does_not_import_dynamo():
    """torch.optim would import torch._dynamo: seconds at every start of the app."""
    code = ("import sys, torch\n"
            "from diffmesh.fit.loop import MomentumSGD, optimize\n"
            "x = torch.zeros(2, requires_grad=True)\n"
            "optimize([x], lambda i: {'total': ((x - 1) ** 2).sum()}, iters=3, lr=0.1, momentum=0.9)\n"
            "assert 'torch._dynamo' not in sys.modules, 'torch._dynamo was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_loss_scale_scales_the_gradient_only():
    x, step = _toy()
    run = optimize([x], step, iters=1, lr=0.1, momentum=0.0, loss_scale=2.0)
    # One step of lr 0.1 on 2 * loss == one step of lr 0.2 on loss.
    grad = 2 * (torch.tensor([3.0, -2.0]) - 1.0) + 0.2 * torch.tensor([3.0, -2.0])
    assert torch.allclose(x.detach(), torch.tensor([3.0, -2.0]) - 0.2 * grad)
    assert run.history["total"][0] == pytest.approx(4.0 + 9.0 + 0.1 * 13.0)


def test_keyboard_interrupt_keeps_history_and_best_parameters():
    x, step = _toy()

    def stop_at_7(iteration: int, losses) -> None:
        if iteration == 7:
            raise KeyboardInterrupt

    frames = []
    run = optimize([x], step, iters=100, lr=0.1, momentum=0.9, callback=stop_at_7,
                   snapshot=frames.append, snapshot_every=5)
    assert run.interrupted and run.iterations == 8
    assert len(run.history["total"]) == 8
    assert frames == [0, 5]  # no final snapshot after an interrupt
    best = run.best_iteration
    assert run.history["total"][best] == min(run.history["total"])
    # best_params are the parameters that produced the best loss.
    with torch.no_grad():
        value = ((run.best_params[0] - 1.0) ** 2).sum() + 0.1 * (run.best_params[0] ** 2).sum()
    assert float(value) == pytest.approx(run.history["total"][best], rel=1e-6)


def test_nan_loss_is_never_best():
    x = torch.tensor([1.0], requires_grad=True)

    def step(i: int) -> dict[str, torch.Tensor]:
        loss = (x**2).sum()
        return {"total": loss * (float("nan") if i >= 2 else 1.0)}

    run = optimize([x], step, iters=4, lr=0.1, momentum=0.0)
    assert run.best_iteration == 1


def test_divergence_stops_the_loop_and_keeps_the_best():
    """lr 10 on the toy quadratic overshoots more each step (|1 - 2.2 * 10| > 1): the total
    climbs past 1e6 times its best within a few steps; the loop stops there."""
    x, step = _toy()
    run = optimize([x], step, iters=100, lr=10.0, momentum=0.0)
    assert run.diverged and not run.interrupted
    assert 0 < run.iterations < 100 and run.diverged_at == run.iterations
    assert len(run.history["total"]) == run.iterations  # the diverging iteration is not recorded
    assert run.best_iteration == 0 and torch.equal(run.best_params[0], torch.tensor([3.0, -2.0]))
    assert run.diverged_loss > 1e6 * run.history["total"][0]


def test_a_failure_after_a_diverging_step_is_reported_as_divergence():
    """An iteration that raises on overflowed values (as sampling does with infinite areas)."""
    x = torch.tensor([1.0], requires_grad=True)

    def step(_: int) -> dict[str, torch.Tensor]:
        if not torch.isfinite(x * x).all():
            raise RuntimeError("invalid multinomial distribution")
        return {"total": (x * x).sum()}

    run = optimize([x], step, iters=10, lr=1e30, momentum=0.0, check_every=1000)
    assert run.diverged and run.iterations >= 1


def test_nan_loss_is_divergence_and_a_plain_failure_is_not():
    x = torch.tensor([1.0], requires_grad=True)
    run = optimize([x], lambda i: {"total": (x * (float("nan") if i == 3 else 1.0)).sum()}, iters=10, lr=0.1,
                   momentum=0.0)
    assert run.diverged and run.diverged_at == 3 and run.iterations == 3

    def broken(i: int) -> dict[str, torch.Tensor]:
        if i == 2:
            raise RuntimeError("a bug, not a divergence")
        return {"total": (x * x).sum()}

    with pytest.raises(RuntimeError, match="a bug"):
        optimize([x], broken, iters=10, lr=0.1, momentum=0.0)
