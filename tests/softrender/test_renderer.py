"""MeshRenderer: per-call camera overrides reach both stages; gradients reach the camera."""

from __future__ import annotations

import pytest
import torch
from diffmesh.meshcore import Meshes, TexturesVertex
from diffmesh.meshio import ico_sphere
from diffmesh.softrender import (
    BlendParams,
    FoVPerspectiveCameras,
    Materials,
    MeshRasterizer,
    MeshRenderer,
    PointLights,
    RasterizationSettings,
    SoftPhongShader,
    SoftSilhouetteShader,
    look_at_view_transform,
)

F64 = torch.float64


def _textured_sphere(level: int, dtype: torch.dtype = torch.float32) -> Meshes:
    sphere = ico_sphere(level)
    verts = sphere.verts_packed().to(dtype)
    colors = (verts + 1) / 2  # a colour gradient, distinct per vertex
    return Meshes([verts], [sphere.faces_packed()], textures=TexturesVertex([colors]))


def _two_cameras() -> FoVPerspectiveCameras:
    """A batch of two cameras at different distances, elevations and azimuths."""
    R, T = look_at_view_transform(
        torch.tensor([2.7, 2.4]), torch.tensor([10.0, -25.0]), torch.tensor([20.0, 110.0])
    )
    return FoVPerspectiveCameras(R=R, T=T)


def _silhouette_renderer(cameras: FoVPerspectiveCameras) -> MeshRenderer:
    settings = RasterizationSettings(image_size=16, blur_radius=2e-3, faces_per_pixel=4)
    return MeshRenderer(MeshRasterizer(cameras, settings), SoftSilhouetteShader(BlendParams(sigma=1e-3)))


def _phong_renderer(
    cameras: FoVPerspectiveCameras, shader_cameras: FoVPerspectiveCameras | None
) -> MeshRenderer:
    settings = RasterizationSettings(image_size=16, blur_radius=2e-3, faces_per_pixel=4)
    # a point light and a broad specular lobe (shininess 8): the shading depends on the camera position
    shader = SoftPhongShader(
        cameras=shader_cameras,
        lights=PointLights(location=[[0.0, 2.0, 3.0]]),
        materials=Materials(shininess=8.0),
        blend_params=BlendParams(sigma=1e-3, gamma=1e-2, background_color=(0.2, 0.3, 0.4)),
    )
    return MeshRenderer(MeshRasterizer(cameras, settings), shader)


def test_silhouette_cameras_override():
    """renderer(meshes, cameras=B) is the render of a renderer built with B."""
    meshes = _textured_sphere(1)
    cams = _two_cameras()
    cam_a, cam_b = cams[0], cams[1]
    image = _silhouette_renderer(cam_a)(meshes, cameras=cam_b)
    assert torch.equal(image, _silhouette_renderer(cam_b)(meshes))
    original = _silhouette_renderer(cam_a)(meshes)
    assert (image[..., 3] - original[..., 3]).abs().max() > 0.5  # the override changed the image


@pytest.mark.parametrize("shader_has_cameras", [True, False])
def test_soft_phong_cameras_override_reaches_rasterizer_and_shader(shader_has_cameras):
    """The override replaces the cameras of both stages (the PyTorch3D fitting tutorial's call)."""
    meshes = _textured_sphere(1)
    cams = _two_cameras()
    cam_a, cam_b = cams[0], cams[1]
    renderer = _phong_renderer(cam_a, cam_a if shader_has_cameras else None)
    image = renderer(meshes, cameras=cam_b)
    expected = _phong_renderer(cam_b, cam_b)(meshes)
    assert torch.equal(image, expected)
    assert (image - renderer(meshes)).abs().max() > 0.1  # the override changed the image
    # Either stage left with camera A gives another image: the equality above checks both.
    raster_a, shader_a = _phong_renderer(cam_a, cam_b), _phong_renderer(cam_b, cam_a)
    assert (raster_a(meshes) - expected).abs().max() > 0.1
    assert (shader_a(meshes) - expected).abs().max() > 0.05


_SIGMA = 2e-3
# blur where the sigmoid is 1e-4: faces enter the pair list with (almost) no jump; K = 20
# keeps every face of ico_sphere(0), so no face is dropped when the depth order changes
_GRAD_SETTINGS = RasterizationSettings(image_size=8, blur_radius=9.2 * _SIGMA, faces_per_pixel=20)


def _camera_leaves() -> tuple[torch.Tensor, torch.Tensor]:
    """R (1, 3, 3) and T (1, 3) float64 leaves of a camera looking at the sphere off-axis."""
    R, T = look_at_view_transform(2.7, 15.0, 25.0)
    return R.to(F64).requires_grad_(True), T.to(F64).requires_grad_(True)


def _render_silhouette(R: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
    cameras = FoVPerspectiveCameras(R=R, T=T)
    shader = SoftSilhouetteShader(BlendParams(sigma=_SIGMA))
    return MeshRenderer(MeshRasterizer(cameras, _GRAD_SETTINGS), shader)(_textured_sphere(0, F64))[..., 3]


def _render_phong(R: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
    cameras = FoVPerspectiveCameras(R=R, T=T)
    shader = SoftPhongShader(
        cameras=cameras,
        lights=PointLights(location=[[0.0, 2.0, 3.0]]).to(F64),
        materials=Materials(shininess=8.0).to(F64),
        blend_params=BlendParams(sigma=_SIGMA, gamma=5e-2, background_color=(0.2, 0.3, 0.4)),
    )
    return MeshRenderer(MeshRasterizer(cameras, _GRAD_SETTINGS), shader)(_textured_sphere(0, F64))


@pytest.mark.parametrize("render", [_render_silhouette, _render_phong], ids=["silhouette", "phong"])
def test_gradcheck_camera_R_and_T(render):
    """float64 gradcheck of a whole render w.r.t. the 9 entries of R and the 3 of T."""
    R, T = _camera_leaves()
    assert torch.autograd.gradcheck(render, (R, T), eps=1e-6, atol=1e-6, rtol=1e-4, fast_mode=True)


@pytest.mark.parametrize("render", [_render_silhouette, _render_phong], ids=["silhouette", "phong"])
def test_camera_gradients_finite_and_nonzero(render):
    R, T = _camera_leaves()
    image = render(R, T)
    # a ramp, not a plain sum: no cancellation between symmetric pixels
    ramp = torch.linspace(0.5, 1.5, image.numel(), dtype=F64).view_as(image)
    (image * ramp).sum().backward()
    for grad in (R.grad, T.grad):
        assert bool(torch.isfinite(grad).all())
        assert bool((grad != 0).all())
