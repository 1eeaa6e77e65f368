"""The shaders against an independent per-pixel Phong reference; the fused Phong function of
the shaders against the general lighting path (apply_lighting)."""

from __future__ import annotations

import math

import pytest
import torch
from diffmesh.meshcore import Meshes, TexturesVertex
from diffmesh.meshio import ico_sphere
from diffmesh.softrender import (
    AmbientLights,
    BlendParams,
    DirectionalLights,
    FoVPerspectiveCameras,
    HardFlatShader,
    HardPhongShader,
    Materials,
    MeshRasterizer,
    MeshRenderer,
    PointLights,
    RasterizationSettings,
    SoftGouraudShader,
    SoftPhongShader,
    look_at_view_transform,
)
from diffmesh.softrender import shading as shading_module
from diffmesh.softrender._phong_pairs import fast_phong_scene, phong_colors
from diffmesh.softrender.shading import apply_lighting

F64 = torch.float64


# ----------------------------------------------------------------- per-pixel reference
# PyTorch3D's Phong model written out on plain Python floats, one pixel at a time. It shares
# no code with the library's shading, lights or interpolation; its only inputs from the
# library are the rasterizer's pix_to_face and bary_coords.


def _sub(a, b):
    return [a[0] - b[0], a[1] - b[1], a[2] - b[2]]


def _dot(a, b):
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _cross(a, b):
    return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]


def _unit(a):
    """PyTorch3D's F.normalize(eps=1e-6): a / max(|a|, 1e-6)."""
    length = max(math.sqrt(_dot(a, a)), 1e-6)
    return [x / length for x in a]


def _mix(weights, rows):
    """sum_i weights[i] * rows[i] (barycentric interpolation of 3-vectors)."""
    return [sum(w * row[c] for w, row in zip(weights, rows, strict=True)) for c in range(3)]


def _lit(point, normal, texel, scene):
    """PyTorch3D's phong: (ambient + diffuse) * texel + specular at one point."""
    light, mat = scene["light"], scene["material"]
    if "location" in light:  # PointLights: towards the light from the point
        to_light = _unit(_sub(light["location"], point))
    else:  # DirectionalLights: the direction towards the light
        to_light = _unit(light["direction"])
    n = _unit(normal)
    cos = _dot(n, to_light)
    reflect = [-to_light[c] + 2 * cos * n[c] for c in range(3)]
    view = _unit(_sub(scene["camera"], point))
    alpha = max(_dot(view, reflect), 0.0) if cos > 0 else 0.0  # no highlight from behind
    spec = alpha ** mat["shininess"]
    return [
        (light["ambient"][c] * mat["ambient"][c] + light["diffuse"][c] * mat["diffuse"][c] * max(cos, 0.0))
        * texel[c]
        + light["specular"][c] * mat["specular"][c] * spec
        for c in range(3)
    ]


def _reference_image(mode, verts, faces, colors, pix_to_face, bary, scene, background):
    """(H, W) nested lists of RGB from the nearest face of each pixel (K = 1).

    phong: position, unit vertex normal and colour interpolated at the pixel, then lit.
    flat: the face's centroid and unit normal, the colour interpolated at the pixel (the
    library's docstring and PyTorch3D's flat_shading: face_coords = verts[faces].mean()).
    gouraud: each corner lit with its own position, normal and colour, then interpolated.
    """
    face_raw = [_cross(_sub(verts[b], verts[a]), _sub(verts[c], verts[a])) for a, b, c in faces]
    vert_normals = [[0.0, 0.0, 0.0] for _ in verts]  # PyTorch3D: area-weighted, then unit
    for (a, b, c), raw in zip(faces, face_raw, strict=True):
        for v in (a, b, c):
            vert_normals[v] = [vert_normals[v][i] + raw[i] for i in range(3)]
    vert_normals = [_unit(n) for n in vert_normals]
    image = []
    for row_faces, row_bary in zip(pix_to_face, bary, strict=True):
        row = []
        for f, b in zip(row_faces, row_bary, strict=True):
            if f < 0:
                row.append(list(background))
                continue
            corners = faces[f]
            texel = _mix(b, [colors[v] for v in corners])
            if mode == "phong":
                point = _mix(b, [verts[v] for v in corners])
                normal = _mix(b, [vert_normals[v] for v in corners])
                row.append(_lit(point, normal, texel, scene))
            elif mode == "flat":
                centroid = _mix((1 / 3, 1 / 3, 1 / 3), [verts[v] for v in corners])
                row.append(_lit(centroid, face_raw[f], texel, scene))
            else:
                lit = [_lit(verts[v], vert_normals[v], colors[v], scene) for v in corners]
                row.append(_mix(b, lit))
        image.append(row)
    return image


