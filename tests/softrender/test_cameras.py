"""Tests for the FoV cameras and the shared world -> NDC -> screen chain."""

from __future__ import annotations

import math

import pytest
import torch
from diffmesh.softrender.cameras import (
    FoVOrthographicCameras,
    FoVPerspectiveCameras,
    PerspectiveCameras,
    get_ndc_to_screen_transform,
    get_screen_to_ndc_transform,
)
from diffmesh.softrender.look_at import look_at_view_transform

F64 = torch.float64


def _reference_fov_ndc(
    points: list[list[float]],
    R: list[list[float]],
    T: list[float],
    znear: float,
    zfar: float,
    fov_deg: float,
    aspect: float,
) -> list[list[float]]:
    """Textbook pinhole projection, one point at a time, in Python floats."""
    t = math.tan(math.radians(fov_deg) / 2)
    out = []
    for p in points:
        v = [sum(p[k] * R[k][j] for k in range(3)) + T[j] for j in range(3)]
        x, y, z = v
        out.append([x / (z * t * aspect), y / (z * t), zfar * (z - znear) / ((zfar - znear) * z)])
    return out


def test_fov_perspective_matches_reference():
    g = torch.Generator().manual_seed(0)
    R, T = look_at_view_transform(3.0, 25.0, 40.0)
    cams = FoVPerspectiveCameras(znear=0.5, zfar=20.0, aspect_ratio=1.5, fov=50.0, R=R, T=T)
    pts = torch.rand(6, 3, generator=g) - 0.5
    out = cams.transform_points(pts.to(F64))
    ref = _reference_fov_ndc(pts.tolist(), R[0].tolist(), T[0].tolist(), 0.5, 20.0, 50.0, 1.5)
    torch.testing.assert_close(out, torch.tensor(ref, dtype=F64), rtol=1e-5, atol=1e-5)


