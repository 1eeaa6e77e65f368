"""The box-pruned K = 1 search (``_blocks``) against a float64 brute force."""

from __future__ import annotations

import pytest
import torch
from diffmesh.meshloss import _blocks as blocks_module
from diffmesh.meshloss import _search as search_module
from diffmesh.meshloss import chamfer_distance, knn_points


def _nearest_reference(p1, p2, lengths1, lengths2):
    """Squared distance from every valid p1 point to its nearest valid p2 point (float64)."""
    out = []
    for b in range(p1.shape[0]):
        d = torch.cdist(p1[b, : lengths1[b]].double(), p2[b, : lengths2[b]].double()) ** 2
        out.append(d.min(1).values if d.shape[1] > 0 else d.new_zeros(d.shape[0]))
    return out


def _surface(n, points, generator, scale=1.0):
    p = torch.randn(n, points, 3, generator=generator, dtype=torch.float64)
    return scale * p / p.norm(dim=-1, keepdim=True)


@pytest.mark.parametrize("bound_blocks", [4, 1 << 20])
@pytest.mark.parametrize("reverse", [True, False])
@pytest.mark.parametrize("leaf", [7, 16, 40])
@pytest.mark.parametrize(("size_x", "size_y"), [(1003, 777), (777, 777)])
@pytest.mark.parametrize("lengths", [((None, 0, 641), (777, 500, 333)),
                                     ((5, 641, None), (0, 1, 333))])
def test_pruned_search_matches_brute_force(leaf, size_x, size_y, reverse, bound_blocks,
                                           lengths, monkeypatch):
    """Heterogeneous batches with empty clouds on either side and a one-point cloud; sizes
    that are not multiples of the blocks; equal sizes (both clouds built as one batch) and
    different ones; with or without the reverse direction. With ``_BOUND_BLOCKS`` beyond the
    block count, the bounding products compare every pair and the main pass has nothing
    left to do."""
    monkeypatch.setattr(blocks_module, "_BOUND_BLOCKS", bound_blocks)
    g = torch.Generator().manual_seed(leaf)
    x = _surface(3, size_x, g)
    y = _surface(3, size_y, g, scale=1.1) + 0.05
    lengths_x = torch.tensor([size_x if n is None else n for n in lengths[0]])
    lengths_y = torch.tensor(lengths[1])
    valid_x = torch.arange(size_x) < lengths_x[:, None]
    valid_y = torch.arange(size_y) < lengths_y[:, None]
    pad_x = torch.where(valid_x[..., None], x, x[:, :1])
    pad_y = torch.where(valid_y[..., None], y, y[:, :1])
    found = blocks_module.pruned_search(pad_x, pad_y, valid_x, valid_y, leaf, reverse=reverse)
    assert found is not None
    idx12, idx21 = found
    assert idx12.shape == (3, size_x, 1)
    assert (idx21 is not None) == reverse
    ref12 = _nearest_reference(x, y, lengths_x, lengths_y)
    ref21 = _nearest_reference(y, x, lengths_y, lengths_x)
    for b in range(3):
        if lengths_y[b] > 0:  # (without reference points the indices are only in range)
            got12 = ((x[b, : lengths_x[b]] - y[b, idx12[b, : lengths_x[b], 0]]) ** 2).sum(-1)
            torch.testing.assert_close(got12, ref12[b], rtol=1e-12, atol=0)
        assert (idx12[b] >= 0).all() and (idx12[b] < size_y).all()
        if idx21 is None:
            continue
        assert idx21.shape == (3, size_y)
        if lengths_x[b] > 0:
            got21 = ((y[b, : lengths_y[b]] - x[b, idx21[b, : lengths_y[b]]]) ** 2).sum(-1)
            torch.testing.assert_close(got21, ref21[b], rtol=1e-12, atol=0)
        assert (idx21[b] >= 0).all() and (idx21[b] < size_x).all()


def test_blocks_are_a_permutation_with_bounding_boxes():
    g = torch.Generator().manual_seed(0)
    points = torch.rand(2, 301, 3, generator=g)
    valid = torch.arange(301) < torch.tensor([301, 120])[:, None]
    points = torch.where(valid[..., None], points, points[:, :1])
    blocks = blocks_module.Blocks(points, valid, 4)
    assert blocks.num == 16 and blocks.size == 19
    for b in range(2):
        order = blocks.order[b]
        assert torch.equal(order.sort().values, torch.arange(16 * 19))
    grouped = blocks.points.view(2, 16, 19, 3)
    # The boxes (N, 3, num) are the tight bounds of each block's points.
    assert torch.equal(blocks.lo, grouped.amin(2).transpose(1, 2))
    assert torch.equal(blocks.hi, grouped.amax(2).transpose(1, 2))
    assert torch.equal(blocks.valid.sum(1), torch.tensor([301, 120]))


