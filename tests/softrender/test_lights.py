"""Tests for the Phong lights (PointLights, DirectionalLights, AmbientLights)."""

from __future__ import annotations

import math

import pytest
import torch
from diffmesh.softrender.lights import (
    AmbientLights,
    DirectionalLights,
    PointLights,
    diffuse,
    specular,
)

F64 = torch.float64


def _unit(v: list[float]) -> list[float]:
    n = max(math.sqrt(sum(x * x for x in v)), 1e-6)
    return [x / n for x in v]


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def _reference_phong(
    normal: list[float],
    point: list[float],
    to_light: list[float],
    camera: list[float],
    diffuse_color: list[float],
    specular_color: list[float],
    shininess: float,
) -> tuple[list[float], list[float]]:
    """One point's diffuse and specular terms, straight from the Phong formulas."""
    n, l_dir = _unit(normal), _unit(to_light)
    cos = _dot(n, l_dir)
    diff = [c * max(cos, 0.0) for c in diffuse_color]
    v = _unit([camera[i] - point[i] for i in range(3)])
    r = [2 * cos * n[i] - l_dir[i] for i in range(3)]
    alpha = max(_dot(v, r), 0.0) if cos > 0 else 0.0
    spec = [c * alpha**shininess for c in specular_color]
    return diff, spec