def test_fov_perspective_known_points():
    cams = FoVPerspectiveCameras(znear=1.0, zfar=10.0, fov=90.0)
    pts = torch.tensor(
        [
            [0.0, 0.0, 1.0],  # axis at znear -> z 0
            [0.0, 0.0, 10.0],  # axis at zfar -> z 1
            [2.0, 0.0, 2.0],  # fov edge (tan 45 = 1) at +X -> x = +1 (left)
            [-3.0, 3.0, 3.0],  # corner at depth 3 -> (-1, +1)
        ]
    )
    ndc = cams.transform_points(pts)
    torch.testing.assert_close(
        ndc[:, 2], torch.tensor([0.0, 1.0, 1.0 * (2 - 1) / (9 * 2) * 10, 10 * 2 / 27])
    )
    torch.testing.assert_close(ndc[2, :2], torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(ndc[3, :2], torch.tensor([-1.0, 1.0]))
    # radians and degrees agree
    rad = FoVPerspectiveCameras(znear=1.0, zfar=10.0, fov=math.pi / 2, degrees=False)
    torch.testing.assert_close(rad.transform_points(pts), ndc)


def test_fov_perspective_aspect_ratio_widens_x():
    cams = FoVPerspectiveCameras(fov=90.0, aspect_ratio=2.0)
    ndc = cams.transform_points(torch.tensor([[2.0, 1.0, 1.0]]))
    torch.testing.assert_close(ndc[0, :2], torch.tensor([1.0, 1.0]))


def test_projection_matrix_layout():
    cams = FoVPerspectiveCameras(znear=1.0, zfar=3.0, fov=90.0)
    K = cams.compute_projection_matrix(1.0, 3.0, 90.0, 1.0, True)[0]
    expected = torch.tensor(
        [
            [1.0, 0.0, 0.0, 0.0],
            [0.0, 1.0, 0.0, 0.0],
            [0.0, 0.0, 1.5, -1.5],
            [0.0, 0.0, 1.0, 0.0],
        ]
    )
    torch.testing.assert_close(K, expected)
    torch.testing.assert_close(cams.get_projection_transform().get_matrix()[0], expected.T)


def test_default_look_at_x_axis_orientation():
    # look_at at azim 0 views the scene from +Z: world +X is on the viewer's right,
    # i.e. NDC -X (PyTorch3D's +X is left); with R = I the camera looks along +Z and
    # world +X lands on NDC +X (image left).
    R, T = look_at_view_transform(2.7, 0.0, 0.0)
    ndc = FoVPerspectiveCameras(R=R, T=T).transform_points(torch.tensor([[1.0, 0.0, 0.0]]))
    assert ndc[0, 0] < 0
    screen = FoVPerspectiveCameras(R=R, T=T).transform_points_screen(
        torch.tensor([[1.0, 0.0, 0.0]]), image_size=64
    )
    assert screen[0, 0] > 32
    identity = FoVPerspectiveCameras(T=((0.0, 0.0, 2.7),))
    ndc = identity.transform_points(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    assert ndc[0, 0] > 0 and ndc[1, 1] > 0
    screen = identity.transform_points_screen(torch.tensor([[1.0, 0.0, 0.0]]), image_size=64)
    assert screen[0, 0] < 32


def test_orthographic_known_points():
    cams = FoVOrthographicCameras(znear=0.0, zfar=4.0, max_y=2.0, min_y=-2.0, max_x=1.0, min_x=-3.0)
    pts = torch.tensor([[1.0, 2.0, 0.0], [-3.0, -2.0, 4.0], [-1.0, 0.0, 2.0]])
    ndc = cams.transform_points(pts)
    expected = torch.tensor([[1.0, 1.0, 0.0], [-1.0, -1.0, 1.0], [0.0, 0.0, 0.5]])
    torch.testing.assert_close(ndc, expected)
    assert not cams.is_perspective()
    scaled = FoVOrthographicCameras(scale_xyz=((2.0, 0.5, 1.0),), znear=0.0, zfar=1.0)
    torch.testing.assert_close(
        scaled.transform_points(torch.tensor([[0.25, 1.0, 0.5]])),
        torch.tensor([[0.5, 0.5, 0.5]]),
    )


def test_screen_corners_square_and_non_square():
    cams = FoVOrthographicCameras(znear=0.0, zfar=1.0, max_x=2.0, min_x=-2.0)
    # With max_x = 2 the view box spans NDC x in [-1, 1] for |x| <= 2.
    corners_world = torch.tensor(
        [[2.0, 1.0, 0.5], [-2.0, 1.0, 0.5], [2.0, -1.0, 0.5], [-2.0, -1.0, 0.5]]
    )
    square = cams.transform_points_screen(corners_world, image_size=(8, 8))
    expected = torch.tensor([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0], [8.0, 8.0]])
    torch.testing.assert_close(square[:, :2], expected)
    torch.testing.assert_close(square[:, 2], torch.full((4,), 0.5))
    # Non-square: NDC corners (+-u, +-1) with u = W / H map to the image corners.
    wide = FoVOrthographicCameras(znear=0.0, zfar=1.0)
    ndc_corners = torch.tensor(
        [[2.0, 1.0, 0.5], [-2.0, 1.0, 0.5], [2.0, -1.0, 0.5], [-2.0, -1.0, 0.5]]
    )
    screen = wide.transform_points_screen(ndc_corners, image_size=(64, 128))
    torch.testing.assert_close(
        screen[:, :2], torch.tensor([[0.0, 0.0], [128.0, 0.0], [0.0, 64.0], [128.0, 64.0]])
    )
    tall = wide.transform_points_screen(
        torch.tensor([[1.0, 3.0, 0.5], [-1.0, -3.0, 0.5]]), image_size=(96, 32)
    )
    torch.testing.assert_close(tall[:, :2], torch.tensor([[0.0, 0.0], [32.0, 96.0]]))
    # Pixel centres: NDC 1 - (2i + 1) / S lands on i + 0.5.
    s = 16
    centres = torch.tensor([[1 - (2 * i + 1) / s, 1 - (2 * i + 1) / s, 0.5] for i in range(s)])
    px = wide.transform_points_screen(centres, image_size=s)
    torch.testing.assert_close(px[:, 0], torch.arange(s) + 0.5)


def test_ndc_screen_transforms_are_inverse():
    cams = FoVPerspectiveCameras(R=torch.eye(3).expand(2, 3, 3))
    size = torch.tensor([[48, 80], [80, 48]])
    a = get_ndc_to_screen_transform(cams, with_xyflip=True, image_size=size)
    b = get_screen_to_ndc_transform(cams, with_xyflip=True, image_size=size)
    torch.testing.assert_close(a.compose(b).get_matrix(), torch.eye(4).expand(2, 4, 4))
    with pytest.raises(ValueError, match="image_size"):
        get_ndc_to_screen_transform(cams, image_size=None)
    with pytest.raises(ValueError, match="image_size"):
        cams.transform_points_screen(torch.zeros(1, 3))


def test_camera_center_is_look_at_eye():
    eye = torch.tensor([[1.0, 2.0, 3.0], [-2.0, 0.5, 1.0]])
    R, T = look_at_view_transform(eye=eye, at=((0.1, 0.2, 0.3),))
    cams = FoVPerspectiveCameras(R=R, T=T)
    torch.testing.assert_close(cams.get_camera_center(), eye)
    R, T = look_at_view_transform(dist=2.7, elev=30.0, azim=-45.0)
    center = FoVPerspectiveCameras(R=R, T=T).get_camera_center()[0]
    e, a = math.radians(30.0), math.radians(-45.0)
    expected = 2.7 * torch.tensor(
        [math.cos(e) * math.sin(a), math.sin(e), math.cos(e) * math.cos(a)]
    )
    torch.testing.assert_close(center, expected)
    # the world -> view transform sends the centre to the view origin
    view = cams.get_world_to_view_transform().transform_points(eye[:, None, :])
    # eye @ R + T cancels to 0 from terms as large as |eye|: a few float32 ulps of |eye|.
    tol = 8 * torch.finfo(torch.float32).eps * float(eye.norm(dim=1).max())
    torch.testing.assert_close(view, torch.zeros(2, 1, 3), atol=tol, rtol=0)


def test_transform_points_ndc_equals_transform_points_for_ndc_cameras():
    R, T = look_at_view_transform(2.0, 10.0, 20.0)
    pts = torch.rand(5, 3) - 0.5
    for cams in (FoVPerspectiveCameras(R=R, T=T), FoVOrthographicCameras(R=R, T=T)):
        torch.testing.assert_close(cams.transform_points_ndc(pts), cams.transform_points(pts))
        assert cams.in_ndc()
        torch.testing.assert_close(cams.get_ndc_camera_transform().get_matrix(), torch.eye(4)[None])


def test_getters():
    cams = FoVPerspectiveCameras(znear=torch.tensor([0.5, 1.0]), R=torch.eye(3).expand(2, 3, 3))
    assert cams.is_perspective()
    torch.testing.assert_close(cams.get_znear(), torch.tensor([0.5, 1.0]))
    torch.testing.assert_close(cams.zfar, torch.tensor([100.0, 100.0]))
    ortho = FoVOrthographicCameras(znear=-1.0)
    torch.testing.assert_close(ortho.get_znear(), torch.tensor([-1.0]))
    assert cams.get_image_size() is None


@pytest.mark.parametrize("kind", ["fov", "ortho"])
def test_gradcheck_transform_points(kind: str):
    g = torch.Generator().manual_seed(1)
    R0, T0 = look_at_view_transform(3.0, 20.0, 30.0)
    R = R0.to(F64).requires_grad_(True)
    T = T0.to(F64).requires_grad_(True)
    pts = (torch.rand(2, 4, 3, generator=g, dtype=F64) - 0.5).requires_grad_(True)
    R2 = R.detach().expand(2, 3, 3).clone().requires_grad_(True)

    def fn(points: torch.Tensor, rot: torch.Tensor, trans: torch.Tensor) -> torch.Tensor:
        if kind == "fov":
            cams = FoVPerspectiveCameras(znear=0.5, fov=40.0, R=rot, T=trans)
        else:
            cams = FoVOrthographicCameras(znear=0.5, R=rot, T=trans)
        return cams.transform_points(points)

    assert torch.autograd.gradcheck(fn, (pts, R, T))
    assert torch.autograd.gradcheck(fn, (pts, R2, T))


def test_gradcheck_fov_parameters():
    pts = torch.tensor([[0.3, -0.2, 2.0], [0.1, 0.4, 3.0]], dtype=F64)
    fov = torch.tensor([50.0], dtype=F64, requires_grad=True)
    znear = torch.tensor([0.7], dtype=F64, requires_grad=True)

    def fn(f: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        return FoVPerspectiveCameras(znear=n, fov=f).transform_points_screen(pts, image_size=32)

    assert torch.autograd.gradcheck(fn, (fov, znear))


def test_degenerate_points_no_nan():
    cams = FoVPerspectiveCameras().to(F64)
    pts = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 1.0, 0.0]], dtype=F64)
    pts.requires_grad_(True)
    out = cams.transform_points(pts, eps=1e-4)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(pts.grad).all()
    empty = cams.transform_points(torch.zeros(0, 3, dtype=F64))
    assert empty.shape == (0, 3)