_LIGHTS = {
    # in front, to the side: a highlight, and a part of the visible sphere in shadow
    "point": {"location": [2.0, -1.0, 0.5]},
    # from behind: a lit rim, and shadowed pixels where an unmasked highlight would be strong
    "directional": {"direction": [-1.0, 0.0, -0.3]},
}


@pytest.mark.parametrize("mode", ["phong", "flat", "gouraud"])
@pytest.mark.parametrize(("light_kind", "shininess"), [("point", 10.0), ("directional", 16.0)])
def test_shaders_match_per_pixel_reference(mode, light_kind, shininess):
    """HardPhongShader, HardFlatShader and SoftGouraudShader (K = 1, no blur, a tiny gamma:
    the blend then returns the nearest face's colour to ~1e-9) pixel by pixel against the
    hand-written PyTorch3D Phong model above."""
    sphere = ico_sphere(1)
    verts, faces = sphere.verts_packed(), sphere.faces_packed()
    g = torch.Generator().manual_seed(3)
    colors = torch.rand(verts.shape[0], 3, generator=g)
    meshes = Meshes([verts], [faces], textures=TexturesVertex([colors]))
    distance, elev, azim = 2.7, 25.0, 40.0
    R, T = look_at_view_transform(distance, elev, azim)
    cameras = FoVPerspectiveCameras(R=R, T=T)
    e, a = math.radians(elev), math.radians(azim)  # look_at_view_transform's camera position
    camera = [distance * math.cos(e) * math.sin(a), distance * math.sin(e), distance * math.cos(e) * math.cos(a)]
    torch.testing.assert_close(cameras.get_camera_center(), torch.tensor([camera]))
    light = {"ambient": [0.3, 0.25, 0.2], "diffuse": [0.6, 0.7, 0.5], "specular": [0.8, 0.6, 0.9],
             **_LIGHTS[light_kind]}
    material = {"ambient": [0.9, 0.7, 0.8], "diffuse": [0.8, 0.9, 0.6], "specular": [0.7, 0.9, 0.5],
                "shininess": shininess}
    colour_args = {f"{k}_color": (tuple(light[k]),) for k in ("ambient", "diffuse", "specular")}
    if light_kind == "point":
        lights = PointLights(location=(tuple(light["location"]),), **colour_args)
    else:
        lights = DirectionalLights(direction=(tuple(light["direction"]),), **colour_args)
    materials = Materials(**{f"{k}_color": (tuple(material[k]),) for k in ("ambient", "diffuse", "specular")},
                          shininess=shininess)
    background = (0.2, 0.3, 0.4)
    size = 24
    fragments = MeshRasterizer(cameras, RasterizationSettings(image_size=size, faces_per_pixel=1))(meshes)
    shader_cls = {"phong": HardPhongShader, "flat": HardFlatShader, "gouraud": SoftGouraudShader}[mode]
    blend = BlendParams(sigma=1e-4, gamma=1e-4, background_color=background)
    image = shader_cls(cameras=cameras, lights=lights, materials=materials, blend_params=blend)(fragments, meshes)[0]

    p2f = fragments.pix_to_face[0, ..., 0]
    scene = {"light": light, "material": material, "camera": camera}
    want = _reference_image(mode, verts.tolist(), faces.tolist(), colors.tolist(), p2f.tolist(),
                            fragments.bary_coords[0, :, :, 0].tolist(), scene, background)
    want = torch.tensor(want, dtype=F64)
    covered = p2f >= 0
    assert 100 < int(covered.sum()) < size * size  # the sphere and some background
    torch.testing.assert_close(image[..., :3][covered].double(), want[covered], rtol=0, atol=1e-5)
    assert bool((image[..., :3][~covered] == torch.tensor(background)).all())
    assert bool((image[..., 3][~covered] == 0).all()) and bool((image[..., 3][covered] > 0).all())
    if mode != "gouraud":
        assert bool((image[..., 3][covered] == 1).all())


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