def _random_inputs(shape: tuple[int, ...], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    normals = torch.randn(*shape, 3, generator=g, dtype=F64)
    points = torch.randn(*shape, 3, generator=g, dtype=F64) * 0.5
    return normals, points


def test_hand_computed_values():
    lights = PointLights(location=((0.0, 1.0, 0.0),))
    n = torch.tensor([[0.0, 2.0, 0.0], [0.0, -1.0, 0.0], [1.0, 1.0, 0.0]])
    p = torch.zeros(3, 3)
    torch.testing.assert_close(
        lights.diffuse(n, p),
        torch.tensor([[0.3] * 3, [0.0] * 3, [0.3 * math.sqrt(0.5)] * 3]),
    )
    # camera straight above: reflection = view direction -> alpha = 1
    spec = lights.specular(n[:2], p[:2], torch.tensor([0.0, 2.0, 0.0]), 64)
    torch.testing.assert_close(spec, torch.tensor([[0.2] * 3, [0.0] * 3]))
    # camera at 45 degrees: alpha = cos 45; shininess 2 -> 0.5
    spec = lights.specular(n[:1], p[:1], torch.tensor([[1.0, 1.0, 0.0]]), 2)
    torch.testing.assert_close(spec, torch.tensor([[0.1] * 3]))
    assert lights.ambient_color.shape == (1, 3)
    torch.testing.assert_close(lights.ambient_color, torch.tensor([[0.5, 0.5, 0.5]]))


def test_point_lights_match_reference():
    normals, points = _random_inputs((40,), 0)
    location = [0.3, 1.5, -2.0]
    camera = [0.5, 0.2, -3.0]
    lights = PointLights(
        diffuse_color=((0.2, 0.4, 0.6),), specular_color=((0.7, 0.5, 0.3),), location=(location,)
    ).to(F64)
    for shininess in (64, 10, 0.5, 1):
        d = lights.diffuse(normals, points)
        s = lights.specular(normals, points, torch.tensor(camera, dtype=F64), shininess)
        for i in range(len(points)):
            to_light = [location[k] - float(points[i, k]) for k in range(3)]
            rd, rs = _reference_phong(
                normals[i].tolist(),
                points[i].tolist(),
                to_light,
                camera,
                [0.2, 0.4, 0.6],
                [0.7, 0.5, 0.3],
                shininess,
            )
            torch.testing.assert_close(d[i], torch.tensor(rd, dtype=F64))
            torch.testing.assert_close(s[i], torch.tensor(rs, dtype=F64))
    # enough points face both ways for the test to mean something
    assert (d.sum(-1) == 0).any() and (d.sum(-1) > 0).any() and (s.sum(-1) > 1e-3).any()


def test_directional_lights_match_reference():
    normals, points = _random_inputs((30,), 1)
    direction = [0.0, 0.5, -1.0]
    camera = [0.0, 0.0, -2.7]
    lights = DirectionalLights(direction=(direction,)).to(F64)
    d = lights.diffuse(normals)
    torch.testing.assert_close(d, lights.diffuse(normals, points))
    s = lights.specular(normals, points, torch.tensor([camera], dtype=F64), 8)
    for i in range(len(points)):
        rd, rs = _reference_phong(
            normals[i].tolist(), points[i].tolist(), direction, camera, [0.3] * 3, [0.2] * 3, 8
        )
        torch.testing.assert_close(d[i], torch.tensor(rd, dtype=F64))
        torch.testing.assert_close(s[i], torch.tensor(rs, dtype=F64))


def test_ambient_lights():
    lights = AmbientLights()
    torch.testing.assert_close(lights.ambient_color, torch.ones(1, 3))  # PyTorch3D: white
    normals, points = _random_inputs((2, 4, 4), 2)
    assert torch.equal(lights.diffuse(normals, points), torch.zeros(2, 4, 4, 3, dtype=F64))
    assert torch.equal(
        lights.specular(normals, points, points, 64), torch.zeros(2, 4, 4, 3, dtype=F64)
    )
    grey = AmbientLights(ambient_color=((0.5, 0.5, 0.5),))
    torch.testing.assert_close(grey.ambient_color, torch.full((1, 3), 0.5))
    four = AmbientLights(ambient_color=torch.ones(2, 4))
    assert len(four) == 2 and four.diffuse(normals).shape == (2, 4, 4, 4)


def test_batched_lights_broadcast_over_pixels():
    normals, points = _random_inputs((2, 3, 4, 5), 3)
    locations = torch.tensor([[0.0, 1.0, -2.0], [1.0, -1.0, 2.0]], dtype=F64)
    cameras = torch.tensor([[0.0, 0.0, -3.0], [2.0, 0.0, 2.0]], dtype=F64)
    lights = PointLights(location=locations, diffuse_color=((0.3, 0.3, 0.3), (0.9, 0.1, 0.5)))
    d = lights.diffuse(normals, points)
    s = lights.specular(normals, points, cameras, torch.tensor([64.0, 16.0]))
    assert d.shape == s.shape == (2, 3, 4, 5, 3)
    for b in range(2):
        one = lights[b]
        torch.testing.assert_close(d[b], one.diffuse(normals[b : b + 1], points[b : b + 1])[0])
        torch.testing.assert_close(
            s[b], one.specular(normals[b], points[b], cameras[b], [64.0, 16.0][b])
        )
    # a batch-1 light broadcasts to any batch
    single = PointLights(location=((0.0, 1.0, -2.0),))
    assert single.diffuse(normals, points).shape == (2, 3, 4, 5, 3)


def test_long_tensor_indexing_per_point():
    normals, points = _random_inputs((2, 6), 4)
    lights = PointLights(
        location=torch.tensor([[0.0, 1.0, -2.0], [1.0, -1.0, 2.0]]),
        specular_color=torch.tensor([[0.2, 0.2, 0.2], [0.5, 0.6, 0.7]]),
    ).to(F64)
    cameras = torch.tensor([[0.0, 0.0, -3.0], [2.0, 0.0, 2.0]], dtype=F64)
    full_d = lights.diffuse(normals, points).reshape(12, 3)
    full_s = lights.specular(normals, points, cameras, 32).reshape(12, 3)
    idx = torch.arange(2).repeat_interleave(6)
    perm = torch.randperm(12, generator=torch.Generator().manual_seed(0))
    flat_n, flat_p, flat_idx = normals.reshape(12, 3)[perm], points.reshape(12, 3)[perm], idx[perm]
    per = lights[flat_idx]
    assert len(per) == 12
    torch.testing.assert_close(per.diffuse(flat_n, flat_p), full_d[perm])
    torch.testing.assert_close(per.specular(flat_n, flat_p, cameras[flat_idx], 32), full_s[perm])
    # per-point shininess tensor
    torch.testing.assert_close(
        per.specular(flat_n, flat_p, cameras[flat_idx], torch.full((12,), 32.0)), full_s[perm]
    )


def test_power_of_two_shortcut_matches_pow():
    normals, points = _random_inputs((200,), 5)
    lights = PointLights(location=((0.0, 2.0, -1.0),)).to(F64)
    cam = torch.tensor([0.0, 1.0, -2.0], dtype=F64)
    fast = lights.specular(normals, points, cam, 64)
    general = lights.specular(normals, points, cam, 64.0 + 1e-12)
    torch.testing.assert_close(fast, general, rtol=1e-9, atol=1e-12)
    as_tensor = lights.specular(normals, points, cam, torch.tensor(64.0).expand(1))
    torch.testing.assert_close(as_tensor, fast)


def test_functional_api():
    normals, points = _random_inputs((3, 4), 6)
    color = torch.tensor([[1.0, 0.5, 0.25]] * 3, dtype=F64)
    direction = torch.tensor([[0.0, 1.0, 0.0]] * 3, dtype=F64)
    d = diffuse(normals, color, direction)
    n = normals / normals.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(d, color[:, None] * n[..., 1:2].clamp_min(0))
    s = specular(points, normals, direction, torch.zeros(3, 3, dtype=F64), color, 4)
    assert s.shape == (3, 4, 3)


def test_gradcheck_point_lights():
    normals, points = _random_inputs((2, 3), 7)
    normals.requires_grad_(True)
    points.requires_grad_(True)
    location = torch.tensor([[0.2, 1.0, -1.5]], dtype=F64, requires_grad=True)
    camera = torch.tensor([[0.0, 0.3, -2.5], [0.4, 0.0, -2.0]], dtype=F64, requires_grad=True)
    shininess = torch.tensor([8.0, 5.5], dtype=F64, requires_grad=True)

    def fn(n, p, loc, cam, shin):
        lights = PointLights(location=loc)
        return lights.diffuse(n, p), lights.specular(n, p, cam, shin)

    assert torch.autograd.gradcheck(fn, (normals, points, location, camera, shininess))

    def fn_pow2(n, p, cam):
        return PointLights(location=location.detach()).specular(n, p, cam, 16)

    assert torch.autograd.gradcheck(fn_pow2, (normals, points, camera))


def test_gradcheck_directional_lights():
    normals, points = _random_inputs((4,), 8)
    normals.requires_grad_(True)
    direction = torch.tensor([[0.3, 1.0, -0.5]], dtype=F64, requires_grad=True)
    color = torch.tensor([[0.3, 0.5, 0.7]], dtype=F64, requires_grad=True)

    def fn(n, dirn, col):
        lights = DirectionalLights(direction=dirn, diffuse_color=col, specular_color=col)
        return lights.diffuse(n), lights.specular(n, points, torch.zeros(3, dtype=F64), 3)

    assert torch.autograd.gradcheck(fn, (normals, direction, color))


@pytest.mark.parametrize("shininess", [64, 0.5, 3.0, 0])
def test_degenerate_inputs_no_nan(shininess):
    # zero normal, point at the light, point at the camera, exactly grazing light,
    # duplicate points, and a back-facing point (alpha exactly 0)
    normals = torch.tensor(
        [
            [0.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, 1.0, 0.0],
            [1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, -1.0, 0.0],
        ],
        dtype=F64,
        requires_grad=True,
    )
    points = torch.tensor(
        [
            [0.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, 0.0, 2.0],
            [0.0, 0.0, 0.0],
            [0.5, 0.0, 0.0],
            [0.5, 0.0, 0.0],
            [0.0, 0.0, 0.0],
        ],
        dtype=F64,
        requires_grad=True,
    )
    location = torch.tensor([[0.0, 1.0, 0.0]], dtype=F64, requires_grad=True)
    camera = torch.tensor([0.0, 0.0, 2.0], dtype=F64, requires_grad=True)
    shin = torch.tensor([float(shininess)], dtype=F64, requires_grad=True)
    lights = PointLights(location=location)
    out = lights.diffuse(normals, points) + lights.specular(normals, points, camera, shin)
    out = out + lights.specular(normals, points, camera, shininess)
    out.sum().backward()
    for t in (out, normals.grad, points.grad, location.grad, camera.grad, shin.grad):
        assert torch.isfinite(t).all()
    empty = torch.zeros(0, 3, dtype=F64)
    assert lights.diffuse(empty, empty).shape == (0, 3)
    assert lights.specular(empty, empty, camera, shininess).shape == (0, 3)


def test_to_and_clone():
    l64 = PointLights(location=((0.0, 1.0, 0.0),)).to(F64)  # nn.Module.to: in place
    assert l64.location.dtype == F64 and l64.diffuse_color.dtype == F64
    assert l64.dtype == F64
    lights = PointLights(location=((0.0, 1.0, 0.0),))
    c = lights.clone()
    c.location.add_(1.0)
    torch.testing.assert_close(lights.location, torch.tensor([[0.0, 1.0, 0.0]]))
    assert isinstance(DirectionalLights().clone(), DirectionalLights)


def test_validation_errors():
    with pytest.raises(ValueError, match="diffuse_color"):
        PointLights(diffuse_color=((0.3, 0.3),))
    with pytest.raises(ValueError, match="location"):
        PointLights(location=torch.zeros(2, 4))
    with pytest.raises(ValueError, match="batch size"):
        PointLights(location=torch.zeros(2, 3), ambient_color=torch.zeros(3, 3))
    with pytest.raises(ValueError, match="direction"):
        DirectionalLights(direction=((0.0, 1.0),))
    with pytest.raises(TypeError, match="ambient_color"):
        AmbientLights(ambient_color="white")
    lights = PointLights(location=torch.zeros(2, 3))
    with pytest.raises(ValueError, match="batch size"):
        lights.diffuse(torch.ones(3, 5, 3), torch.ones(3, 5, 3))
    with pytest.raises(ValueError, match="normals"):
        lights.diffuse(torch.ones(2, 5, 2), torch.ones(2, 5, 3))
    with pytest.raises(TypeError, match="normals"):
        lights.diffuse(torch.ones(2, 5, 3, dtype=torch.int64), torch.ones(2, 5, 3))
    with pytest.raises(ValueError, match="do not broadcast"):
        lights.diffuse(torch.ones(2, 5, 3), torch.ones(2, 4, 3))
    with pytest.raises(ValueError, match="camera_position"):
        lights.specular(torch.ones(2, 5, 3), torch.ones(2, 5, 3), torch.ones(3, 3), 64)
    with pytest.raises(ValueError, match="shininess"):
        lights.specular(torch.ones(2, 5, 3), torch.ones(2, 5, 3), torch.ones(3), torch.ones(4))


def _autograd_reference(normals, points, location, camera, shininess):
    """PyTorch3D's formulas written with F.normalize, differentiated by autograd."""
    n = torch.nn.functional.normalize(normals, dim=-1, eps=1e-6)
    d = torch.nn.functional.normalize(location - points, dim=-1, eps=1e-6)
    cos = (n * d).sum(-1, keepdim=True)
    diff = 0.3 * torch.relu(cos)
    v = torch.nn.functional.normalize(camera - points, dim=-1, eps=1e-6)
    r = 2 * cos * n - d
    alpha = torch.relu((v * r).sum(-1, keepdim=True)) * (cos > 0)
    return diff.expand(-1, 3), (0.2 * alpha**shininess).expand(-1, 3)


@pytest.mark.parametrize("shininess", [64, 5.0])
def test_hand_written_gradients_match_autograd_reference(shininess):
    g = torch.Generator().manual_seed(9)
    normals = torch.randn(300, 3, generator=g, dtype=F64)
    normals[:20] *= 1e-8  # inside the eps clamp: no projection term
    points = torch.randn(300, 3, generator=g, dtype=F64) * 0.5
    location = torch.tensor([[0.3, 1.5, -1.0]], dtype=F64)
    points[20:25] = location  # points at the light
    camera = torch.tensor([[0.0, 0.4, -2.5]], dtype=F64)
    points[25:30] = camera  # points at the camera
    inputs = [t.clone().requires_grad_(True) for t in (normals, points, location, camera)]
    ref_inputs = [t.clone().requires_grad_(True) for t in (normals, points, location, camera)]
    lights = PointLights(location=inputs[2])
    ours = (
        lights.diffuse(inputs[0], inputs[1]),
        lights.specular(inputs[0], inputs[1], inputs[3], shininess),
    )
    ref = _autograd_reference(*ref_inputs, shininess)
    w = torch.randn(2, 300, 3, generator=g, dtype=F64)
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b)
    (ours[0] * w[0] + ours[1] * w[1]).sum().backward()
    (ref[0] * w[0] + ref[1] * w[1]).sum().backward()
    for a, b in zip(inputs, ref_inputs, strict=True):
        torch.testing.assert_close(a.grad, b.grad)


