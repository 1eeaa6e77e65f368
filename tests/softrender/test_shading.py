"""The fused Phong function of the shaders against the general lighting path (apply_lighting)."""

from __future__ import annotations

import pytest
import torch
from diffmesh.meshcore import Meshes, TexturesVertex
from diffmesh.meshio import ico_sphere
from diffmesh.softrender import (
    AmbientLights,
    DirectionalLights,
    FoVPerspectiveCameras,
    HardPhongShader,
    Materials,
    MeshRasterizer,
    MeshRenderer,
    PointLights,
    RasterizationSettings,
    SoftPhongShader,
    look_at_view_transform,
)
from diffmesh.softrender import shading as shading_module
from diffmesh.softrender._phong_pairs import fast_phong_scene, phong_colors
from diffmesh.softrender.shading import apply_lighting

F64 = torch.float64


def _scene(kind: str, shininess: float, num_cameras: int):
    R, T = look_at_view_transform(torch.tensor([2.7, 3.0][:num_cameras]), torch.tensor([20.0, -40.0][:num_cameras]),
                                  torch.tensor([35.0, 150.0][:num_cameras]))
    cameras = FoVPerspectiveCameras(R=R, T=T).to(F64)
    colors = {"ambient_color": ((0.4, 0.5, 0.6),), "diffuse_color": ((0.3, 0.2, 0.1),),
              "specular_color": ((0.7, 0.8, 0.9),)}
    if kind == "point":
        lights = PointLights(location=((0.5, 1.0, -2.0),), **colors)
    else:
        lights = DirectionalLights(direction=((0.3, -1.0, 0.5),), **colors)
    materials = Materials(ambient_color=((0.9, 0.8, 0.7),), diffuse_color=((0.5, 0.6, 0.7),),
                          specular_color=((0.2, 0.3, 0.4),), shininess=shininess)
    return lights.to(F64), cameras, materials.to(F64)


def _points(count: int, num_images: int):
    g = torch.Generator().manual_seed(5)
    points = torch.randn(count, 3, generator=g, dtype=F64)
    normals = torch.randn(count, 3, generator=g, dtype=F64)
    normals[0] = 0.0  # a zero normal: no diffuse or specular light, finite gradients
    normals[1] = 1e-8  # shorter than eps: clamped
    texels = torch.rand(count, 3, generator=g, dtype=F64)
    image_idx = torch.randint(0, num_images, (count,), generator=g)
    return points, normals, texels, image_idx


def _general(points, normals, texels, image_idx, num_images, lights, cameras, materials):
    ambient, diffuse, specular = apply_lighting(points, normals, image_idx, num_images, lights, cameras, materials)
    return (ambient + diffuse) * texels + specular


@pytest.mark.parametrize("kind", ["point", "directional"])
@pytest.mark.parametrize("shininess", [64.0, 10.0, 1.0, 0.5, 0.0])
@pytest.mark.parametrize("num_cameras", [1, 2])
def test_fused_phong_matches_general_path(kind, shininess, num_cameras):
    lights, cameras, materials = _scene(kind, shininess, num_cameras)
    points, normals, texels, image_idx = _points(200, 2)
    scene = fast_phong_scene(lights, cameras, materials, 2, F64)
    assert scene is not None
    inputs = [t.clone().requires_grad_() for t in (points, normals, texels)]
    got = phong_colors(*inputs, image_idx if num_cameras > 1 else None, scene)
    weights = torch.randn(got.shape, dtype=F64)
    got_grads = torch.autograd.grad((got * weights).sum(), inputs)
    ref_inputs = [t.clone().requires_grad_() for t in (points, normals, texels)]
    want = _general(*ref_inputs, image_idx, 2, lights, cameras, materials)
    want_grads = torch.autograd.grad((want * weights).sum(), ref_inputs)
    torch.testing.assert_close(got, want, rtol=0, atol=0)  # the same operations
    for g, w in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(g, w)
    inputs = [t[2:40].clone().requires_grad_() for t in (points, normals, texels)]
    idx = image_idx[2:40] if num_cameras > 1 else None
    assert torch.autograd.gradcheck(lambda p, n, t: phong_colors(p, n, t, idx, scene), inputs)


