"""chamfer_distance against a double-loop reference of PyTorch3D's definition."""

from __future__ import annotations

import math

import pytest
import torch
from diffmesh.meshloss import chamfer_distance


def _nearest(a, b, norm):
    """Index of the nearest point of b (list of vectors) to a, and the distance."""
    best, best_j = math.inf, 0
    for j, q in enumerate(b):
        diff = a - q
        d = float((diff * diff).sum() if norm == 2 else diff.abs().sum())
        if d < best:
            best, best_j = d, j
    return best_j, best


def _direction(x, y, lx, ly, nx, ny, norm, abs_cosine):
    """Per-point terms (N, P1) from x to y, zero for padding."""
    n, p1_size, _ = x.shape
    dist = torch.zeros(n, p1_size, dtype=torch.float64)
    cos_term = torch.zeros(n, p1_size, dtype=torch.float64)
    for b in range(n):
        for i in range(int(lx[b])):
            if int(ly[b]) == 0:
                cos_term[b, i] = 1.0
                continue
            j, d = _nearest(x[b, i], y[b, : int(ly[b])], norm)
            dist[b, i] = d
            if nx is not None:
                u, v = nx[b, i], ny[b, j]
                c = float((u * v).sum() / max(float(u.norm() * v.norm()), 1e-6))
                cos_term[b, i] = 1.0 - (abs(c) if abs_cosine else c)
    return dist, cos_term


def reference_chamfer(x, y, lx, ly, nx, ny, weights, batch_reduction, point_reduction, norm,
                      single_directional, abs_cosine):
    n = x.shape[0]
    w = torch.ones(n, dtype=torch.float64) if weights is None else weights.double()
    terms = []
    for a, b, la, lb, na, nb in ((x, y, lx, ly, nx, ny), (y, x, ly, lx, ny, nx)):
        dist, cos_term = _direction(a, b, la, lb, na, nb, norm, abs_cosine)
        dist, cos_term = dist * w[:, None], cos_term * w[:, None]
        if point_reduction == "max":
            dist = dist.max(1).values
        elif point_reduction is not None:
            dist, cos_term = dist.sum(1), cos_term.sum(1)
            if point_reduction == "mean":
                count = torch.as_tensor(la).clamp(min=1).double()
                dist, cos_term = dist / count, cos_term / count
        terms.append((dist, cos_term))
        if single_directional:
            break
    if single_directional:
        loss, normals = terms[0]
    elif point_reduction == "max":
        loss, normals = torch.maximum(terms[0][0], terms[1][0]), None
    elif point_reduction is None:
        loss, normals = (terms[0][0], terms[1][0]), (terms[0][1], terms[1][1])
    else:
        loss, normals = terms[0][0] + terms[1][0], terms[0][1] + terms[1][1]
    if nx is None:
        normals = None
    if batch_reduction is not None:
        div = 1.0
        if batch_reduction == "mean":
            div = float(w.sum()) if weights is not None and float(w.sum()) > 0 else float(max(n, 1))
        loss = loss.sum() / div
        normals = None if normals is None else normals.sum() / div
    return loss, normals


def _clouds(seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(3, 30, 3, generator=g, dtype=dtype)
    y = torch.rand(3, 25, 3, generator=g, dtype=dtype)
    nx = torch.randn(3, 30, 3, generator=g, dtype=dtype)
    ny = torch.randn(3, 25, 3, generator=g, dtype=dtype)
    lx = torch.tensor([30, 0, 17])  # an empty cloud in the middle
    ly = torch.tensor([25, 9, 20])
    return x, y, nx, ny, lx, ly


def _assert_close(actual, expected):
    if expected is None:
        assert actual is None
        return
    if isinstance(expected, tuple):
        assert isinstance(actual, tuple) and len(actual) == len(expected)
        for a, e in zip(actual, expected, strict=True):
            torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-10)
        return
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-10)


_VALID_REDUCTIONS = [(p, b) for p in ("mean", "sum", "max", None) for b in ("mean", "sum", None)
                     if p is not None or b is None]


@pytest.mark.parametrize(("point_reduction", "batch_reduction"), _VALID_REDUCTIONS)
@pytest.mark.parametrize("norm", [1, 2])
def test_reductions_match_reference(point_reduction, batch_reduction, norm):
    x, y, nx, ny, lx, ly = _clouds(norm)
    use_normals = point_reduction != "max"
    kwargs = dict(batch_reduction=batch_reduction, point_reduction=point_reduction, norm=norm)
    out = chamfer_distance(x, y, lx, ly, nx if use_normals else None, ny if use_normals else None,
                           **kwargs)
    ref = reference_chamfer(x, y, lx, ly, nx if use_normals else None,
                            ny if use_normals else None, None, batch_reduction, point_reduction,
                            norm, False, True)
    _assert_close(out[0], ref[0])
    _assert_close(out[1], ref[1])


