"""knn_points / knn_gather against a double-loop reference."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from diffmesh.meshloss import KNN, knn_gather, knn_points
from diffmesh.meshloss import _search as search_module


def reference_knn(p1, p2, lengths1, lengths2, K, norm):
    """Obviously correct: loop over clouds and points, sort all distances."""
    n, p1_size, _ = p1.shape
    dists = torch.zeros(n, p1_size, K, dtype=torch.float64)
    idx = torch.zeros(n, p1_size, K, dtype=torch.int64)
    for b in range(n):
        for i in range(int(lengths1[b])):
            row = []
            for j in range(int(lengths2[b])):
                diff = p1[b, i].double() - p2[b, j].double()
                row.append(float((diff * diff).sum() if norm == 2 else diff.abs().sum()))
            order = sorted(range(len(row)), key=lambda j: row[j])[:K]
            for k, j in enumerate(order):
                dists[b, i, k] = row[j]
                idx[b, i, k] = j
    return dists, idx


@pytest.fixture(params=["default", "tiny-chunk", "always-pruned"])
def chunk(request, monkeypatch):
    """Run each test with the defaults, with a tiny chunk (many chunks of rows and of
    columns) and with the box-pruned search used at any size (tiny k-d leaves, many blocks)."""
    if request.param == "tiny-chunk":
        monkeypatch.setattr(search_module, "_CHUNK_ELEMENTS", 256)
        monkeypatch.setattr(search_module, "_MAX_CHUNK_ELEMENTS", 256)  # columns split too
    elif request.param == "always-pruned":
        monkeypatch.setattr(search_module, "_PRUNE_MIN_PAIRS", 0)
        monkeypatch.setattr(search_module, "_LEAF", 4)
    return request.param


@pytest.mark.parametrize("norm", [1, 2])
@pytest.mark.parametrize("K", [1, 3, 9])
def test_matches_reference_heterogeneous(chunk, norm, K):
    g = torch.Generator().manual_seed(K * 10 + norm)
    p1 = torch.rand(4, 40, 3, generator=g, dtype=torch.float64)
    p2 = torch.rand(4, 70, 3, generator=g, dtype=torch.float64)
    lengths1 = torch.tensor([40, 0, 13, 31])  # an empty cloud in the middle
    lengths2 = torch.tensor([70, 5, 0, 6])  # and clouds with fewer than K points
    out = knn_points(p1, p2, lengths1, lengths2, norm=norm, K=K, return_nn=True)
    ref_d, ref_i = reference_knn(p1, p2, lengths1, lengths2, K, norm)
    torch.testing.assert_close(out.dists, ref_d, rtol=1e-5, atol=1e-12)
    assert torch.equal(out.idx, ref_i)
    assert torch.equal(out.knn, knn_gather(p2, out.idx, lengths2))


def test_result_type_and_shapes():
    p1, p2 = torch.rand(2, 10, 3), torch.rand(2, 7, 3)
    out = knn_points(p1, p2, K=2)
    assert isinstance(out, KNN)
    assert out.dists.shape == (2, 10, 2) and out.idx.shape == (2, 10, 2) and out.knn is None
    assert out.dists.dtype == torch.float32 and out.idx.dtype == torch.int64


def test_k_larger_than_cloud_pads_with_zeros():
    p1, p2 = torch.rand(1, 4, 3), torch.rand(1, 2, 3)
    out = knn_points(p1, p2, K=5)
    assert out.dists.shape == (1, 4, 5)
    assert (out.dists[..., 2:] == 0).all() and (out.idx[..., 2:] == 0).all()
    assert (out.dists[..., :2] > 0).all()


def test_unsorted_returns_the_same_set():
    g = torch.Generator().manual_seed(3)
    p1, p2 = torch.rand(2, 30, 3, generator=g), torch.rand(2, 50, 3, generator=g)
    a = knn_points(p1, p2, K=6)
    b = knn_points(p1, p2, K=6, return_sorted=False)
    assert torch.equal(a.idx, b.idx.gather(-1, b.dists.argsort(-1)))


def test_far_from_origin_float32_is_exact():
    """Two clouds near (1e3, 1e3, 1e3) with 1e-2 spacing: float32 must not lose neighbours."""
    g = torch.Generator().manual_seed(0)
    axis = torch.arange(10, dtype=torch.float64) * 1e-2
    grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(1, -1, 3)
    p2 = (grid + 1e3).float()
    p1 = (grid + 1e3 + (torch.rand(grid.shape, generator=g, dtype=torch.float64) - 0.5) * 6e-3).float()
    out = knn_points(p1, p2)
    assert torch.equal(out.idx[0, :, 0], torch.arange(grid.shape[1]))
    exact = ((p1.double() - p2.double()) ** 2).sum(-1)
    torch.testing.assert_close(out.dists[..., 0].double(), exact, rtol=1e-6, atol=0)


def test_clouds_offset_from_each_other():
    """p2 is p1 shifted by 1e3: the neighbour order must still be the float64 one."""
    g = torch.Generator().manual_seed(1)
    p1 = torch.rand(1, 200, 3, generator=g, dtype=torch.float64)
    p2 = p1 + torch.tensor([1e3, 0.0, 0.0], dtype=torch.float64) + 1e-2 * torch.rand(
        1, 200, 3, generator=g, dtype=torch.float64)
    ref_d, _ = reference_knn(p1, p2, [200], [200], 1, 2)
    out = knn_points(p1.float(), p2.float())
    torch.testing.assert_close(out.dists.double(), ref_d, rtol=1e-5, atol=0)


@pytest.mark.parametrize("norm", [1, 2])
def test_gradcheck(norm):
    g = torch.Generator().manual_seed(5)
    p1 = torch.rand(2, 6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    p2 = torch.rand(2, 5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    lengths1, lengths2 = torch.tensor([6, 4]), torch.tensor([5, 3])
    assert torch.autograd.gradcheck(
        lambda a, b: knn_points(a, b, lengths1, lengths2, norm=norm, K=2).dists, (p1, p2))


def test_duplicate_points_finite():
    p = torch.zeros(1, 5, 3, requires_grad=True)
    q = torch.zeros(1, 4, 3, requires_grad=True)
    for norm in (1, 2):
        out = knn_points(p, q, norm=norm, K=2)
        out.dists.sum().backward()
        assert torch.isfinite(out.dists).all()
        assert torch.isfinite(p.grad).all() and torch.isfinite(q.grad).all()


def test_empty_inputs():
    assert knn_points(torch.rand(0, 5, 3), torch.rand(0, 4, 3)).dists.shape == (0, 5, 1)
    assert knn_points(torch.rand(2, 0, 3), torch.rand(2, 4, 3)).dists.shape == (2, 0, 1)
    out = knn_points(torch.rand(2, 3, 3), torch.rand(2, 0, 3), K=2, return_nn=True)
    assert out.dists.shape == (2, 3, 2) and (out.dists == 0).all() and out.knn.shape == (2, 3, 2, 3)


def test_half_precision_selects_in_float32():
    g = torch.Generator().manual_seed(2)
    p1, p2 = torch.rand(1, 50, 3, generator=g), torch.rand(1, 60, 3, generator=g)
    out = knn_points(p1.bfloat16(), p2.bfloat16())
    assert out.dists.dtype == torch.bfloat16
    ref = knn_points(p1.bfloat16().float(), p2.bfloat16().float())
    assert torch.equal(out.idx, ref.idx)


def test_knn_gather_masks_missing_neighbours():
    x = torch.arange(12.0).view(2, 2, 3)
    idx = torch.tensor([[[1, 0]], [[0, 0]]])
    out = knn_gather(x, idx, torch.tensor([2, 1]))
    assert torch.equal(out[0, 0], x[0, [1, 0]])
    assert torch.equal(out[1, 0, 0], x[1, 0]) and (out[1, 0, 1] == 0).all()


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: knn_points(torch.rand(2, 3), torch.rand(1, 2, 3)), ValueError, "p1 must have shape"),
        (lambda: knn_points(torch.rand(1, 3, 3), torch.rand(2, 2, 3)), ValueError, "batch size"),
        (lambda: knn_points(torch.rand(1, 3, 3), torch.rand(1, 2, 2)), ValueError, "point dimension"),
        (lambda: knn_points(torch.ones(1, 3, 3, dtype=torch.long), torch.rand(1, 2, 3)), TypeError,
         "floating point"),
        (lambda: knn_points(torch.rand(1, 3, 3), torch.rand(1, 2, 3), K=0), ValueError, "K must"),
        (lambda: knn_points(torch.rand(1, 3, 3), torch.rand(1, 2, 3), norm=3), ValueError, "norm"),
        (lambda: knn_points(torch.rand(1, 3, 3), torch.rand(1, 2, 3), torch.tensor([4])), ValueError,
         "lengths1 values"),
        (lambda: knn_points(torch.rand(1, 3, 3), torch.rand(1, 2, 3), None, torch.tensor([1.0])),
         TypeError, "lengths2 must be an integer"),
        (lambda: knn_gather(torch.rand(1, 3, 2), torch.tensor([[[3]]])), ValueError, "idx values"),
    ],
)
def test_bad_input_raises(call, error, message):
    with pytest.raises(error, match=message):
        call()


_PEAK_MEMORY_SCRIPT = """
import sys
import torch
from diffmesh.meshloss import chamfer_distance, knn_points

