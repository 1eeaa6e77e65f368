"""interpolate_vertex_pairs: the channel-row autograd function against a plain reference."""

from __future__ import annotations

import torch
from diffmesh.softrender.interpolate import interpolate_vertex_groups, interpolate_vertex_pairs


def _reference(corners: torch.Tensor, bary: torch.Tensor, attrs: torch.Tensor) -> torch.Tensor:
    """Obviously correct: gather each corner's row and sum the weighted rows."""
    out = torch.zeros(corners.shape[0], attrs.shape[1], dtype=attrs.dtype)
    for i in range(3):
        out = out + bary[:, i : i + 1] * attrs[corners[:, i]]
    return out


def _inputs(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    # face-major runs of equal corners, as the rasterizer's pairs have
    corners = torch.randint(0, 6, (4, 3), generator=gen).repeat_interleave(3, dim=0)
    bary = torch.rand(12, 3, generator=gen, dtype=dtype)
    attrs = torch.randn(6, 5, generator=gen, dtype=dtype)
    return corners, bary, attrs


def test_interpolate_vertex_pairs_matches_reference() -> None:
    corners, bary, attrs = _inputs(torch.float32)
    out = interpolate_vertex_pairs(corners, bary, attrs)
    assert out.shape == (12, 5)
    # A sum of 3 products b_i * a_i (b in [0, 1]): a few float32 ulps of 3 max|a|.
    tol = 4 * torch.finfo(torch.float32).eps * 3 * float(attrs.abs().max())
    torch.testing.assert_close(out, _reference(corners, bary, attrs), rtol=0, atol=tol)
    ref_b, ref_a = bary.clone().requires_grad_(), attrs.clone().requires_grad_()
    new_b, new_a = bary.clone().requires_grad_(), attrs.clone().requires_grad_()
    weights = torch.randn(12, 5)
    (_reference(corners, ref_b, ref_a) * weights).sum().backward()
    (interpolate_vertex_pairs(corners, new_b, new_a) * weights).sum().backward()
    torch.testing.assert_close(new_b.grad, ref_b.grad)
    torch.testing.assert_close(new_a.grad, ref_a.grad)


def test_interpolate_vertex_pairs_gradcheck() -> None:
    corners, bary, attrs = _inputs(torch.float64)
    bary.requires_grad_()
    attrs.requires_grad_()
    assert torch.autograd.gradcheck(lambda b, a: interpolate_vertex_pairs(corners, b, a), (bary, attrs))


def test_interpolate_vertex_pairs_empty_and_degenerate() -> None:
    attrs = torch.randn(4, 3, requires_grad=True)
    out = interpolate_vertex_pairs(torch.zeros(0, 3, dtype=torch.long), torch.zeros(0, 3), attrs)
    assert out.shape == (0, 3)
    out.sum().backward()
    assert torch.equal(attrs.grad, torch.zeros(4, 3))
    # a zero-area "face" (one vertex three times) and zero barycentrics: finite values and grads
    bary = torch.zeros(2, 3, requires_grad=True)
    out = interpolate_vertex_pairs(torch.tensor([[1, 1, 1], [0, 2, 3]]), bary, attrs)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(bary.grad).all()


def test_interpolate_vertex_groups_matches_reference() -> None:
    """Several tables at once: each output and gradient as if interpolated alone; unused ones get none."""
    corners, bary, attrs = _inputs(torch.float64)
    # pairs out of face order too: runs of equal corners are then short
    corners = torch.cat((corners, corners.flip(0)))
    bary = torch.cat((bary, bary.flip(1))).requires_grad_()
    tables = [attrs.requires_grad_(), torch.randn(6, 3, dtype=torch.float64, requires_grad=True),
              torch.randn(6, 2, dtype=torch.float64, requires_grad=True)]
    outs = interpolate_vertex_groups(corners, bary, *tables)
    for out, table in zip(outs, tables, strict=True):
        torch.testing.assert_close(out, _reference(corners, bary, table))
    weights = [torch.randn(o.shape, dtype=torch.float64) for o in outs]
    got = torch.autograd.grad((outs[0] * weights[0]).sum() + (outs[2] * weights[2]).sum(), (bary, *tables),
                              allow_unused=True)
    ref = _reference(corners, bary, tables[0]) * weights[0]
    ref = ref.sum() + (_reference(corners, bary, tables[2]) * weights[2]).sum()
    want = torch.autograd.grad(ref, (bary, tables[0], tables[2]))
    torch.testing.assert_close(got[0], want[0])
    torch.testing.assert_close(got[1], want[1])
    torch.testing.assert_close(got[2], torch.zeros_like(tables[1]))  # its output took no part
    torch.testing.assert_close(got[3], want[2])
    assert torch.autograd.gradcheck(lambda b, *t: interpolate_vertex_groups(corners, b, *t), (bary, *tables))


def test_interpolate_vertex_pairs_without_grad_mode() -> None:
    """Under no_grad (inputs that require grad) the same values, and no graph is recorded."""
    corners, bary, attrs = _inputs(torch.float32)
    attrs.requires_grad_()
    with torch.no_grad():
        plain = interpolate_vertex_pairs(corners, bary, attrs)
    tracked = interpolate_vertex_pairs(corners, bary, attrs)
    assert plain.grad_fn is None and tracked.grad_fn is not None
    assert torch.equal(plain, tracked.detach())