@pytest.mark.parametrize("abs_cosine", [True, False])
@pytest.mark.parametrize("single_directional", [True, False])
def test_weights_direction_and_cosine_match_reference(abs_cosine, single_directional):
    x, y, nx, ny, lx, ly = _clouds(7)
    weights = torch.tensor([0.5, 2.0, 1.5], dtype=torch.float64)
    for batch_reduction in ("mean", "sum", None):
        out = chamfer_distance(x, y, lx, ly, nx, ny, weights=weights,
                               batch_reduction=batch_reduction,
                               single_directional=single_directional, abs_cosine=abs_cosine)
        ref = reference_chamfer(x, y, lx, ly, nx, ny, weights, batch_reduction, "mean", 2,
                                single_directional, abs_cosine)
        _assert_close(out[0], ref[0])
        _assert_close(out[1], ref[1])


def test_zero_weights_give_zero():
    x, y, _, _, lx, ly = _clouds(8)
    loss, _ = chamfer_distance(x, y, lx, ly, weights=torch.zeros(3, dtype=torch.float64))
    assert float(loss) == 0.0


def test_hand_computed_single_points():
    loss, normals = chamfer_distance(torch.zeros(1, 1, 3), torch.tensor([[[3.0, 0.0, 0.0]]]))
    assert float(loss) == pytest.approx(18.0)
    assert normals is None
    loss, _ = chamfer_distance(torch.zeros(1, 1, 3), torch.tensor([[[3.0, 0.0, 0.0]]]), norm=1)
    assert float(loss) == pytest.approx(6.0)


def _sphere_cloud(n, points, generator):
    p = torch.randn(n, points, 3, generator=generator, dtype=torch.float64)
    return p / p.norm(dim=-1, keepdim=True)


@pytest.mark.parametrize("kind", ["volume", "surface", "far-apart", "duplicates", "empty-cloud"])
def test_large_clouds_match_reference(kind):
    """Sizes beyond one chunk, both directions in one pass, box-pruned search or its fallback."""
    g = torch.Generator().manual_seed(11)
    if kind == "surface":
        x, y = _sphere_cloud(2, 1100, g), _sphere_cloud(2, 1300, g)
    else:
        x = torch.rand(2, 1100, 3, generator=g, dtype=torch.float64)
        y = torch.rand(2, 1300, 3, generator=g, dtype=torch.float64)
    if kind == "far-apart":
        y = y + torch.tensor([30.0, 0.0, 0.0], dtype=torch.float64)
    if kind == "duplicates":
        x[:, ::2] = 0.5
    lx, ly = torch.tensor([1100, 1050]), torch.tensor([1250, 1300])
    if kind == "empty-cloud":
        lx = torch.tensor([0, 1050])
    got_x, got_y = chamfer_distance(x, y, lx, ly, point_reduction=None, batch_reduction=None)[0]
    d = torch.cdist(x, y) ** 2  # fine in float64 for a reference
    for b in range(2):
        if lx[b] == 0:
            assert (got_x[b] == 0).all() and (got_y[b] == 0).all()
            continue
        block = d[b, : lx[b], : ly[b]]
        torch.testing.assert_close(got_x[b, : lx[b]], block.min(1).values, rtol=1e-5, atol=1e-12)
        torch.testing.assert_close(got_y[b, : ly[b]], block.min(0).values, rtol=1e-5, atol=1e-12)