points1, points2, k, what = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
g = torch.Generator().manual_seed(0)
p1 = torch.rand(1, points1, 3, generator=g)
p2 = torch.rand(1, points2, 3, generator=g)

def status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])

with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # restart the resident-set high-water mark from here
before = status_kib("VmRSS")
if what == "knn":
    assert knn_points(p1, p2, K=k).idx.shape == (1, points1, k)
else:
    assert chamfer_distance(p1, p2)[0].shape == ()
print((status_kib("VmHWM") - before) / 1024)
"""


@pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK), reason="needs Linux's clear_refs")
def test_100k_by_100k_stays_well_under_2_gb():
    """100k x 100k points (a dense distance matrix would take 40 GB): the peak resident memory
    of a fresh process rises by less than 1 GB during the search (about 200 MB measured)."""
    assert _peak_mib("100000", "100000", "1", "knn") < 1024


def _peak_mib(*args: str) -> float:
    """Peak resident memory (MiB) a fresh process gains during one search."""
    run = subprocess.run([sys.executable, "-c", _PEAK_MEMORY_SCRIPT, *args],
                         capture_output=True, text=True, check=False, timeout=1200)
    assert run.returncode == 0, run.stderr[-2000:]
    return float(run.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK), reason="needs Linux's clear_refs")
def test_many_queries_with_k_8_stay_bounded():
    """K = 8 for 100k queries: the exact choice takes its candidates a chunk of rows at a
    time (all at once they were 100k x 8 x 32 longs, 205 MB): 74 MB measured (273 MB
    before), most of it the (100k, 8) results and their coordinates."""
    assert _peak_mib("100000", "256", "8", "knn") < 150


@pytest.mark.slow
@pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK), reason="needs Linux's clear_refs")
def test_1m_by_1m_chamfer_stays_bounded():
    """chamfer_distance (both directions) at 1M x 1M points: the bounding products alone
    asked for one 7.8 GB tensor before they were chunked; 409 MB measured (2 cores, loaded),
    of which the k-d blocks and augmented copies of both clouds are about 250 MB (they grow
    with the clouds: 12 MB each as input), the chunked work a fixed budget."""
    assert _peak_mib("1000000", "1000000", "1", "chamfer") < 640


def test_version_keyword_is_accepted_as_in_pytorch3d():
    p1, p2 = torch.rand(1, 6, 3), torch.rand(1, 5, 3)
    plain = knn_points(p1, p2, K=2)
    versioned = knn_points(p1, p2, K=2, version=0)
    assert torch.equal(plain.idx, versioned.idx) and torch.equal(plain.dists, versioned.dists)
    with pytest.raises(TypeError, match="version must be an int"):
        knn_points(p1, p2, version="fast")
