"""Tests for PerspectiveCameras (focal length / principal point, NDC and screen space)."""

from __future__ import annotations

import pytest
import torch
from diffmesh.softrender.cameras import PerspectiveCameras
from diffmesh.softrender.look_at import look_at_view_transform

F64 = torch.float64


def _reference_pixels(
    points: list[list[float]], f: tuple[float, float], p: tuple[float, float]
) -> list[list[float]]:
    """Pinhole camera in image coordinates for view-space points (R = I, T = 0).

    View +X is image left and +Y image up, so u = px - fx X / Z, v = py - fy Y / Z.
    """
    return [[p[0] - f[0] * x / z, p[1] - f[1] * y / z, 1.0 / z] for x, y, z in points]


def test_ndc_projection_known_values():
    cams = PerspectiveCameras(focal_length=2.0, principal_point=((0.1, -0.2),))
    pts = torch.tensor([[0.0, 0.0, 4.0], [1.0, -1.0, 2.0]])
    ndc = cams.transform_points(pts)
    expected = torch.tensor([[0.1, -0.2, 0.25], [1.1, -1.2, 0.5]])
    torch.testing.assert_close(ndc, expected)
    torch.testing.assert_close(cams.transform_points_ndc(pts), expected)
    assert cams.in_ndc() and cams.is_perspective() and cams.get_znear() is None


def test_focal_length_forms():
    pts = torch.tensor([[1.0, 1.0, 1.0]])
    for focal, expected in [
        (3.0, [3.0, 3.0]),
        ((3.0,), [3.0, 3.0]),
        (((3.0,),), [3.0, 3.0]),
        (((3.0, 5.0),), [3.0, 5.0]),
        (torch.tensor([[3.0, 5.0]]), [3.0, 5.0]),
    ]:
        cams = PerspectiveCameras(focal_length=focal)
        assert cams.focal_length.shape == (1, 2)
        torch.testing.assert_close(cams.transform_points(pts)[0, :2], torch.tensor(expected))
    batched = PerspectiveCameras(focal_length=torch.tensor([1.0, 2.0, 3.0]))
    assert len(batched) == 3 and batched.R.shape == (3, 3, 3)


def test_screen_space_camera_matches_pixel_reference():
    f, p = (120.0, 100.0), (70.0, 30.0)
    cams = PerspectiveCameras(
        focal_length=(f,), principal_point=(p,), in_ndc=False, image_size=((64, 128),)
    )
    pts = [[0.0, 0.0, 3.0], [0.5, -0.25, 2.0], [-1.0, 0.3, 5.0]]
    screen = cams.transform_points_screen(torch.tensor(pts, dtype=F64))
    torch.testing.assert_close(screen, torch.tensor(_reference_pixels(pts, f, p), dtype=F64))
    # The principal point is where the optical axis lands.
    torch.testing.assert_close(screen[0, :2], torch.tensor(p, dtype=F64))
    # NDC: screen = (W/2 - s x, H/2 - s y), s = min(H, W) / 2 = 32.
    ndc = cams.transform_points_ndc(torch.tensor(pts, dtype=F64))
    torch.testing.assert_close((64.0 - screen[:, 0]) / 32.0, ndc[:, 0])
    torch.testing.assert_close((32.0 - screen[:, 1]) / 32.0, ndc[:, 1])
    assert not cams.in_ndc()


def test_screen_space_image_size_override_and_batch():
    cams = PerspectiveCameras(
        focal_length=torch.tensor([50.0, 80.0]),
        principal_point=torch.tensor([[16.0, 16.0], [10.0, 20.0]]),
        in_ndc=False,
        image_size=(32, 32),
    )
    assert cams.image_size.shape == (2, 2)
    pts = torch.tensor([[0.2, 0.1, 2.0]])
    screen = cams.transform_points_screen(pts)
    expected = torch.tensor([[[11.0, 13.5, 0.5]], [[2.0, 16.0, 0.5]]])
    torch.testing.assert_close(screen, expected)
    # The screen result does not depend on which image size is used for NDC.
    screen2 = cams.transform_points_screen(pts, image_size=(48, 96))
    torch.testing.assert_close(screen2, expected)


def test_ndc_camera_screen_corners():
    cams = PerspectiveCameras(focal_length=1.0)
    corners = torch.tensor([[1.0, 1.0, 1.0], [-1.0, -1.0, 1.0]])
    screen = cams.transform_points_screen(corners, image_size=(10, 10))
    torch.testing.assert_close(screen[:, :2], torch.tensor([[0.0, 0.0], [10.0, 10.0]]))