@pytest.mark.parametrize("with_normals", [False, True])
@pytest.mark.parametrize("single_directional", [False, True])
def test_gradcheck(with_normals, single_directional):
    g = torch.Generator().manual_seed(13)
    x = torch.rand(2, 7, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.rand(2, 5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    nx = torch.randn(2, 7, 3, generator=g, dtype=torch.float64, requires_grad=True)
    ny = torch.randn(2, 5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    lx, ly = torch.tensor([7, 5]), torch.tensor([5, 4])

    def fn(a, b, na, nb):
        loss, normals = chamfer_distance(
            a, b, lx, ly, na if with_normals else None, nb if with_normals else None,
            single_directional=single_directional, abs_cosine=False)
        return loss if normals is None else loss + normals

    assert torch.autograd.gradcheck(fn, (x, y, nx, ny))


def test_degenerate_clouds_are_finite():
    """Duplicate points, coincident clouds, zero normals and an empty cloud."""
    x = torch.zeros(3, 4, 3, requires_grad=True)
    y = torch.zeros(3, 6, 3, requires_grad=True)
    nx = torch.zeros(3, 4, 3, requires_grad=True)
    ny = torch.zeros(3, 6, 3, requires_grad=True)
    lengths_x, lengths_y = torch.tensor([4, 0, 2]), torch.tensor([6, 3, 0])
    loss, normals = chamfer_distance(x, y, lengths_x, lengths_y, nx, ny)
    (loss + normals).backward()
    for t in (loss, normals, x.grad, y.grad, nx.grad, ny.grad):
        assert torch.isfinite(t).all()
    assert float(loss.detach()) == 0.0


def test_empty_point_dimension_sizes():
    loss, _ = chamfer_distance(torch.rand(2, 0, 3), torch.rand(2, 4, 3))
    assert float(loss) == 0.0
    loss, _ = chamfer_distance(torch.rand(2, 3, 3), torch.rand(2, 0, 3), batch_reduction=None)
    assert loss.shape == (2,) and (loss == 0).all()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"batch_reduction": "max"}, ValueError, "batch_reduction"),
        ({"point_reduction": "median"}, ValueError, "point_reduction"),
        ({"point_reduction": None}, ValueError, "batch_reduction must be None"),
        ({"norm": 3}, ValueError, "norm"),
        ({"point_reduction": "max", "x_normals": torch.rand(1, 3, 3)}, ValueError, "max"),
        ({"weights": torch.tensor([-1.0])}, ValueError, "non-negative"),
        ({"weights": torch.ones(2)}, ValueError, "weights must have shape"),
        ({"x_normals": torch.rand(1, 2, 3), "y_normals": torch.rand(1, 4, 3)}, ValueError,
         "x_normals"),
        ({"x_lengths": torch.tensor([5])}, ValueError, "x_lengths values"),
    ],
)
def test_bad_input_raises(kwargs, error, message):
    with pytest.raises(error, match=message):
        chamfer_distance(torch.rand(1, 3, 3), torch.rand(1, 4, 3), **kwargs)


def test_bad_clouds_raise():
    with pytest.raises(ValueError, match="x must have shape"):
        chamfer_distance(torch.rand(3, 3), torch.rand(1, 4, 3))
    with pytest.raises(ValueError, match="batch size"):
        chamfer_distance(torch.rand(2, 3, 3), torch.rand(1, 4, 3))
    with pytest.raises(TypeError, match="y must be a tensor"):
        chamfer_distance(torch.rand(1, 3, 3), [[0.0, 0.0, 0.0]])


def test_pointclouds_inputs_give_the_reference_with_their_lengths_and_normals():
    from diffmesh.meshcore import Pointclouds

    g = torch.Generator().manual_seed(7)
    sizes_x, sizes_y = (5, 0, 3), (4, 2, 6)
    px = [torch.rand(p, 3, generator=g, dtype=torch.float64) for p in sizes_x]
    py = [torch.rand(p, 3, generator=g, dtype=torch.float64) for p in sizes_y]
    nx = [torch.randn(p, 3, generator=g, dtype=torch.float64) for p in sizes_x]
    ny = [torch.randn(p, 3, generator=g, dtype=torch.float64) for p in sizes_y]
    x, y = Pointclouds(px, normals=nx), Pointclouds(py, normals=ny)
    loss, loss_normals = chamfer_distance(x, y)
    want, want_normals = reference_chamfer(
        x.points_padded(), y.points_padded(), torch.tensor(sizes_x), torch.tensor(sizes_y),
        x.normals_padded(), y.normals_padded(), None, "mean", "mean", 2, False, True)
    torch.testing.assert_close(loss, want)
    torch.testing.assert_close(loss_normals, want_normals)
    mixed, none = chamfer_distance(Pointclouds(px), y.points_padded(), y_lengths=torch.tensor(sizes_y))
    torch.testing.assert_close(mixed, want)
    assert none is None  # the Pointclouds x has no normals
    with pytest.raises(ValueError, match="x_lengths must be None when x is a Pointclouds"):
        chamfer_distance(x, y, x_lengths=torch.tensor(sizes_x))
    with pytest.raises(ValueError, match="y_normals must be None when y is a Pointclouds"):
        chamfer_distance(x, y, y_normals=y.normals_padded())