def test_fov_validation_errors():
    with pytest.raises(ValueError, match="znear"):
        FoVPerspectiveCameras(znear=5.0, zfar=5.0)
    with pytest.raises(ValueError, match="znear"):
        FoVPerspectiveCameras(znear=0.0)
    with pytest.raises(ValueError, match="fov"):
        FoVPerspectiveCameras(fov=180.0)
    with pytest.raises(ValueError, match="fov"):
        FoVPerspectiveCameras(fov=0.0)
    with pytest.raises(ValueError, match="fov"):
        FoVPerspectiveCameras(fov=4.0, degrees=False)
    with pytest.raises(ValueError, match="aspect_ratio"):
        FoVPerspectiveCameras(aspect_ratio=-1.0)
    with pytest.raises(ValueError, match="zfar"):
        FoVPerspectiveCameras(zfar=float("nan"))
    with pytest.raises(ValueError, match="znear"):
        FoVOrthographicCameras(znear=2.0, zfar=1.0)
    with pytest.raises(ValueError, match="max_x"):
        FoVOrthographicCameras(max_x=-1.0)
    with pytest.raises(ValueError, match="max_y"):
        FoVOrthographicCameras(max_y=-2.0)
    with pytest.raises(ValueError, match="scale_xyz"):
        FoVOrthographicCameras(scale_xyz=(1.0, 2.0))


