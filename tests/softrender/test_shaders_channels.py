"""HardGouraudShader, and shaders on colours of C channels (TexturesVertex features of size C)."""

from __future__ import annotations

import itertools

import pytest
import torch
from diffmesh.meshcore import Meshes, TexturesVertex
from diffmesh.meshio import ico_sphere
from diffmesh.softrender import (
    AmbientLights,
    BlendParams,
    FoVPerspectiveCameras,
    HardFlatShader,
    HardGouraudShader,
    HardPhongShader,
    MeshRasterizer,
    MeshRenderer,
    PointLights,
    RasterizationSettings,
    SoftGouraudShader,
    SoftPhongShader,
    gouraud_shading,
    hard_rgb_blend,
    look_at_view_transform,
    softmax_rgb_blend,
)

UNLIT = AmbientLights(ambient_color=((1.0, 1.0, 1.0),))  # lit colour = texture colour
# Colours in [0, 1] computed along two float32 paths (the shader's pairs and a dense
# reference): a few roundings per term of a short sum, bounded by multiples of eps.
COLOUR_TOL = {"rtol": 64 * torch.finfo(torch.float32).eps, "atol": 8 * torch.finfo(torch.float32).eps}


def _mesh(features: torch.Tensor, level: int = 1) -> Meshes:
    s = ico_sphere(level)
    return Meshes([s.verts_packed()], [s.faces_packed()], textures=TexturesVertex([features]))


