"""Pointclouds: views, index maps, updates and batch ops against naive per-cloud references."""

from __future__ import annotations

import pytest
import torch
from diffmesh.meshcore import Pointclouds, join_pointclouds_as_batch


def _lists(dtype: torch.dtype = torch.float64):
    """Clouds of 3, 0 and 5 points with normals and 2-channel features."""
    g = torch.Generator().manual_seed(1)
    sizes = (3, 0, 5)
    points = [torch.rand(p, 3, generator=g, dtype=dtype) for p in sizes]
    normals = [torch.rand(p, 3, generator=g, dtype=dtype) for p in sizes]
    features = [torch.rand(p, 2, generator=g, dtype=dtype) for p in sizes]
    return points, normals, features


def test_views_match_the_lists() -> None:
    points, normals, features = _lists()
    clouds = Pointclouds(points, normals=normals, features=features)
    assert len(clouds) == 3 and clouds.dtype == torch.float64
    assert clouds.num_points_per_cloud().tolist() == [3, 0, 5]
    for got, want in (
        (clouds.points_list(), points),
        (clouds.normals_list(), normals),
        (clouds.features_list(), features),
    ):
        assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))
    assert torch.equal(clouds.points_packed(), torch.cat(points))
    assert torch.equal(clouds.features_packed(), torch.cat(features))
    padded = clouds.points_padded()
    assert padded.shape == (3, 5, 3)
    for i, p in enumerate(points):
        assert torch.equal(padded[i, : len(p)], p)
        assert not padded[i, len(p) :].any()
    assert clouds.normals_padded().shape == (3, 5, 3)
    assert clouds.features_padded().shape == (3, 5, 2)
    assert clouds.valid.tolist() == [True, False, True]
    assert not clouds.equisized and not clouds.isempty()


def test_index_maps_match_pytorch3d_doc_example() -> None:
    clouds = Pointclouds([torch.rand(3, 3), torch.rand(4, 3), torch.rand(5, 3)])
    assert clouds.packed_to_cloud_idx().tolist() == [0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2]
    assert clouds.cloud_to_packed_first_idx().tolist() == [0, 3, 7]
    assert clouds.padded_to_packed_idx().tolist() == [0, 1, 2, 5, 6, 7, 8, 10, 11, 12, 13, 14]
    flat = clouds.points_padded().reshape(-1, 3)
    assert torch.equal(flat[clouds.padded_to_packed_idx()], clouds.points_packed())


def test_padded_input_and_empty_forms() -> None:
    pts = torch.rand(2, 4, 3)
    clouds = Pointclouds(pts, features=torch.rand(2, 4, 6))
    assert clouds.equisized and clouds.num_points_per_cloud().tolist() == [4, 4]
    assert clouds.normals_packed() is None and clouds.normals_list() is None
    assert clouds.features_packed().shape == (8, 6)
    empty = Pointclouds([torch.tensor([]), torch.zeros(0, 3)], normals=[None, torch.zeros(0, 3)])
    assert empty.isempty() and empty.points_padded().shape == (2, 0, 3)
    assert empty.normals_packed().shape == (0, 3)
    assert Pointclouds([]).isempty() and len(Pointclouds([])) == 0
    assert Pointclouds([]).get_bounding_boxes().shape == (0, 3, 2)


def test_bad_input_names_the_argument() -> None:
    with pytest.raises(ValueError, match=r"points\[1\] has non-finite"):
        Pointclouds([torch.rand(2, 3), torch.tensor([[0.0, float("nan"), 0.0]])])
    with pytest.raises(ValueError, match=r"points\[0\] must have shape \(P, 3\)"):
        Pointclouds([torch.rand(2, 2)])
    with pytest.raises(TypeError, match="float tensors of one dtype"):
        Pointclouds([torch.rand(2, 3), torch.rand(2, 3, dtype=torch.float64)])
    with pytest.raises(ValueError, match=r"normals\[0\] must have shape \(2, C\)"):
        Pointclouds([torch.rand(2, 3)], normals=[torch.rand(3, 3)])
    with pytest.raises(ValueError, match="normals must have 3 channels"):
        Pointclouds([torch.rand(2, 3)], normals=[torch.rand(2, 4)])
    with pytest.raises(ValueError, match="one number of channels"):
        Pointclouds([torch.rand(2, 3)] * 2, features=[torch.rand(2, 1), torch.rand(2, 2)])
    with pytest.raises(ValueError, match=r"features must have shape \(2, 3, C\)"):
        Pointclouds(torch.rand(2, 3, 3), features=torch.rand(2, 4, 1))
    with pytest.raises(TypeError, match="list of"):
        Pointclouds("points")  # type: ignore[arg-type]