def test_custom_projection_matrix_k():
    R, T = look_at_view_transform(2.5, 15.0, 25.0)
    pts = torch.rand(5, 3) - 0.5
    cams = FoVPerspectiveCameras(znear=0.5, fov=40.0, R=R, T=T)
    K = cams.compute_projection_matrix(0.5, 100.0, 40.0, 1.0, True)
    torch.testing.assert_close(cams.get_projection_transform().get_matrix(), K.transpose(1, 2))
    with_k = FoVPerspectiveCameras(K=K, R=R, T=T)
    torch.testing.assert_close(with_k.transform_points(pts), cams.transform_points(pts))
    ortho = FoVOrthographicCameras(znear=0.1, zfar=5.0, max_x=2.0, min_x=-1.0, R=R, T=T)
    K_o = ortho.compute_projection_matrix(0.1, 5.0, 2.0, -1.0, 1.0, -1.0, (1.0, 1.0, 1.0))
    torch.testing.assert_close(ortho.get_projection_transform().get_matrix(), K_o.transpose(1, 2))
    with_k = FoVOrthographicCameras(K=K_o[0], R=R, T=T)
    torch.testing.assert_close(with_k.transform_points(pts), ortho.transform_points(pts))
    with pytest.raises(ValueError, match="K must have shape"):
        FoVPerspectiveCameras(K=torch.eye(3))


