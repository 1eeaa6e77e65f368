"""Camera batches: parameter broadcasting, indexing, .to(), clone()."""

from __future__ import annotations

import pytest
import torch
from diffmesh.softrender.cameras import (
    FoVOrthographicCameras,
    FoVPerspectiveCameras,
    PerspectiveCameras,
)
from diffmesh.softrender.look_at import look_at_view_transform

F64 = torch.float64


def _three_cameras() -> FoVPerspectiveCameras:
    R, T = look_at_view_transform(
        torch.tensor([2.0, 3.0, 4.0]), 10.0, torch.tensor([0.0, 40.0, 80.0])
    )
    return FoVPerspectiveCameras(fov=torch.tensor([30.0, 60.0, 90.0]), R=R, T=T)


def test_scalar_params_broadcast_to_batch():
    R, T = look_at_view_transform(2.0, 0.0, torch.tensor([0.0, 90.0, 180.0]))
    cams = FoVPerspectiveCameras(fov=45.0, R=R, T=T)
    assert len(cams) == 3
    assert cams.fov.shape == (3,) and cams.znear.shape == (3,) and cams.T.shape == (3, 3)
    ortho = FoVOrthographicCameras(R=R, T=T)
    assert ortho.scale_xyz.shape == (3, 3) and ortho.max_x.shape == (3,)
    # unbatched R (3, 3) and T (3,) become batch 1
    single = FoVPerspectiveCameras(R=torch.eye(3), T=torch.zeros(3))
    assert len(single) == 1 and single.R.shape == (1, 3, 3)
    # a batch of fov with a single R
    cams = FoVPerspectiveCameras(fov=torch.tensor([30.0, 60.0]))
    assert len(cams) == 2 and cams.R.shape == (2, 3, 3)


def test_batched_projection_matches_individual():
    cams = _three_cameras()
    pts = torch.rand(5, 3) - 0.5
    out = cams.transform_points(pts)
    assert out.shape == (3, 5, 3)
    for i in range(3):
        one = FoVPerspectiveCameras(fov=cams.fov[i].item(), R=cams.R[i], T=cams.T[i])
        torch.testing.assert_close(out[i], one.transform_points(pts))
    # (N, P, 3) points pair with their cameras
    per = torch.rand(3, 4, 3) - 0.5
    out = cams.transform_points(per)
    for i in range(3):
        torch.testing.assert_close(out[i], cams[i].transform_points(per[i]))


@pytest.mark.parametrize(
    "index",
    [
        1,
        -1,
        [2, 0],
        slice(1, 3),
        torch.tensor([2, 2, 0, 1, 1, 0, 2]),
        torch.tensor([True, False, True]),
    ],
)
def test_getitem_gathers(index):
    cams = _three_cameras()
    sub = cams[index]
    if isinstance(index, int):
        expected = [index % 3]
    elif isinstance(index, slice):
        expected = list(range(3))[index]
    elif isinstance(index, torch.Tensor) and index.dtype == torch.bool:
        expected = index.nonzero()[:, 0].tolist()
    else:
        expected = [int(i) for i in index]
    assert isinstance(sub, FoVPerspectiveCameras)
    assert len(sub) == len(expected)
    torch.testing.assert_close(sub.fov, cams.fov[expected])
    torch.testing.assert_close(sub.R, cams.R[expected])
    torch.testing.assert_close(sub.get_camera_center(), cams.get_camera_center()[expected])
    assert sub.degrees == cams.degrees


def test_getitem_per_pair_camera_centres():
    cams = _three_cameras()
    pair_mesh_idx = torch.randint(0, 3, (1000,), generator=torch.Generator().manual_seed(0))
    centres = cams[pair_mesh_idx].get_camera_center()
    assert centres.shape == (1000, 3)
    torch.testing.assert_close(centres, cams.get_camera_center()[pair_mesh_idx])
    # a single camera broadcasts to any per-pair index, without copying
    one = FoVPerspectiveCameras(T=((0.0, 0.0, 3.0),))
    gathered = one[pair_mesh_idx]
    assert len(gathered) == 1000 and gathered.R.stride(0) == 0
    torch.testing.assert_close(
        gathered.get_camera_center(), one.get_camera_center().expand(1000, 3)
    )


