"""AdamUniform against a hand-written reference step."""

from __future__ import annotations

import math
import sys

import pytest
import torch
from diffmesh.meshloss import AdamUniform


def reference_steps(p0, grads, lr, betas, eps):
    """Apply AdamUniform's formula step by step with Python floats, element by element."""
    values = p0.flatten().tolist()
    m = [0.0] * len(values)
    s = [0.0] * len(values)
    for t, grad in enumerate(grads, start=1):
        g = grad.flatten().tolist()
        m = [betas[0] * mi + (1 - betas[0]) * gi for mi, gi in zip(m, g, strict=True)]
        s = [betas[1] * si + (1 - betas[1]) * gi * gi for si, gi in zip(s, g, strict=True)]
        scale = max(math.sqrt(si / (1 - betas[1] ** t)) for si in s) + eps
        values = [
            v - lr * (mi / (1 - betas[0] ** t)) / scale for v, mi in zip(values, m, strict=True)
        ]
    return torch.tensor(values, dtype=torch.float64).view(p0.shape)


def test_matches_reference_with_groups():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, generator=g, dtype=torch.float64, requires_grad=True)
    a0, b0 = a.detach().clone(), b.detach().clone()
    optimizer = AdamUniform(
        [{"params": [a]}, {"params": [b], "lr": 0.3}], lr=0.05, betas=(0.8, 0.99)
    )
    grads_a, grads_b = [], []
    for _ in range(4):
        optimizer.zero_grad()
        loss = (a.square() * torch.arange(18, dtype=torch.float64).view(6, 3)).sum() + b.sin().sum()
        loss.backward()
        grads_a.append(a.grad.clone())
        grads_b.append(b.grad.clone())
        optimizer.step()
    torch.testing.assert_close(a.detach(), reference_steps(a0, grads_a, 0.05, (0.8, 0.99), 1e-8))
    torch.testing.assert_close(b.detach(), reference_steps(b0, grads_b, 0.3, (0.8, 0.99), 1e-8))


def test_first_step_is_uniform():
    """Step 1 moves every element by lr * g / max|g|: the largest gradient moves by lr."""
    p = torch.zeros(5, requires_grad=True, dtype=torch.float64)
    p.grad = torch.tensor([1.0, -2.0, 4.0, 0.0, 0.5], dtype=torch.float64)
    AdamUniform([p], lr=0.1, eps=0.0).step()
    torch.testing.assert_close(p.detach(), -0.1 * p.grad / 4.0)


def test_degenerate_gradients():
    zero = torch.ones(3, requires_grad=True)
    zero.grad = torch.zeros(3)  # 0 / (0 + eps): no step, no NaN
    empty = torch.zeros(0, 3, requires_grad=True)
    empty.grad = torch.zeros(0, 3)
    untouched = torch.ones(2, requires_grad=True)  # no gradient: skipped
    optimizer = AdamUniform([zero, empty, untouched])
    optimizer.step()
    assert torch.equal(zero.detach(), torch.ones(3)) and torch.equal(
        untouched.detach(), torch.ones(2)
    )
    optimizer.zero_grad()
    assert zero.grad is None and empty.grad is None


def test_closure_and_zero_grad_to_zero():
    p = torch.tensor([1.0, 2.0], requires_grad=True)
    optimizer = AdamUniform([p], lr=0.1)

    def closure():
        optimizer.zero_grad(set_to_none=False)
        loss = p.square().sum()
        loss.backward()
        return loss

    p.grad = torch.ones(2)
    assert float(optimizer.step(closure).detach()) == pytest.approx(5.0)
    assert torch.all(p.detach() < torch.tensor([1.0, 2.0]))


def test_bad_settings():
    p = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="lr"):
        AdamUniform([p], lr=0.0)
    with pytest.raises(ValueError, match="betas"):
        AdamUniform([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="eps"):
        AdamUniform([p], eps=-1.0)
    with pytest.raises(ValueError, match="lr"):
        AdamUniform([{"params": [p], "lr": -1.0}])
    with pytest.raises(ValueError, match="non-leaf"):
        AdamUniform([p * 2])


def test_does_not_import_dynamo():
    """Construction, zero_grad and step skip torch._dynamo (seconds at a program's start)."""
    if "torch._dynamo" in sys.modules:
        pytest.skip("torch._dynamo already imported in this process")
    p = torch.zeros(2, requires_grad=True)
    optimizer = AdamUniform([p])
    p.grad = torch.ones(2)
    optimizer.step()
    optimizer.zero_grad()
    assert "torch._dynamo" not in sys.modules