def _features(channels: int, level: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(channels)
    return torch.rand(ico_sphere(level).verts_packed().shape[0], channels, generator=g)


def _rasterizer(k: int = 4, blur: float = 2e-3):
    R, T = look_at_view_transform(2.7, 15.0, 30.0)
    cameras = FoVPerspectiveCameras(R=R, T=T)
    return cameras, MeshRasterizer(
        cameras, RasterizationSettings(image_size=10, blur_radius=blur, faces_per_pixel=k)
    )


def _interpolated(meshes: Meshes, fragments, features: torch.Tensor) -> torch.Tensor:
    """(N, H, W, K, C) features interpolated pixel by pixel (0 where no face)."""
    p2f, bary = fragments.pix_to_face, fragments.bary_coords
    faces = meshes.faces_packed()
    out = torch.zeros(*p2f.shape, features.shape[1])
    for pos in itertools.product(*(range(s) for s in p2f.shape)):
        f = int(p2f[pos])
        if f >= 0:
            out[pos] = sum(bary[pos][i] * features[faces[f, i]] for i in range(3))
    return out


def _hard_reference(colors: torch.Tensor, fragments, background: torch.Tensor) -> torch.Tensor:
    """Nearest face's colour, else the background; alpha = coverage; pixel by pixel."""
    p2f = fragments.pix_to_face
    n, h, w, _ = p2f.shape
    out = torch.empty(n, h, w, colors.shape[-1] + 1)  # every pixel written below
    for i, y, x in itertools.product(range(n), range(h), range(w)):
        hit = bool(p2f[i, y, x, 0] >= 0)
        out[i, y, x, :-1] = colors[i, y, x, 0] if hit else background
        out[i, y, x, -1] = float(hit)
    return out


def _soft_reference(
    colors: torch.Tensor, fragments, blend: BlendParams, znear: float, zfar: float
) -> torch.Tensor:
    """PyTorch3D's softmax_rgb_blend formula, pixel by pixel, for C channels."""
    p2f, zbuf, dists = fragments.pix_to_face, fragments.zbuf, fragments.dists
    n, h, w, k = p2f.shape
    bg = torch.as_tensor(blend.background_color, dtype=colors.dtype)
    out = torch.empty(n, h, w, colors.shape[-1] + 1)  # every pixel written below
    for i, y, x in itertools.product(range(n), range(h), range(w)):
        hit = [j for j in range(k) if p2f[i, y, x, j] >= 0]
        prob = [torch.sigmoid(-dists[i, y, x, j] / blend.sigma) for j in hit]
        z_inv = [(zfar - zbuf[i, y, x, j]) / (zfar - znear) for j in hit]
        z_max = max([*z_inv, torch.tensor(1e-10)])
        weights = [
            p * torch.exp((z - z_max) / blend.gamma) for p, z in zip(prob, z_inv, strict=True)
        ]
        delta = torch.exp((1e-10 - z_max) / blend.gamma).clamp(min=1e-10)
        num = sum((wt * colors[i, y, x, j] for wt, j in zip(weights, hit, strict=True)), delta * bg)
        out[i, y, x, :-1] = num / (sum(weights) + delta)
        out[i, y, x, -1] = 1 - torch.prod(torch.stack([1 - p for p in prob])) if prob else 0.0
    return out


@pytest.mark.parametrize("channels", [1, 3, 5])
def test_hard_gouraud_matches_reference(channels):
    features = _features(channels)
    meshes = _mesh(features)
    cameras, rasterizer = _rasterizer(k=1, blur=0.0)
    fragments = rasterizer(meshes)
    background = torch.linspace(0.1, 0.7, channels)
    blend = BlendParams(background_color=background)
    image = HardGouraudShader(cameras=cameras, lights=UNLIT, blend_params=blend)(fragments, meshes)
    assert image.shape == (1, 10, 10, channels + 1)
    expected = _hard_reference(_interpolated(meshes, fragments, features), fragments, background)
    torch.testing.assert_close(image, expected, **COLOUR_TOL)


def test_hard_gouraud_lit_matches_dense_gouraud():
    """With RGB point lights: the dense gouraud_shading + hard_rgb_blend (PyTorch3D's pipeline)."""
    meshes = _mesh(_features(3))
    cameras, rasterizer = _rasterizer(k=3)
    fragments = rasterizer(meshes)
    lights = PointLights(location=[[0.0, 1.0, -3.0]], diffuse_color=[[0.6, 0.2, 0.3]])
    blend = BlendParams(background_color=(0.0, 0.5, 1.0))
    image = HardGouraudShader(cameras=cameras, lights=lights, blend_params=blend)(fragments, meshes)
    colors = gouraud_shading(meshes, fragments, lights, cameras, HardGouraudShader().materials)
    torch.testing.assert_close(
        image, hard_rgb_blend(colors, fragments, blend), **COLOUR_TOL
    )


@pytest.mark.parametrize("channels", [1, 5])
def test_soft_shaders_blend_c_channels(channels):
    features = _features(channels)
    meshes = _mesh(features)
    cameras, rasterizer = _rasterizer(k=4)
    fragments = rasterizer(meshes)
    blend = BlendParams(sigma=1e-3, gamma=1e-2, background_color=torch.linspace(0.2, 0.9, channels))
    expected = _soft_reference(
        _interpolated(meshes, fragments, features), fragments, blend, 1.0, 100.0
    )
    for shader in (SoftGouraudShader, SoftPhongShader):
        image = shader(cameras=cameras, lights=UNLIT, blend_params=blend)(fragments, meshes)
        assert image.shape == (1, 10, 10, channels + 1)
        torch.testing.assert_close(image, expected, rtol=1e-4, atol=1e-5)
    dense = softmax_rgb_blend(_interpolated(meshes, fragments, features), fragments, blend)
    torch.testing.assert_close(dense, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "shader",
    [HardGouraudShader, SoftGouraudShader, SoftPhongShader, HardPhongShader, HardFlatShader],
)
def test_grey_lights_scale_every_channel(shader):
    """Feature channel j under grey lights = the RGB render of the texture (f_j, f_j, f_j)."""
    features = _features(5)
    cameras, rasterizer = _rasterizer(k=4)
    lights = PointLights(location=[[0.0, 1.0, -3.0]])  # grey (the defaults)
    blend = BlendParams(sigma=1e-3, gamma=1e-2, background_color=(0.3,) * 5)
    image = shader(cameras=cameras, lights=lights, blend_params=blend)(
        rasterizer(_mesh(features)), _mesh(features)
    )
    for j in (0, 4):
        grey = _mesh(features[:, j : j + 1].expand(-1, 3).contiguous())
        rgb = shader(
            cameras=cameras,
            lights=lights,
            blend_params=BlendParams(sigma=1e-3, gamma=1e-2, background_color=(0.3,) * 3),
        )(rasterizer(grey), grey)
        torch.testing.assert_close(image[..., j], rgb[..., 0], **COLOUR_TOL)
    torch.testing.assert_close(image[..., 5], rgb[..., 3])


def test_channel_errors_and_gradients():
    features = _features(5).requires_grad_(True)
    cameras, rasterizer = _rasterizer(k=4)
    coloured = PointLights(location=[[0.0, 3.0, -3.0]], diffuse_color=[[0.9, 0.1, 0.1]])
    shader = SoftGouraudShader(
        cameras=cameras, lights=coloured, blend_params=BlendParams(background_color=(1.0,) * 5)
    )
    with pytest.raises(ValueError, match="grey"):
        shader(rasterizer(_mesh(features)), _mesh(features))
    with pytest.raises(ValueError, match="background_color"):
        HardGouraudShader(
            cameras=cameras,
            lights=UNLIT,
            blend_params=BlendParams(background_color=(0.1, 0.2, 0.3)),
        )(rasterizer(_mesh(features)), _mesh(features))
    with pytest.raises(ValueError, match="background_color"):
        BlendParams(background_color=())
    meshes = _mesh(features)
    image = SoftGouraudShader(cameras=cameras)(
        rasterizer(meshes), meshes
    )  # default white: grey, fills 5
    image[..., :5].sum().backward()
    assert bool(torch.isfinite(features.grad).all()) and float(features.grad.abs().sum()) > 0


@pytest.mark.parametrize("shader", [HardGouraudShader, SoftGouraudShader])
def test_gouraud_empty_mesh_no_nan(shader):
    sphere = ico_sphere(1)
    verts = sphere.verts_packed().clone().requires_grad_(True)
    faces = torch.cat((sphere.faces_packed(), torch.tensor([[0, 0, 1]])))  # a zero-area face
    colors = torch.full((verts.shape[0], 5), 0.5, requires_grad=True)
    meshes = Meshes(
        [verts, torch.zeros(0, 3)],
        [faces, torch.zeros(0, 3, dtype=torch.long)],
        textures=TexturesVertex([colors, torch.zeros(0, 5)]),
    )
    cameras, rasterizer = _rasterizer(k=3)
    image = MeshRenderer(rasterizer, shader(cameras=cameras))(meshes)
    assert image.shape == (2, 10, 10, 6)
    assert bool((image[1, ..., 5] == 0).all()) and bool((image[1, ..., :5] == 1).all())
    image.sum().backward()
    assert bool(torch.isfinite(verts.grad).all()) and bool(torch.isfinite(colors.grad).all())
