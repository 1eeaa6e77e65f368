"""The optimisation loop shared by both pipelines: SGD, loss history, best-so-far, Ctrl-C.

A pipeline supplies ``step(iteration) -> {term: loss}`` (with a differentiable
``"total"``); the loop does the rest. Everything that would cost a host sync per
iteration (reading loss values, keeping the best parameters) stays on the device.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from diffmesh.fit import threads
from diffmesh.fit.progress import Progress

__all__ = ["DIVERGENCE_FACTOR", "LoopResult", "MomentumSGD", "StepCallback", "check_loop_settings", "optimize", "require"]

def require(condition: bool, message: str) -> None:
    """Raise ``ValueError(message)`` unless ``condition`` holds (settings validation)."""
    if not condition:
        raise ValueError(message)


def check_loop_settings(config: object, weight_names: Sequence[str]) -> None:
    """Validate the settings both pipelines share: sphere level, SGD schedule, loss weights,
    snapshot interval and evaluation sizes. Raises ValueError naming the setting."""

    def get(name: str) -> float:
        return getattr(config, name)

    require(0 <= get("level") <= 6, f"level: expected an integer in [0, 6], got {get('level')}")
    require(get("iters") >= 1, f"iters: expected a positive integer, got {get('iters')}")
    require(math.isfinite(get("lr")) and get("lr") > 0, f"lr: expected a positive number, got {get('lr')}")
    require(0 <= get("momentum") < 1, f"momentum: expected a number in [0, 1), got {get('momentum')}")
    for name in weight_names:
        require(math.isfinite(get(name)) and get(name) >= 0, f"{name}: expected a number >= 0, got {get(name)}")
    require(get("plot_every") is None or get("plot_every") >= 1,
            f"plot_every: expected a positive integer or None, got {get('plot_every')}")
    require(get("eval_samples") >= 1 and get("eval_draws") >= 1,
            "eval_samples, eval_draws: expected positive integers")
    require(get("eval_dense_samples") >= 0 and get("eval_dense_draws") >= 1,
            "eval_dense_samples, eval_dense_draws: expected an integer >= 0 and a positive integer")


class MomentumSGD:
    """``torch.optim.SGD(params, lr=lr, momentum=momentum)``, step for step and bit for bit
    (no dampening, weight decay or Nesterov).

    Written out because constructing any ``torch.optim`` optimizer imports ``torch._dynamo``,
    which adds seconds to every run's start (about 2 s with cached bytecode, 8 s without).
    """

    def __init__(self, params: Sequence[torch.Tensor], lr: float, momentum: float) -> None:
        self.params = list(params)
        self.lr = lr
        self.momentum = momentum
        self.buffers: list[torch.Tensor | None] = [None] * len(self.params)

    def zero_grad(self) -> None:
        """Drop the gradients (as ``zero_grad(set_to_none=True)``)."""
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """``buf = grad`` on the first step, then ``buf = momentum * buf + grad``;
        ``p -= lr * buf``. Parameters without a gradient are skipped."""
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            direction = p.grad
            if self.momentum != 0:
                buf = self.buffers[i]
                if buf is None:
                    buf = self.buffers[i] = direction.detach().clone()
                else:
                    buf.mul_(self.momentum).add_(direction)
                direction = buf
            p.add_(direction, alpha=-self.lr)


#: Called after every iteration with (iteration, {term: detached loss tensor}).
StepCallback = Callable[[int, Mapping[str, torch.Tensor]], None]


@dataclass
class LoopResult:
    """What the loop did.

    Attributes:
        history: term -> per-iteration values (``iterations`` of them), ``"total"`` first.
        iterations: iterations completed (fewer than asked if interrupted).
        seconds: wall time of the loop, snapshots included.
        snapshot_seconds: the part of ``seconds`` spent in snapshots (GIF frames).
        interrupted: True if Ctrl-C (KeyboardInterrupt) stopped the loop.
        best_params: detached copies of the parameters at the lowest total loss seen.
        best_iteration: the iteration of that loss (-1 if no iteration completed).
        diverged: True if the loop stopped because the fit diverged (a loss not finite, a
            parameter whose square overflows, a total loss :data:`DIVERGENCE_FACTOR` times
            its best; also an iteration that raised after such a step, e.g. sampling
            weights that overflowed).
        diverged_at: the iteration that showed it (-1 if the fit did not diverge); its
            losses are not in ``history``, and ``iterations`` counts those before it.
        diverged_loss: the total loss of that iteration (NaN where it failed or had none).
    """

    history: dict[str, list[float]]
    iterations: int
    seconds: float
    snapshot_seconds: float
    interrupted: bool
    best_params: list[torch.Tensor] = field(default_factory=list)
    best_iteration: int = -1
    diverged: bool = False
    diverged_at: int = -1
    diverged_loss: float = math.nan


#: A total loss this many times the best one seen means the fit diverged (no converging
#: fit climbs six orders of magnitude; a too-large learning rate does so in one step).
DIVERGENCE_FACTOR = 1e6


def _diverging(row: torch.Tensor, best_total: torch.Tensor, params: Sequence[torch.Tensor]) -> bool:
    """Whether this iteration's losses (``row``, total first) or the parameters show divergence
    (one host sync): a loss not finite or above ``DIVERGENCE_FACTOR`` times the best, or a
    parameter so large that its square overflows (so do the areas and squared distances
    computed from it; a finite parameter of 1e20 in float32 is no fit)."""
    checks = [~torch.isfinite(row).all(), row[0] > DIVERGENCE_FACTOR * best_total.clamp_min(1e-30)]
    checks += [~torch.isfinite(p.detach() * p.detach()).all() for p in params]
    return bool(torch.stack(checks).any())


def optimize(
    params: Sequence[torch.Tensor],
    step: Callable[[int], dict[str, torch.Tensor]],
    *,
    iters: int,
    lr: float,
    momentum: float,
    loss_scale: float = 1.0,
    progress: Progress | None = None,
    snapshot: Callable[[int], None] | None = None,
    snapshot_every: int = 0,
    callback: StepCallback | None = None,
    check_every: int = 10,
    optimizer: Any = None,
) -> LoopResult:
    """Run SGD with momentum on ``params`` for ``iters`` iterations of ``step``.

    Snapshots are taken at iteration 0, every ``snapshot_every`` iterations, and once after
    the last one (with iteration number ``iters``, or the number completed when
    interrupted). A KeyboardInterrupt during an iteration ends the loop cleanly: the
    result says so and holds everything recorded until then.

    Args:
        params: leaf tensors with ``requires_grad`` (optimised in place).
        step: computes the losses of one iteration from the current ``params``; must
            return a dict of scalar tensors with a differentiable ``"total"``.
        iters: number of iterations.
        lr: SGD learning rate.
        momentum: SGD momentum.
        loss_scale: the backward pass uses ``total * loss_scale`` (a batch of N independent
            fits uses N, so that each mesh gets the gradient of its own fit).
        progress: bar to advance, showing the losses now and then.
        snapshot: called with the iteration number (outside autograd) to record a frame.
        snapshot_every: iterations between snapshots, 0 for only first and last.
        callback: called after every iteration with the detached losses.
        check_every: iterations between divergence checks off the CPU.
        optimizer: instead of SGD (``lr`` and ``momentum`` then unused), an object with
            ``zero_grad()`` and ``step()`` over ``params`` (e.g. AdamUniform).

    Returns:
        The loop's record.
    """
    params = list(params)
    if optimizer is None:
        optimizer = MomentumSGD(params, lr=lr, momentum=momentum)
    device = params[0].device
    best_params = [p.detach().clone() for p in params]
    best_total = torch.full((), float("inf"), device=device)
    history_rows: list[torch.Tensor] = []
    names: list[str] = []
    snapshot_seconds = 0.0
    interrupted = False
    diverged_at = -1
    diverged_loss = math.nan
    done = 0
    every = 1 if device.type == "cpu" else max(int(check_every), 1)

    def take_snapshot(iteration: int) -> None:
        nonlocal snapshot_seconds
        if snapshot is None:
            return
        start = time.perf_counter()
        with torch.no_grad():
            snapshot(iteration)
        snapshot_seconds += time.perf_counter() - start

    start = time.perf_counter()
    try:
        for iteration in range(iters):
            if iteration == 0 or (snapshot_every > 0 and iteration % snapshot_every == 0):
                take_snapshot(iteration)
            threads.poll()
            optimizer.zero_grad()
            try:
                losses = step(iteration)
                total = losses["total"]
                (total * loss_scale).backward()
            except (RuntimeError, ValueError):
                # An iteration that fails after a diverging one (e.g. sampling weights that
                # overflowed): report the divergence, not the failure it caused.
                if history_rows and _diverging(history_rows[-1], best_total, params):
                    diverged_at, diverged_loss = iteration, math.nan
                    break
                raise
            detached = {k: v.detach() for k, v in losses.items()}
            if not names:
                names = list(detached)
            history_rows.append(torch.stack([detached[k].reshape(()).float() for k in names]))
            if (iteration + 1) % every == 0 and _diverging(history_rows[-1], best_total, params):
                diverged_at, diverged_loss = iteration, float(history_rows.pop()[0])
                break
            # Best-so-far on the device (no sync): the parameters that produced this loss.
            with torch.no_grad():
                improved = detached["total"] < best_total
                best_total = torch.where(improved, detached["total"], best_total)
                for kept, p in zip(best_params, params, strict=True):
                    kept.copy_(torch.where(improved, p.detach(), kept))
            optimizer.step()
            done = iteration + 1
            if callback is not None:
                callback(iteration, detached)
            if progress is not None:
                shown = None
                if progress.wants_losses(iteration):
                    shown = dict(zip(names, history_rows[-1].tolist(), strict=True))
                progress.update(iteration, shown)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if progress is not None:
            progress.close()
    diverged = diverged_at >= 0
    if not interrupted and not diverged:
        try:
            take_snapshot(done)
        except KeyboardInterrupt:
            interrupted = True
    seconds = time.perf_counter() - start

    history: dict[str, list[float]] = {k: [] for k in names}
    if history_rows:
        table = torch.stack(history_rows).cpu()
        for j, name in enumerate(names):
            history[name] = table[:, j].tolist()
    best_iteration = -1
    if history_rows:
        totals = torch.tensor(history["total"])
        finite = torch.isfinite(totals)
        if finite.any():
            best_iteration = int(torch.where(finite, totals, torch.inf).argmin())
    return LoopResult(
        history=history,
        iterations=done,
        seconds=seconds,
        snapshot_seconds=snapshot_seconds,
        interrupted=interrupted,
        best_params=best_params,
        best_iteration=best_iteration,
        diverged=diverged,
        diverged_at=diverged_at,
        diverged_loss=diverged_loss,
    )