def test_camera_center_and_look_at():
    R, T = look_at_view_transform(eye=((0.5, 1.0, -2.0),))
    cams = PerspectiveCameras(R=R, T=T)
    torch.testing.assert_close(cams.get_camera_center(), torch.tensor([[0.5, 1.0, -2.0]]))


@pytest.mark.parametrize("in_ndc", [True, False])
def test_gradcheck_transform_points(in_ndc: bool):
    g = torch.Generator().manual_seed(0)
    R0, T0 = look_at_view_transform(3.0, 15.0, -30.0)
    R = R0.to(F64).requires_grad_(True)
    T = T0.to(F64).requires_grad_(True)
    pts = (torch.rand(2, 4, 3, generator=g, dtype=F64) - 0.5).requires_grad_(True)
    focal = torch.tensor([[1.5, 1.2]], dtype=F64, requires_grad=True)
    principal = torch.tensor([[0.1, -0.1]], dtype=F64, requires_grad=True)

    def fn(points, rot, trans, f, p):
        scale = 1.0 if in_ndc else 16.0
        cams = PerspectiveCameras(
            focal_length=f * scale,
            principal_point=p * scale + (0.0 if in_ndc else 16.0),
            R=rot,
            T=trans,
            in_ndc=in_ndc,
            image_size=None if in_ndc else (32, 32),
        )
        return cams.transform_points_screen(points, image_size=(32, 32))

    assert torch.autograd.gradcheck(fn, (pts, R, T, focal, principal))


def test_degenerate_points_no_nan():
    cams = PerspectiveCameras(in_ndc=False, image_size=(8, 8), focal_length=4.0).to(F64)
    pts = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=F64, requires_grad=True)
    out = cams.transform_points_screen(pts, eps=1e-3)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(pts.grad).all()


def test_validation_errors():
    with pytest.raises(ValueError, match="focal_length"):
        PerspectiveCameras(focal_length=0.0)
    with pytest.raises(ValueError, match="focal_length"):
        PerspectiveCameras(focal_length=((1.0, -2.0),))
    with pytest.raises(ValueError, match="focal_length"):
        PerspectiveCameras(focal_length=torch.ones(1, 3))
    with pytest.raises(ValueError, match="image_size"):
        PerspectiveCameras(in_ndc=False)
    with pytest.raises(ValueError, match="image_size"):
        PerspectiveCameras(in_ndc=False, image_size=(0, 10))
    with pytest.raises(ValueError, match="principal_point"):
        PerspectiveCameras(principal_point=((0.0, 0.0, 0.0),))
    with pytest.raises(ValueError, match="batch size"):
        PerspectiveCameras(focal_length=torch.ones(2), principal_point=torch.zeros(3, 2))
    with pytest.raises(TypeError, match="in_ndc"):
        PerspectiveCameras(in_ndc="yes")
    with pytest.raises(TypeError, match="focal_length"):
        PerspectiveCameras(focal_length="wide")


def test_custom_calibration_matrix_k():
    K = torch.tensor(
        [
            [
                [40.0, 0.0, 10.0, 0.0],
                [0.0, 30.0, 12.0, 0.0],
                [0.0, 0.0, 0.0, 1.0],
                [0.0, 0.0, 1.0, 0.0],
            ]
        ]
    )
    pts = torch.tensor([[0.2, -0.1, 2.0]])
    with_k = PerspectiveCameras(K=K, in_ndc=False, image_size=(24, 24))
    plain = PerspectiveCameras(
        focal_length=((40.0, 30.0),),
        principal_point=((10.0, 12.0),),
        in_ndc=False,
        image_size=(24, 24),
    )
    torch.testing.assert_close(with_k.get_principal_point(), torch.tensor([[10.0, 12.0]]))
    torch.testing.assert_close(
        with_k.transform_points_screen(pts), plain.transform_points_screen(pts)
    )
    torch.testing.assert_close(
        with_k.transform_points_screen(pts), torch.tensor([[10.0 - 4.0, 12.0 + 1.5, 0.5]])
    )


def test_unproject_points_round_trip():
    R, T = look_at_view_transform(3.0, 10.0, 40.0)
    cams = PerspectiveCameras(
        focal_length=((30.0, 25.0),),
        principal_point=((12.0, 9.0),),
        in_ndc=False,
        image_size=(24, 32),
        R=R,
        T=T,
    ).to(F64)
    pts = torch.rand(5, 3, dtype=F64) - 0.5
    proj = cams.transform_points(pts)
    depth = cams.get_world_to_view_transform().transform_points(pts)[:, 2:]
    torch.testing.assert_close(cams.unproject_points(torch.cat([proj[:, :2], depth], 1)), pts)