def test_list_views_are_copies_and_padded_cache_follows_edits() -> None:
    points, _, _ = _lists()
    clouds = Pointclouds(points)
    clouds.points_list()[0].add_(1.0)
    assert torch.equal(clouds.points_packed(), torch.cat(points))
    before = clouds.points_padded().clone()
    with torch.no_grad():
        clouds.points_packed().add_(2.0)  # an in-place edit bumps the version
    assert torch.equal(clouds.points_padded()[0, :3], before[0, :3] + 2.0)


def test_offset_and_scale_match_naive_and_keep_gradients() -> None:
    points, normals, _ = _lists()
    clouds = Pointclouds(points, normals=normals)
    offsets = torch.rand(8, 3, dtype=torch.float64, requires_grad=True)
    moved = clouds.offset(offsets)
    assert torch.equal(moved.points_packed(), torch.cat(points) + offsets)
    assert moved.normals_packed() is clouds.normals_packed()
    moved.points_padded().sum().backward()
    assert torch.equal(offsets.grad, torch.ones(8, 3, dtype=torch.float64))
    shifted = clouds.offset(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    assert torch.equal(shifted.points_list()[2], points[2] + torch.tensor([1.0, 2.0, 3.0]))
    scale = torch.tensor([2.0, 3.0, 0.5], dtype=torch.float64)
    scaled = clouds.scale(scale)
    for i, p in enumerate(points):
        assert torch.equal(scaled.points_list()[i], p * scale[i])
    assert torch.equal(clouds.scale(2.0).points_packed(), 2 * torch.cat(points))
    same = clouds.clone()
    before = same.points_padded()  # cached, then replaced by the in-place updates
    assert same.offset_(torch.ones(3, dtype=torch.float64)) is same
    assert torch.equal(same.points_padded()[2], before[2] + 1)
    assert same.scale_(2.0) is same
    assert torch.equal(same.points_packed(), 2 * (torch.cat(points) + 1))
    with pytest.raises(ValueError, match=r"offsets_packed must have shape \(8, 3\)"):
        clouds.offset(torch.zeros(7, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"scale must be a number or a tensor of shape"):
        clouds.scale(torch.ones(2))


def test_update_padded_ignores_padding_and_shares_the_rest() -> None:
    points, normals, features = _lists()
    clouds = Pointclouds(points, normals=normals, features=features)
    new = torch.rand(3, 5, 3, dtype=torch.float64)
    updated = clouds.update_padded(new)
    assert torch.equal(updated.points_list()[0], new[0, :3])
    assert torch.equal(updated.points_list()[2], new[2])
    assert updated.features_packed() is clouds.features_packed()
    new_normals = torch.rand(3, 5, 3, dtype=torch.float64)
    assert torch.equal(clouds.update_padded(new, new_normals).normals_list()[0], new_normals[0, :3])
    with pytest.raises(ValueError, match=r"new_points_padded must have shape \(3, 5, 3\)"):
        clouds.update_padded(torch.rand(3, 4, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="no features"):
        Pointclouds(points).update_padded(new, None, torch.rand(3, 5, 2))


def test_bounding_boxes_match_naive_gradcheck_and_empty_cloud() -> None:
    points, _, _ = _lists()
    clouds = Pointclouds(points)
    boxes = clouds.get_bounding_boxes()
    assert boxes.shape == (3, 3, 2)
    for i, p in enumerate(points):
        if len(p):
            want = torch.stack([p.min(0).values, p.max(0).values], dim=1)
            assert torch.equal(boxes[i], want)
    assert not boxes[1].any()  # empty cloud: zeros
    a, b = (points[0].clone().requires_grad_(True), points[2].clone().requires_grad_(True))
    empty = torch.zeros(0, 3, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda x, y: Pointclouds([x, empty, y]).get_bounding_boxes(), (a, b)
    )


def test_getitem_extend_split_get_cloud_and_join() -> None:
    points, normals, features = _lists()
    clouds = Pointclouds(points, normals=normals, features=features)
    sub = clouds[[2, 0]]
    assert sub.num_points_per_cloud().tolist() == [5, 3]
    assert torch.equal(sub.normals_list()[0], normals[2])
    assert torch.equal(clouds[torch.tensor([False, False, True])].points_packed(), points[2])
    assert len(clouds[1:]) == 2 and clouds[-1].num_points_per_cloud().tolist() == [5]
    ext = clouds.extend(2)
    assert ext.num_points_per_cloud().tolist() == [3, 3, 0, 0, 5, 5]
    assert torch.equal(ext.features_list()[5], features[2])
    parts = clouds.split([1, 2])
    assert [len(p) for p in parts] == [1, 2]
    assert torch.equal(parts[1].points_list()[1], points[2])
    pts, nrm, feat = clouds.get_cloud(2)
    assert torch.equal(pts, points[2]) and torch.equal(nrm, normals[2])
    assert torch.equal(feat, features[2])
    joined = join_pointclouds_as_batch([clouds, sub])
    assert joined.num_points_per_cloud().tolist() == [3, 0, 5, 5, 3]
    assert torch.equal(joined.normals_list()[3], normals[2])
    with pytest.raises(ValueError, match="differ in normals"):
        join_pointclouds_as_batch([clouds, Pointclouds(points)])
    with pytest.raises(ValueError, match="extend: N must be an int >= 1"):
        clouds.extend(0)
    with pytest.raises(IndexError):
        clouds[3]


def test_clone_detach_to() -> None:
    points, normals, _ = _lists()
    pts = [p.clone().requires_grad_(True) for p in points]
    clouds = Pointclouds(pts, normals=normals)
    copy = clouds.clone()
    assert copy.points_packed().data_ptr() != clouds.points_packed().data_ptr()
    assert copy.points_packed().requires_grad
    assert not clouds.detach().points_packed().requires_grad
    assert clouds.to("cpu") is clouds
    assert clouds.to("cpu", copy=True) is not clouds
    assert clouds.cpu().normals_packed() is clouds.normals_packed()


def test_inside_box_matches_naive() -> None:
    points, _, _ = _lists()
    clouds = Pointclouds(points)
    box = torch.tensor([[0.2, 0.2, 0.2], [0.8, 0.9, 1.0]], dtype=torch.float64)
    inside = clouds.inside_box(box)
    packed = clouds.points_packed()
    want = [bool(((p >= box[0]) & (p <= box[1])).all()) for p in packed]
    assert inside.tolist() == want
    per_cloud = torch.stack([box, box * 0, box])
    assert clouds.inside_box(per_cloud)[:3].tolist() == want[:3]
    with pytest.raises(ValueError, match="minimum larger"):
        clouds.inside_box(box.flip(0))


def test_subsample_keeps_distinct_points_of_each_cloud() -> None:
    points, normals, _ = _lists()
    clouds = Pointclouds(points, normals=normals)
    assert clouds.subsample(5) is clouds
    g = torch.Generator().manual_seed(3)
    sub = clouds.subsample([2, 0, 4], generator=g)
    assert sub.num_points_per_cloud().tolist() == [2, 0, 4]
    for i, keep in ((0, 2), (2, 4)):
        got = sub.points_list()[i]
        rows = [int((points[i] == q).all(1).nonzero()[0, 0]) for q in got]
        assert len(set(rows)) == keep
        assert torch.equal(sub.normals_list()[i], normals[i][rows])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_to_cuda_and_back() -> None:
    points, normals, features = _lists()
    clouds = Pointclouds(points, normals=normals, features=features)
    gpu = clouds.to("cuda")
    assert gpu.device.type == "cuda" and gpu.points_padded().device.type == "cuda"
    assert torch.equal(gpu.get_bounding_boxes().cpu(), clouds.get_bounding_boxes())
    back = gpu[[2, 0]].cpu()
    assert torch.equal(back.features_packed(), clouds[[2, 0]].features_packed())