def test_unproject_points_round_trip():
    R, T = look_at_view_transform(2.5, torch.tensor([15.0, -20.0]), torch.tensor([25.0, 100.0]))
    pts = (torch.rand(2, 6, 3, generator=torch.Generator().manual_seed(3)) - 0.5).to(F64)
    for cams in (
        FoVPerspectiveCameras(znear=0.5, R=R, T=T).to(F64),
        FoVOrthographicCameras(znear=0.1, zfar=5.0, R=R, T=T).to(F64),
    ):
        ndc = cams.transform_points(pts)
        depth = cams.get_world_to_view_transform().transform_points(pts)[..., 2:]
        xy_depth = torch.cat([ndc[..., :2], depth], dim=-1)
        torch.testing.assert_close(cams.unproject_points(xy_depth), pts)
        torch.testing.assert_close(cams.unproject_points(ndc, scaled_depth_input=True), pts)
        view = cams.unproject_points(xy_depth, world_coordinates=False)
        torch.testing.assert_close(view[..., 2:], depth)
    # unbatched input with a single camera keeps (P, 3)
    one = FoVPerspectiveCameras(T=((0.0, 0.0, 3.0),))
    p = torch.tensor([[0.1, 0.2, 0.3]])
    ndc = one.transform_points(p)
    xy_depth = torch.cat([ndc[:, :2], p[:, 2:] + 3.0], dim=-1)
    torch.testing.assert_close(one.unproject_points(xy_depth), p)


def test_image_size_validation():
    cams = FoVPerspectiveCameras(T=((0.0, 0.0, 3.0),))
    pts = torch.zeros(1, 3)
    with pytest.raises(ValueError, match="image_size"):
        cams.transform_points_screen(pts, image_size=(0, 16))
    with pytest.raises(ValueError, match="image_size"):
        cams.transform_points_screen(pts, image_size=(16, 16, 3))
    with pytest.raises(ValueError, match="image_size"):
        cams.transform_points_screen(pts, image_size=torch.ones(3, 2) * 8)
    with pytest.raises(TypeError, match="image_size"):
        cams.transform_points_screen(pts, image_size="large")
    with pytest.raises(ValueError, match="xy_depth"):
        cams.unproject_points(torch.zeros(4, 2))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize(
    "make",
    [
        lambda **kw: FoVPerspectiveCameras(**kw),
        lambda **kw: FoVOrthographicCameras(**kw),
        lambda **kw: PerspectiveCameras(**kw),
    ],
)
def test_non_finite_extrinsics_are_refused(make, bad):
    R = torch.eye(3).expand(2, 3, 3).clone()
    T = torch.tensor([[0.0, 0.0, 3.0], [0.0, 0.0, 3.0]])
    bad_R, bad_T = R.clone(), T.clone()
    bad_R[1, 0, 2], bad_T[1, 1] = bad, bad
    with pytest.raises(ValueError, match=r"R must be finite, got NaN or inf in camera 1"):
        make(R=bad_R, T=T)
    with pytest.raises(ValueError, match=r"T must be finite, got NaN or inf in camera 1"):
        make(R=R, T=bad_T)
    cameras = make(R=R, T=T)
    with pytest.raises(ValueError, match=r"T must be finite"):
        cameras.get_world_to_view_transform(T=bad_T)  # the per-call override too
    with pytest.raises(ValueError, match=r"R must be finite"):
        cameras.get_world_to_view_transform(R=bad_R)
    cameras.T[0, 2] = bad  # a buffer changed after construction: refused when used
    with pytest.raises(ValueError, match=r"T must be finite, got NaN or inf in camera 0"):
        cameras.transform_points(torch.zeros(2, 1, 3))
