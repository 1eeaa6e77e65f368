"""Shader tests: the pair-based shaders against the dense PyTorch3D formulas, image properties."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from diffmesh.meshcore import Meshes, TexturesVertex
from diffmesh.meshio import ico_sphere
from diffmesh.softrender import (
    BlendParams,
    FoVPerspectiveCameras,
    Fragments,
    HardFlatShader,
    HardPhongShader,
    Materials,
    MeshRasterizer,
    MeshRenderer,
    PointLights,
    RasterizationSettings,
    SoftGouraudShader,
    SoftPhongShader,
    SoftSilhouetteShader,
    flat_shading,
    gouraud_shading,
    hard_rgb_blend,
    interpolate_face_attributes,
    look_at_view_transform,
    phong_shading,
    sigmoid_alpha_blend,
    softmax_rgb_blend,
)


def _textured_sphere(level: int = 2, n: int = 1) -> Meshes:
    sphere = ico_sphere(level)
    verts = sphere.verts_packed()
    colors = (verts + 1) / 2  # a colour gradient, distinct per vertex
    mesh = Meshes([verts], [sphere.faces_packed()], textures=TexturesVertex([colors]))
    return mesh.extend(n) if n > 1 else mesh


def _setup(n: int = 1, size: int = 24, k: int = 6, blur: float = 2e-3):
    R, T = look_at_view_transform(torch.tensor([2.7] * n), torch.tensor([20.0, -30.0][:n] * 1),
                                  torch.tensor([35.0, 150.0][:n]))
    cameras = FoVPerspectiveCameras(R=R, T=T)
    settings = RasterizationSettings(image_size=size, blur_radius=blur, faces_per_pixel=k, perspective_correct=False)
    return cameras, MeshRasterizer(cameras, settings)


def _dense_texels(meshes: Meshes, fragments) -> torch.Tensor:
    return meshes.textures.sample_at(fragments.pix_to_face, fragments.bary_coords, meshes.faces_packed())


@pytest.mark.parametrize("n", [1, 2])
def test_soft_phong_matches_dense_formula(n):
    meshes = _textured_sphere(2, n)
    cameras, rasterizer = _setup(n)
    lights = PointLights(location=[[0.0, 1.0, -3.0]] * n)
    materials = Materials(shininess=32.0)
    blend = BlendParams(sigma=1e-3, gamma=1e-2, background_color=(0.2, 0.3, 0.4))
    fragments = rasterizer(meshes)
    image = SoftPhongShader(cameras=cameras, lights=lights, materials=materials, blend_params=blend)(
        fragments, meshes)
    colors = phong_shading(meshes, fragments, lights, cameras, materials, _dense_texels(meshes, fragments))
    expected = softmax_rgb_blend(colors, fragments, blend, znear=cameras.znear, zfar=cameras.zfar)
    torch.testing.assert_close(image, expected, atol=1e-5, rtol=1e-5)


def test_hard_shaders_match_dense_formula():
    meshes = _textured_sphere(2)
    cameras, rasterizer = _setup(k=1, blur=0.0)
    lights = PointLights()
    materials = Materials()
    blend = BlendParams(background_color=(0.0, 0.5, 1.0))
    fragments = rasterizer(meshes)
    texels = _dense_texels(meshes, fragments)
    for shader, shade in ((HardPhongShader, phong_shading), (HardFlatShader, flat_shading)):
        image = shader(cameras=cameras, blend_params=blend)(fragments, meshes)
        colors = shade(meshes, fragments, lights, cameras, materials, texels)
        torch.testing.assert_close(image, hard_rgb_blend(colors, fragments, blend), atol=1e-6, rtol=1e-6)


def test_gouraud_and_silhouette_match_dense_formula():
    meshes = _textured_sphere(1)
    cameras, rasterizer = _setup()
    fragments = rasterizer(meshes)
    blend = BlendParams(sigma=1e-3, gamma=1e-2)
    image = SoftGouraudShader(cameras=cameras, blend_params=blend)(fragments, meshes)
    colors = gouraud_shading(meshes, fragments, PointLights(), cameras, Materials())
    expected = softmax_rgb_blend(colors, fragments, blend, znear=cameras.znear, zfar=cameras.zfar)
    torch.testing.assert_close(image, expected, atol=1e-5, rtol=1e-5)
    sil = SoftSilhouetteShader(blend)(fragments, meshes)
    ones = torch.ones(*fragments.pix_to_face.shape, 3)
    torch.testing.assert_close(sil, sigmoid_alpha_blend(ones, fragments, blend), atol=1e-6, rtol=1e-5)


def test_interpolate_face_attributes_reference():
    g = torch.Generator().manual_seed(0)
    p2f = torch.randint(-1, 4, (2, 3, 3, 2), generator=g)
    bary = torch.rand(2, 3, 3, 2, 3, generator=g, dtype=torch.float64, requires_grad=True)
    attrs = torch.rand(4, 3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    out = interpolate_face_attributes(p2f, bary, attrs)
    expected = torch.zeros(2, 3, 3, 2, 5, dtype=torch.float64)
    for pos in itertools.product(*(range(s) for s in p2f.shape)):
        f = int(p2f[pos])
        if f >= 0:
            expected[pos] = sum(bary[pos][i] * attrs[f, i] for i in range(3))
    torch.testing.assert_close(out, expected)
    assert torch.autograd.gradcheck(lambda b, a: interpolate_face_attributes(p2f, b, a), (bary, attrs))


def test_silhouette_gradcheck():
    """float64 gradcheck of MeshRasterizer + SoftSilhouetteShader w.r.t. vertex positions."""
    sphere = ico_sphere(0)
    verts = (sphere.verts_packed().double() * 0.9 + 0.013).requires_grad_(True)
    faces = sphere.faces_packed()
    R, T = look_at_view_transform(2.7, 10.0, 20.0)
    cameras = FoVPerspectiveCameras(R=R.double(), T=T.double())
    settings = RasterizationSettings(image_size=8, blur_radius=0.02, faces_per_pixel=4)
    renderer = MeshRenderer(MeshRasterizer(cameras, settings), SoftSilhouetteShader(BlendParams(sigma=5e-3)))

    def render(v: torch.Tensor) -> torch.Tensor:
        return renderer(Meshes([v], [faces]))[..., 3]

    assert torch.autograd.gradcheck(render, (verts,), eps=1e-7, atol=1e-6, rtol=1e-4, fast_mode=True)


def test_sphere_image_properties():
    """ico_sphere(2) with SoftPhongShader at 64 px: what a person would check by eye."""
    size = 64
    sphere = ico_sphere(2)
    verts = sphere.verts_packed()
    # +X world red, the rest blue: the image itself shows where +X lands
    red, blue = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 1.0])
    colors = torch.where(verts[:, :1] > 0, red, blue)
    meshes = Meshes([verts], [sphere.faces_packed()], textures=TexturesVertex([colors]))
    cameras = FoVPerspectiveCameras(T=[[0.0, 0.0, 2.7]])  # default R: world axes = view axes
    sigma = 1e-4
    settings = RasterizationSettings(image_size=size, blur_radius=math.log(1 / 1e-4 - 1) * sigma, faces_per_pixel=8)
    lights = PointLights(location=[[2.0, 0.0, -2.0]])  # camera side, +X world: the image's left
    background = (0.2, 0.3, 0.4)
    blend = BlendParams(sigma=sigma, gamma=sigma, background_color=background)
    rasterizer = MeshRasterizer(cameras, settings)
    fragments = rasterizer(meshes)
    image = SoftPhongShader(cameras=cameras, lights=lights, blend_params=blend)(fragments, meshes)[0]
    torch.testing.assert_close(MeshRenderer(rasterizer, SoftPhongShader(cameras=cameras, lights=lights,
                                                                        blend_params=blend))(meshes)[0], image)
    alpha = image[..., 3]
    # background colour, exactly, wherever no face reaches (blur radius included)
    uncovered = fragments.pix_to_face[0, ..., 0] < 0
    assert 1000 < int(uncovered.sum()) < size * size - 1000
    assert bool((image[..., :3][uncovered] == torch.tensor(background)).all())
    assert bool((alpha[uncovered] == 0).all())
    # silhouette: a disc round the projected centre; radius from the projection of a unit
    # sphere at distance 2.7, fov 60
    inside = alpha > 0.5
    expected_r = (1 / math.sqrt(2.7**2 - 1)) / math.tan(math.radians(30)) * size / 2
    centre = cameras.transform_points(torch.zeros(1, 3))[0]  # NDC; +X is the image's left
    centre_col = (1 - float(centre[0])) * size / 2 - 0.5  # pixel (row, col) has its centre at (row, col)
    centre_row = (1 - float(centre[1])) * size / 2 - 0.5
    assert abs(centre_col - (size - 1) / 2) < 1e-4 and abs(centre_row - (size - 1) / 2) < 1e-4
    rows = torch.arange(size, dtype=torch.float64)[:, None]
    cols = torch.arange(size, dtype=torch.float64)[None, :]
    radius = ((rows - centre_row) ** 2 + (cols - centre_col) ** 2).sqrt()
    assert float(radius[inside].max()) < expected_r + 1
    assert bool(inside[radius < expected_r - 1].all())
    area_r = math.sqrt(float(inside.sum()) / math.pi)
    assert abs(area_r - expected_r) < 1.0
    # +X world is the image's left: the red (x > 0) half of the sphere is on the left
    reddish = inside & (image[..., 0] > image[..., 2])
    bluish = inside & (image[..., 2] > image[..., 0])
    assert int(reddish.sum()) > 400 and int(bluish.sum()) > 400
    assert float(cols.expand(size, size)[reddish].mean()) < centre_col - 5
    assert float(cols.expand(size, size)[bluish].mean()) > centre_col + 5
    # brightest pixel on the light's side: the left half of the image (+X world is left)
    brightness = image[..., :3].sum(-1)
    brightest = int(brightness.flatten().argmax()) % size
    assert brightest < size // 2
    # a vertex with +X world lands on the left half
    vertex = torch.tensor([[0.9, 0.0, -0.3]])
    ndc = cameras.transform_points(vertex)
    assert float(ndc[..., 0]) > 0  # +X NDC is the image's left (pixel column 0)
    hard = MeshRasterizer(cameras, RasterizationSettings(image_size=size))(meshes)
    col = round((1 - float(ndc[..., 0])) * size / 2 - 0.5)
    row = round((1 - float(ndc[..., 1])) * size / 2 - 0.5)
    assert col < size // 2 and int(hard.pix_to_face[0, row, col, 0]) >= 0


def test_empty_and_degenerate_no_nan():
    """A batch with an empty mesh and a zero-area face renders finite images and gradients."""
    sphere = ico_sphere(1)
    verts = sphere.verts_packed().clone().requires_grad_(True)
    faces = torch.cat((sphere.faces_packed(), torch.tensor([[0, 0, 1]])))
    colors = torch.full((verts.shape[0], 3), 0.5, requires_grad=True)
    cameras, rasterizer = _setup(n=1)
    for shader in (SoftPhongShader(cameras=cameras), SoftSilhouetteShader(), HardPhongShader(cameras=cameras)):
        meshes = Meshes([verts, torch.zeros(0, 3)], [faces, torch.zeros(0, 3, dtype=torch.long)],
                        textures=TexturesVertex([colors, torch.zeros(0, 3)]))  # fresh: caches hold graphs
        image = MeshRenderer(rasterizer, shader)(meshes)
        assert image.shape == (2, 24, 24, 4)
        loss = image.sum()
        if loss.requires_grad:
            loss.backward()
        assert bool(torch.isfinite(image).all())
        assert bool((image[1, ..., 3] == 0).all())
    assert bool(torch.isfinite(verts.grad).all()) and bool(torch.isfinite(colors.grad).all())


def test_missing_cameras_and_bad_settings():
    meshes = _textured_sphere(0)
    with pytest.raises(ValueError, match="cameras"):
        MeshRasterizer(None, RasterizationSettings(image_size=8))(meshes)
    with pytest.raises(ValueError, match="faces_per_pixel"):
        RasterizationSettings(faces_per_pixel=0)
    with pytest.raises(ValueError, match="z_clip_value"):
        RasterizationSettings(z_clip_value=0.0)  # a clipping depth must be > 0
    with pytest.raises(ValueError, match="sigma"):
        BlendParams(sigma=0.0)


def test_dense_fragments_and_overrides():
    """Shaders accept dense Fragments (no pairs) and per-call overrides; Fragments unpack/detach."""
    meshes = _textured_sphere(1)
    cameras, rasterizer = _setup()
    fragments = rasterizer(meshes)
    p2f, zbuf, bary, dists = fragments
    dense = Fragments(p2f, zbuf, bary, dists)
    assert dense.pairs is None and fragments.pairs is not None
    blend = BlendParams(sigma=1e-3, gamma=1e-2)
    shader = SoftPhongShader(blend_params=blend)
    with pytest.raises(ValueError, match="cameras"):
        shader(fragments, meshes)
    image = shader(fragments, meshes, cameras=cameras)
    torch.testing.assert_close(shader(dense, meshes, cameras=cameras), image, atol=1e-6, rtol=1e-5)
    lights = PointLights(location=[[0.0, 0.0, -3.0]])
    renderer = MeshRenderer(rasterizer, SoftPhongShader(cameras=cameras, blend_params=blend))
    torch.testing.assert_close(renderer(meshes, lights=lights),
                               SoftPhongShader(cameras=cameras, lights=lights, blend_params=blend)(fragments, meshes))
    detached = fragments.detach()
    assert not detached.zbuf.requires_grad and torch.equal(detached.pix_to_face, p2f)