@pytest.mark.parametrize("kind", ["point", "directional"])
@pytest.mark.parametrize("shininess", [16, 5.5, "tensor"])
def test_gradcheck_every_input(kind, shininess):
    normals, points = _random_inputs((2, 3), 10)
    light = torch.tensor([[0.2, 1.0, -1.5], [-0.5, 0.8, -1.0]], dtype=F64)
    camera = torch.tensor([[0.0, 0.3, -2.5]], dtype=F64)
    color = torch.tensor([[0.3, 0.5, 0.7]], dtype=F64)
    shin = torch.tensor([5.5, 3.0], dtype=F64) if shininess == "tensor" else shininess
    cls = PointLights if kind == "point" else DirectionalLights
    key = "location" if kind == "point" else "direction"
    args = [t.clone().requires_grad_(True) for t in (normals, points, light, camera, color)]

    def fn(n, p, li, cam, col):
        lights = cls(**{key: li}, diffuse_color=col, specular_color=col * 0.5)
        return lights.diffuse(n, p), lights.specular(n, p, cam, shin)

    assert torch.autograd.gradcheck(fn, tuple(args))


def test_point_light_diffuse_needs_points():
    with pytest.raises(ValueError, match="points"):
        PointLights().diffuse(torch.ones(4, 3))
    # a directional light ignores them
    assert DirectionalLights().diffuse(torch.ones(4, 3)).shape == (4, 3)


@pytest.mark.parametrize(
    ("lights_type", "where"),
    [(PointLights, {"location": [[0.0, 1.0, 0.0]]}),  # one grey light at (0, 1, 0)
     (DirectionalLights, {"direction": [[0.0, 1.0, 0.0]]})],  # shining from +Y (towards the light)
)
def test_defaults(lights_type, where):
    """PyTorch3D's defaults: one grey light, ambient 0.5, diffuse 0.3, specular 0.2."""
    lights = lights_type()
    assert len(lights) == 1
    expected = {
        **where,
        "ambient_color": [[0.5, 0.5, 0.5]],
        "diffuse_color": [[0.3, 0.3, 0.3]],
        "specular_color": [[0.2, 0.2, 0.2]],
    }
    for name, value in expected.items():
        tensor = getattr(lights, name)
        assert tensor.dtype == torch.float32, name
        torch.testing.assert_close(tensor, torch.tensor(value), msg=name)