def test_fused_phong_only_for_constant_simple_scenes():
    lights, cameras, materials = _scene("point", 64.0, 1)
    assert fast_phong_scene(lights, cameras, materials, 1, torch.float32) is None  # dtype mismatch
    assert fast_phong_scene(AmbientLights().to(F64), cameras, materials, 1, F64) is None
    two = Materials(shininess=torch.tensor([8.0, 16.0])).to(F64)
    assert fast_phong_scene(lights, cameras, two, 2, F64) is None  # a batch of materials
    moving = PointLights(location=torch.tensor([[0.0, 1.0, -2.0]], dtype=F64, requires_grad=True))
    assert fast_phong_scene(moving, cameras, materials, 1, F64) is None  # a light that learns
    R, T = look_at_view_transform(2.7, 20.0, 35.0)
    learnt = FoVPerspectiveCameras(R=R.to(F64), T=T.to(F64).requires_grad_())
    assert fast_phong_scene(lights, learnt, materials, 1, F64) is None  # a camera that learns
    assert fast_phong_scene(lights, cameras, materials, 3, F64) is not None


def _render_batch(shader_cls, blur: float, k: int):
    """Render a batch (a sphere, a smaller partial sphere, an empty mesh; three cameras,
    a non-square image) and return the image and the gradients of its leaves."""
    sphere = ico_sphere(1)
    v1, f1 = sphere.verts_packed().to(F64), sphere.faces_packed()
    f2 = f1[(f1 < 20).all(dim=1)]
    verts = [v1.clone().requires_grad_(), (v1[:20] * 0.7 + 0.2).requires_grad_(), torch.zeros(0, 3, dtype=F64)]
    g = torch.Generator().manual_seed(2)
    colors = [torch.rand(v.shape[0], 3, generator=g, dtype=F64).requires_grad_() for v in verts[:2]]
    colors.append(torch.zeros(0, 3, dtype=F64))
    meshes = Meshes(verts, [f1, f2, f1[:0]], textures=TexturesVertex(colors))
    R, T = look_at_view_transform(2.7, torch.tensor([10.0, 30.0, 50.0]), torch.tensor([20.0, -30.0, 60.0]))
    cameras = FoVPerspectiveCameras(R=R, T=T).to(F64)
    settings = RasterizationSettings(image_size=(20, 27), blur_radius=blur, faces_per_pixel=k)
    lights = PointLights(location=((0.0, 1.0, -3.0),)).to(F64)
    shader = shader_cls(cameras=cameras, lights=lights, materials=Materials().to(F64))
    image = MeshRenderer(MeshRasterizer(cameras, settings), shader)(meshes)
    weights = torch.randn(image.shape, generator=g, dtype=F64)
    leaves = verts[:2] + colors[:2]
    return image.detach(), torch.autograd.grad((image * weights).sum(), leaves)


@pytest.mark.parametrize(("shader_cls", "blur", "k"), [(SoftPhongShader, 1e-3, 5), (HardPhongShader, 0.0, 1)])
def test_fused_phong_renders_batches_like_the_general_path(monkeypatch, shader_cls, blur, k):
    """Meshes of different face counts, an empty mesh and a camera per image: the shaders'
    fused path gives the general path's image and gradients."""
    fused = _render_batch(shader_cls, blur, k)
    monkeypatch.setattr(shading_module, "fast_phong_scene", lambda *args: None)
    general = _render_batch(shader_cls, blur, k)
    assert bool((fused[0][0, ..., 3] > 0).any()) and bool((fused[0][1, ..., 3] > 0).any())
    torch.testing.assert_close(fused[0], general[0], rtol=0, atol=0)
    for got, want in zip(fused[1], general[1], strict=True):
        torch.testing.assert_close(got, want)
