"""PyTorch3D parity of the cameras: OrthographicCameras, deprecated names, joins, overrides."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from diffmesh.softrender import (
    FoVOrthographicCameras,
    FoVPerspectiveCameras,
    OpenGLOrthographicCameras,
    OpenGLPerspectiveCameras,
    OrthographicCameras,
    PerspectiveCameras,
    SfMOrthographicCameras,
    SfMPerspectiveCameras,
    get_world_to_view_transform,
    join_cameras_as_batch,
    look_at_rotation,
    look_at_view_transform,
)

F64 = torch.float64


def _view(points: list[list[float]], R: list[list[float]], T: list[float]) -> list[list[float]]:
    return [[sum(p[k] * R[k][j] for k in range(3)) + T[j] for j in range(3)] for p in points]


def _apply_column_matrix(points: list[list[float]], K: list[list[float]]) -> list[list[float]]:
    """Column-vector K @ [x, y, z, 1], then divide by w (plain Python)."""
    out = []
    for p in points:
        h = [sum(K[i][k] * [*p, 1.0][k] for k in range(4)) for i in range(4)]
        out.append([h[0] / h[3], h[1] / h[3], h[2] / h[3]])
    return out


def _fov_K(znear: float, zfar: float, fov_deg: float, aspect: float) -> list[list[float]]:
    """PyTorch3D docs: K = [[s1, 0, 0, 0], [0, s2, 0, 0], [0, 0, f1, f2], [0, 0, 1, 0]]."""
    t = math.tan(math.radians(fov_deg) / 2)
    f1, f2 = zfar / (zfar - znear), -(zfar * znear) / (zfar - znear)
    return [[1 / (t * aspect), 0, 0, 0], [0, 1 / t, 0, 0], [0, 0, f1, f2], [0, 0, 1, 0]]


def _ortho_K(fx: float, fy: float, px: float, py: float) -> list[list[float]]:
    """PyTorch3D docs: K = [[fx, 0, 0, px], [0, fy, 0, py], [0, 0, 1, 0], [0, 0, 0, 1]]."""
    return [[fx, 0, 0, px], [0, fy, 0, py], [0, 0, 1, 0], [0, 0, 0, 1]]


@pytest.fixture
def scene() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    R, T = look_at_view_transform(3.0, 20.0, 35.0)
    pts = torch.rand(5, 3, generator=torch.Generator().manual_seed(0)) - 0.5
    return R.to(F64), T.to(F64), pts.to(F64)


# ------------------------------------------------------------ Orthographic
def test_orthographic_ndc_matches_reference(scene):
    R, T, pts = scene
    cams = OrthographicCameras(focal_length=((2.0, 3.0),), principal_point=((0.1, -0.2),), R=R, T=T)
    view = _view(pts.tolist(), R[0].tolist(), T[0].tolist())
    ref = _apply_column_matrix(view, _ortho_K(2.0, 3.0, 0.1, -0.2))
    torch.testing.assert_close(cams.transform_points(pts), torch.tensor(ref, dtype=F64))
    torch.testing.assert_close(cams.transform_points_ndc(pts), torch.tensor(ref, dtype=F64))
    assert not cams.is_perspective() and cams.in_ndc()
    torch.testing.assert_close(cams.get_principal_point(), torch.tensor([[0.1, -0.2]], dtype=F64))


def test_orthographic_screen_space_matches_pixel_reference():
    f, p = (40.0, 30.0), (70.0, 20.0)
    cams = OrthographicCameras(
        focal_length=(f,), principal_point=(p,), in_ndc=False, image_size=((64, 128),)
    )
    pts = [[0.0, 0.0, 3.0], [0.5, -0.25, 2.0], [-1.0, 0.3, 5.0]]
    screen = cams.transform_points_screen(torch.tensor(pts, dtype=F64))
    # view +X is image left, +Y image up: u = px - fx X, v = py - fy Y; z passes through
    ref = [[p[0] - f[0] * x, p[1] - f[1] * y, z] for x, y, z in pts]
    torch.testing.assert_close(screen, torch.tensor(ref, dtype=F64))


def test_orthographic_unproject_round_trip_and_from_ndc(scene):
    R, T, pts = scene
    for cams in (
        OrthographicCameras(focal_length=0.7, principal_point=((0.1, 0.0),), R=R, T=T),
        OrthographicCameras(
            focal_length=30.0,
            principal_point=((40.0, 20.0),),
            R=R,
            T=T,
            in_ndc=False,
            image_size=(48, 64),
        ),
    ):
        proj = cams.transform_points(pts)
        depth = cams.get_world_to_view_transform().transform_points(pts)[..., 2:]
        torch.testing.assert_close(
            cams.unproject_points(torch.cat([proj[..., :2], depth], -1)), pts
        )
        ndc = cams.transform_points_ndc(pts)
        xy_depth = torch.cat([ndc[..., :2], depth], -1)
        torch.testing.assert_close(cams.unproject_points(xy_depth, True, True), pts)
        view = cams.unproject_points(xy_depth, world_coordinates=False, from_ndc=True)
        torch.testing.assert_close(view[..., 2:], depth)
    persp = PerspectiveCameras(
        focal_length=50.0,
        principal_point=((30.0, 20.0),),
        R=R,
        T=T,
        in_ndc=False,
        image_size=(48, 64),
    )
    ndc = persp.transform_points_ndc(pts)
    depth = persp.get_world_to_view_transform().transform_points(pts)[..., 2:]
    torch.testing.assert_close(
        persp.unproject_points(torch.cat([ndc[..., :2], depth], -1), from_ndc=True), pts
    )


def test_orthographic_gradcheck_and_degenerate():
    R, T = look_at_view_transform(2.0, 10.0, 20.0)
    focal = torch.tensor([[1.5, 0.5]], dtype=F64, requires_grad=True)
    pts = torch.rand(4, 3, generator=torch.Generator().manual_seed(1), dtype=F64)
    pts.requires_grad_(True)

    def fn(f: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        cams = OrthographicCameras(focal_length=f, R=R.to(F64), T=T.to(F64))
        return cams.transform_points_screen(p, image_size=(16, 24))

    assert torch.autograd.gradcheck(fn, (focal, pts))
    cams = OrthographicCameras(focal_length=focal)
    assert cams.transform_points(torch.zeros(0, 3, dtype=F64)).shape == (0, 3)
    dup = torch.zeros(3, 3, dtype=F64, requires_grad=True)
    out = cams.transform_points(dup)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(dup.grad).all()
    with pytest.raises(ValueError, match="image_size"):
        OrthographicCameras(in_ndc=False)
    with pytest.raises(ValueError, match="focal_length"):
        OrthographicCameras(focal_length=0.0)


# ------------------------------------------------------------ deprecated names
def test_deprecated_names_warn_and_map_arguments(scene):
    R, T, pts = scene
    with pytest.deprecated_call(match="use FoVPerspectiveCameras"):
        old = OpenGLPerspectiveCameras(znear=0.5, zfar=9.0, aspect_ratio=1.2, fov=40.0, R=R, T=T)
    new = FoVPerspectiveCameras(znear=0.5, zfar=9.0, aspect_ratio=1.2, fov=40.0, R=R, T=T)
    assert type(old) is FoVPerspectiveCameras
    torch.testing.assert_close(old.transform_points(pts), new.transform_points(pts))
    with pytest.deprecated_call(match="use FoVOrthographicCameras"):
        old = OpenGLOrthographicCameras(top=2.0, bottom=-1.0, left=-3.0, right=1.0, R=R, T=T)
    new = FoVOrthographicCameras(max_y=2.0, min_y=-1.0, max_x=1.0, min_x=-3.0, R=R, T=T)
    torch.testing.assert_close(old.transform_points(pts), new.transform_points(pts))
    with pytest.deprecated_call(match="use PerspectiveCameras"):
        old = SfMPerspectiveCameras(focal_length=2.0, principal_point=((0.1, 0.2),), R=R, T=T)
    assert type(old) is PerspectiveCameras and old.in_ndc()
    torch.testing.assert_close(
        old.transform_points(pts),
        PerspectiveCameras(
            focal_length=2.0, principal_point=((0.1, 0.2),), R=R, T=T
        ).transform_points(pts),
    )
    with pytest.deprecated_call(match="use OrthographicCameras"):
        old = SfMOrthographicCameras(focal_length=2.0, R=R, T=T)
    assert type(old) is OrthographicCameras


def test_deprecated_warning_shown_once_per_calling_line():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for _ in range(3):
            OpenGLPerspectiveCameras()
    assert len(caught) == 1 and issubclass(caught[0].category, DeprecationWarning)
    assert caught[0].filename == __file__  # attributed to the caller's line


# -------------------------------------------------------------------- join
def test_join_cameras_as_batch_matches_individual(scene):
    R, T, pts = scene
    a = FoVPerspectiveCameras(fov=torch.tensor([30.0, 50.0], dtype=F64), R=R, T=T)
    b = FoVPerspectiveCameras(fov=70.0, znear=0.2, R=R, T=T)
    joined = join_cameras_as_batch([a, b])
    assert type(joined) is FoVPerspectiveCameras and len(joined) == 3
    torch.testing.assert_close(joined.fov, torch.tensor([30.0, 50.0, 70.0], dtype=F64))
    out = joined.transform_points(pts)
    torch.testing.assert_close(out[:2], a.transform_points(pts))
    torch.testing.assert_close(out[2], b.transform_points(pts))
    torch.testing.assert_close(joined[2].transform_points(pts), b.transform_points(pts))
    focal = torch.tensor([2.0], requires_grad=True)
    screen = join_cameras_as_batch(
        [
            PerspectiveCameras(focal_length=focal, in_ndc=False, image_size=(8, 8)),
            PerspectiveCameras(focal_length=3.0, in_ndc=False, image_size=(16, 8)),
        ]
    )
    assert not screen.in_ndc() and screen.image_size.tolist() == [[8, 8], [16, 8]]
    screen.focal_length.sum().backward()
    assert focal.grad is not None


def test_join_cameras_errors():
    with pytest.raises(ValueError, match="at least one"):
        join_cameras_as_batch([])
    with pytest.raises(ValueError, match="FoVOrthographicCameras"):
        join_cameras_as_batch([FoVPerspectiveCameras(), FoVOrthographicCameras()])
    with pytest.raises(TypeError, match="not a camera"):
        join_cameras_as_batch([FoVPerspectiveCameras(), torch.eye(3)])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="degrees"):
        join_cameras_as_batch(
            [FoVPerspectiveCameras(), FoVPerspectiveCameras(fov=1.0, degrees=False)]
        )
    with pytest.raises(ValueError, match="in_ndc"):
        join_cameras_as_batch(
            [PerspectiveCameras(), PerspectiveCameras(in_ndc=False, image_size=(4, 4))]
        )
    with pytest.raises(ValueError, match="K is given"):
        join_cameras_as_batch([FoVPerspectiveCameras(K=torch.eye(4)), FoVPerspectiveCameras()])


# --------------------------------------------------------------- overrides
def test_fov_projection_overrides_match_reference(scene):
    R, T, pts = scene
    cams = FoVPerspectiveCameras(R=R, T=T)
    transform = cams.get_projection_transform(znear=0.5, zfar=20.0, fov=45.0, aspect_ratio=1.5)
    K = torch.tensor(_fov_K(0.5, 20.0, 45.0, 1.5), dtype=F64)
    torch.testing.assert_close(transform.get_matrix()[0], K.T)
    out = cams.transform_points(pts, znear=0.5, zfar=20.0, fov=45.0, aspect_ratio=1.5)
    view = _view(pts.tolist(), R[0].tolist(), T[0].tolist())
    torch.testing.assert_close(out, torch.tensor(_apply_column_matrix(view, K.tolist()), dtype=F64))
    # radians override; the camera itself is unchanged (PyTorch3D would store R and T)
    rad = cams.get_projection_transform(
        fov=math.radians(45.0), degrees=False, znear=0.5, zfar=20.0, aspect_ratio=1.5
    )
    torch.testing.assert_close(rad.get_matrix(), transform.get_matrix())
    assert float(cams.fov) == 60.0


def test_extrinsic_overrides_everywhere(scene):
    R, T, pts = scene
    base = FoVPerspectiveCameras(fov=50.0).to(F64)
    moved = FoVPerspectiveCameras(fov=50.0, R=R, T=T)
    torch.testing.assert_close(base.transform_points(pts, R=R, T=T), moved.transform_points(pts))
    torch.testing.assert_close(
        base.transform_points_screen(pts, R=R, T=T, image_size=(20, 30)),
        moved.transform_points_screen(pts, image_size=(20, 30)),
    )
    torch.testing.assert_close(base.get_camera_center(R=R, T=T), moved.get_camera_center())
    torch.testing.assert_close(
        base.get_full_projection_transform(R=R[0], T=T[0]).get_matrix(),
        moved.get_full_projection_transform().get_matrix(),
    )
    ndc = moved.transform_points(pts)
    depth = moved.get_world_to_view_transform().transform_points(pts)[..., 2:]
    xy_depth = torch.cat([ndc[..., :2], depth], -1)
    torch.testing.assert_close(base.unproject_points(xy_depth, R=R, T=T), pts)
    torch.testing.assert_close(base.R, torch.eye(3, dtype=F64)[None])  # not overwritten


def test_override_batches_broadcast_and_gradients(scene):
    R, T, pts = scene
    fov = torch.tensor([30.0, 45.0, 60.0, 75.0], dtype=F64, requires_grad=True)
    cams = FoVPerspectiveCameras(R=R, T=T)
    out = cams.transform_points(pts, fov=fov)
    assert out.shape == (4, 5, 3)
    for i in range(4):
        single = FoVPerspectiveCameras(fov=float(fov[i].detach()), R=R, T=T).transform_points(pts)
        torch.testing.assert_close(out[i], single)
    out.sum().backward()
    assert torch.isfinite(fov.grad).all() and (fov.grad != 0).all()
    persp = PerspectiveCameras(R=R, T=T)
    torch.testing.assert_close(
        persp.transform_points(pts, focal_length=2.0, principal_point=(0.1, 0.2)),
        PerspectiveCameras(
            focal_length=2.0, principal_point=((0.1, 0.2),), R=R, T=T
        ).transform_points(pts),
    )
    ortho = FoVOrthographicCameras(R=R, T=T)
    torch.testing.assert_close(
        ortho.transform_points(pts, max_x=2.0, scale_xyz=(1.0, 2.0, 1.0)),
        FoVOrthographicCameras(max_x=2.0, scale_xyz=((1.0, 2.0, 1.0),), R=R, T=T).transform_points(
            pts
        ),
    )
    screen = OrthographicCameras(in_ndc=False, image_size=(32, 32), R=R, T=T)
    torch.testing.assert_close(
        screen.transform_points_ndc(pts, principal_point=(10.0, 12.0)),
        OrthographicCameras(
            principal_point=((10.0, 12.0),), in_ndc=False, image_size=(32, 32), R=R, T=T
        ).transform_points_ndc(pts),
    )


def test_override_errors():
    cams = FoVPerspectiveCameras()
    with pytest.raises(TypeError, match="fovv"):
        cams.transform_points(torch.zeros(1, 3), fovv=30.0)
    with pytest.raises(TypeError, match="focal_length"):
        cams.get_projection_transform(focal_length=2.0)
    with pytest.raises(ValueError, match="fov cannot be overridden"):
        FoVPerspectiveCameras(K=torch.eye(4)).get_projection_transform(fov=30.0)
    with pytest.raises(ValueError, match="focal_length"):
        PerspectiveCameras().get_projection_transform(K=torch.eye(4), focal_length=2.0)
    with pytest.raises(ValueError, match="fov must have shape"):
        cams.get_projection_transform(fov=torch.ones(2, 2))
    with pytest.raises(ValueError, match="batch size"):
        FoVPerspectiveCameras(fov=torch.ones(3) * 40).get_projection_transform(znear=torch.ones(2))
    with pytest.raises(ValueError, match="R must have shape"):
        cams.get_world_to_view_transform(R=torch.eye(4))
    torch.testing.assert_close(
        cams.get_projection_transform(K=2 * torch.eye(4)).get_matrix(), 2 * torch.eye(4)[None]
    )


# -------------------------------------------------------- world to view
def test_get_world_to_view_transform_function(scene):
    R, T, pts = scene
    m = get_world_to_view_transform(R=R, T=T).get_matrix()
    assert m.shape == (1, 4, 4)
    torch.testing.assert_close(m[0, :3, :3], R[0])
    torch.testing.assert_close(m[0, 3, :3], T[0])
    torch.testing.assert_close(m[0, :, 3], torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=F64))
    torch.testing.assert_close(get_world_to_view_transform().get_matrix(), torch.eye(4)[None])
    view = torch.tensor(_view(pts.tolist(), R[0].tolist(), T[0].tolist()), dtype=F64)
    torch.testing.assert_close(get_world_to_view_transform(R, T).transform_points(pts), view)
    with pytest.raises(ValueError, match="batch size"):
        get_world_to_view_transform(R.expand(2, 3, 3), T.expand(3, 3))
    with pytest.raises(ValueError, match="T must have shape"):
        get_world_to_view_transform(R, T[0])


def test_camera_position_optimisation_pattern():
    """PyTorch3D's camera-position tutorial: R, T from a learnt position, passed per call."""
    position = torch.tensor([3.0, 6.9, 2.5], requires_grad=True)
    cams = FoVPerspectiveCameras()
    pts = torch.rand(6, 3, generator=torch.Generator().manual_seed(2)) - 0.5
    optimizer = torch.optim.Adam([position], lr=0.05)
    for _ in range(3):
        optimizer.zero_grad()
        R = look_at_rotation(position[None, :])
        T = -torch.bmm(R.transpose(1, 2), position[None, :, None])[:, :, 0]
        center = cams.get_camera_center(R=R, T=T)[0]
        torch.testing.assert_close(center.detach(), position.detach(), atol=1e-5, rtol=0)
        ndc = cams.transform_points(pts, R=R, T=T)
        loss = (ndc[..., :2] ** 2).mean()  # pull the points to the image centre
        loss.backward()
        assert torch.isfinite(position.grad).all() and position.grad.abs().sum() > 0
        optimizer.step()
    torch.testing.assert_close(cams.R, torch.eye(3)[None])  # the camera is unchanged