def test_getitem_keeps_screen_space_settings():
    cams = PerspectiveCameras(
        focal_length=torch.tensor([10.0, 20.0]), in_ndc=False, image_size=(16, 32)
    )
    sub = cams[[1]]
    assert not sub.in_ndc()
    torch.testing.assert_close(sub.image_size, torch.tensor([[16, 32]]))
    torch.testing.assert_close(sub.focal_length, torch.tensor([[20.0, 20.0]]))


def test_getitem_keeps_gradients():
    fov = torch.tensor([40.0, 50.0], requires_grad=True)
    cams = FoVPerspectiveCameras(fov=fov)
    cams[torch.tensor([1, 1, 0])].transform_points(torch.tensor([[0.2, 0.1, 2.0]])).sum().backward()
    assert fov.grad is not None and (fov.grad != 0).all()


def test_to_dtype_and_clone():
    cams = _three_cameras()
    c64 = _three_cameras().to(F64)  # nn.Module.to: in place, returns the module
    assert c64.dtype == F64 and c64.R.dtype == F64 and c64.fov.dtype == F64
    pts = torch.rand(4, 3, dtype=F64)
    torch.testing.assert_close(
        c64.transform_points(pts), cams.transform_points(pts.float()).double(), atol=1e-5, rtol=1e-5
    )
    assert c64.device == torch.device("cpu")
    clone = cams.clone()
    assert clone is not cams and clone.R.data_ptr() != cams.R.data_ptr()
    torch.testing.assert_close(clone.R, cams.R)
    clone.fov.mul_(0.5)
    assert not torch.equal(clone.fov, cams.fov)
    screen = PerspectiveCameras(in_ndc=False, image_size=(8, 8)).to(F64)
    assert screen.image_size.dtype == torch.int64 and screen.focal_length.dtype == F64


def test_dtype_from_tensor_inputs():
    cams = FoVPerspectiveCameras(R=torch.eye(3, dtype=F64))
    assert cams.dtype == F64 and cams.znear.dtype == F64
    assert FoVPerspectiveCameras().dtype == torch.float32


def test_mixed_dtype_points_promote():
    cams = FoVPerspectiveCameras(T=((0.0, 0.0, 2.0),))
    out = cams.transform_points(torch.tensor([[0.1, 0.2, 0.3]], dtype=F64))
    assert out.dtype == F64


def test_batch_validation_errors():
    with pytest.raises(ValueError, match=r"R has batch size 2 but fov has batch size 3"):
        FoVPerspectiveCameras(R=torch.eye(3).expand(2, 3, 3), fov=torch.ones(3) * 50)
    with pytest.raises(ValueError, match="R must have shape"):
        FoVPerspectiveCameras(R=torch.eye(4))
    with pytest.raises(ValueError, match="T must have shape"):
        FoVPerspectiveCameras(T=((0.0, 0.0),))
    with pytest.raises(ValueError, match="fov must have shape"):
        FoVPerspectiveCameras(fov=torch.ones(2, 2))
    with pytest.raises(TypeError, match="znear"):
        FoVPerspectiveCameras(znear="near")
    with pytest.raises(TypeError, match="R"):
        FoVPerspectiveCameras(R=torch.ones(3, 3, dtype=torch.bool))
    cams = _three_cameras()
    with pytest.raises(IndexError):
        cams[3]
    with pytest.raises(IndexError):
        cams[torch.tensor([0, 5])]
    with pytest.raises(IndexError):
        cams[torch.tensor([True, False])]
    with pytest.raises(TypeError, match="index"):
        cams[1.5]
    with pytest.raises(TypeError, match="index"):
        cams[torch.tensor([[0, 1]])]
    with pytest.raises(ValueError, match="batch size"):
        cams.transform_points(torch.zeros(2, 4, 3))