def test_pruned_far_from_origin_float32(monkeypatch):
    """The pruned path on float32 clouds near (1e3, 1e3, 1e3) with 1e-2 spacing."""
    monkeypatch.setattr(search_module, "_PRUNE_MIN_PAIRS", 0)
    g = torch.Generator().manual_seed(0)
    axis = torch.arange(14, dtype=torch.float64) * 1e-2
    grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(1, -1, 3)
    p2 = (grid + 1e3).float()
    p1 = (grid + 1e3 + (torch.rand(grid.shape, generator=g, dtype=torch.float64) - 0.5) * 6e-3).float()
    out = knn_points(p1, p2)
    assert torch.equal(out.idx[0, :, 0], torch.arange(grid.shape[1]))
    loss_x, loss_y = chamfer_distance(p1, p2, point_reduction=None, batch_reduction=None)[0]
    exact = ((p1.double() - p2.double()) ** 2).sum(-1)
    torch.testing.assert_close(loss_x.double(), exact, rtol=1e-6, atol=0)
    torch.testing.assert_close(loss_y.double(), exact, rtol=1e-6, atol=0)


def test_pruned_handles_far_apart_and_empty_clouds(monkeypatch):
    """All blocks wanted (no pruning pays: brute force takes over) and an all-empty batch."""
    monkeypatch.setattr(search_module, "_PRUNE_MIN_PAIRS", 0)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 300, 3, generator=g, dtype=torch.float64)
    y = torch.rand(2, 200, 3, generator=g, dtype=torch.float64) + 100.0
    valid_x, valid_y = torch.ones(2, 300, dtype=torch.bool), torch.ones(2, 200, dtype=torch.bool)
    assert blocks_module.pruned_search(x, y, valid_x, valid_y, 40, reverse=True) is None
    assert blocks_module.pruned_search(x, y, ~valid_x, ~valid_y, 40, reverse=True) is None
    loss, _ = chamfer_distance(x, y, point_reduction=None, batch_reduction=None)
    ref = torch.cdist(x, y) ** 2
    torch.testing.assert_close(loss[0], ref.min(2).values, rtol=1e-12, atol=0)
    torch.testing.assert_close(loss[1], ref.min(1).values, rtol=1e-12, atol=0)
    empty = torch.zeros(2, dtype=torch.int64)
    loss, _ = chamfer_distance(x, y, empty, empty, batch_reduction=None)
    assert (loss == 0).all()


def test_pruned_with_an_outlier_block():
    """One far point makes one block a candidate of every other: a wide table row."""
    g = torch.Generator().manual_seed(2)
    x = _surface(1, 2000, g)
    y = _surface(1, 1500, g, scale=1.05)
    x[0, 0] = torch.tensor([40.0, 0.0, 0.0], dtype=torch.float64)
    valid_x, valid_y = torch.ones(1, 2000, dtype=torch.bool), torch.ones(1, 1500, dtype=torch.bool)
    found = blocks_module.pruned_search(x, y, valid_x, valid_y, 40, reverse=True)
    assert found is not None
    d = torch.cdist(x[0], y[0]) ** 2
    got12 = ((x[0] - y[0, found[0][0, :, 0]]) ** 2).sum(-1)
    got21 = ((y[0] - x[0, found[1][0]]) ** 2).sum(-1)
    torch.testing.assert_close(got12, d.min(1).values, rtol=1e-12, atol=0)
    torch.testing.assert_close(got21, d.min(0).values, rtol=1e-12, atol=0)


@pytest.mark.parametrize("reverse", [True, False])
@pytest.mark.parametrize("cloud", ["surface", "grid-ties"])
def test_working_set_bounds_leave_the_result_unchanged(cloud, reverse, monkeypatch):
    """With budgets of a few elements, every bounding product, box-gap row, candidate slice,
    exact choice and column fold is split into many pieces (one block, one candidate at a
    time): the indices must be the very ones of the one-piece search, ties included (on the
    grid every point has 8 equidistant neighbours)."""
    g = torch.Generator().manual_seed(3)
    if cloud == "surface":
        x, y = _surface(2, 1003, g), _surface(2, 777, g, scale=1.1) + 0.05
    else:
        axis = torch.arange(10, dtype=torch.float64)
        grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(1, -1, 3)
        x, y = grid.expand(2, -1, -1), (grid[:, :777] + 0.5).expand(2, -1, -1)
    lengths_x, lengths_y = torch.tensor([x.shape[1], 641]), torch.tensor([700, y.shape[1]])
    valid_x = torch.arange(x.shape[1]) < lengths_x[:, None]
    valid_y = torch.arange(y.shape[1]) < lengths_y[:, None]
    x = torch.where(valid_x[..., None], x, x[:, :1])
    y = torch.where(valid_y[..., None], y, y[:, :1])
    expected = blocks_module.pruned_search(x, y, valid_x, valid_y, 16, reverse=reverse)
    monkeypatch.setattr(blocks_module, "_WORK_ELEMENTS", 64)
    monkeypatch.setattr(blocks_module, "_COLUMN_ENTRIES", 100)
    got = blocks_module.pruned_search(x, y, valid_x, valid_y, 16, reverse=reverse)
    assert expected is not None and got is not None
    assert torch.equal(got[0], expected[0])
    assert (got[1] is None) == (not reverse)
    if reverse:
        assert torch.equal(got[1], expected[1])
