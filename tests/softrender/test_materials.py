"""Tests for Materials."""

from __future__ import annotations

import pytest
import torch
from diffmesh.softrender.lights import PointLights
from diffmesh.softrender.materials import Materials

F64 = torch.float64


def test_defaults():
    m = Materials()
    assert len(m) == 1
    for name in ("ambient_color", "diffuse_color", "specular_color"):
        torch.testing.assert_close(getattr(m, name), torch.ones(1, 3))
    torch.testing.assert_close(m.shininess, torch.tensor([64.0]))
    assert m.shininess.dtype == torch.float32


def test_batching_and_indexing():
    m = Materials(
        diffuse_color=torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]),
        shininess=torch.tensor([8.0, 16.0, 32.0]),
    )
    assert len(m) == 3 and m.ambient_color.shape == (3, 3) and m.shininess.shape == (3,)
    idx = torch.tensor([2, 0, 0, 1, 2])
    per = m[idx]
    assert len(per) == 5
    torch.testing.assert_close(per.shininess, m.shininess[idx])
    torch.testing.assert_close(per.diffuse_color, m.diffuse_color[idx])
    # a batch-1 material gathers as a zero-copy expanded view
    one = Materials(shininess=10.0)[idx]
    assert one.shininess.shape == (5,) and one.shininess.stride() == (0,)
    torch.testing.assert_close(one.shininess, torch.full((5,), 10.0))


def test_shininess_feeds_specular_per_point():
    g = torch.Generator().manual_seed(0)
    normals = torch.randn(6, 3, generator=g, dtype=F64)
    points = torch.randn(6, 3, generator=g, dtype=F64) * 0.3
    camera = torch.tensor([0.0, 0.5, -2.5], dtype=F64)
    lights = PointLights(location=((0.0, 2.0, -2.0),)).to(F64)
    m = Materials(shininess=torch.tensor([4.0, 7.0], dtype=F64))
    idx = torch.tensor([0, 1, 0, 1, 1, 0])
    spec = lights.specular(normals, points, camera, m[idx].shininess)
    for i in range(6):
        expected = lights.specular(
            normals[i : i + 1], points[i : i + 1], camera, float(m.shininess[idx[i]])
        )
        torch.testing.assert_close(spec[i : i + 1], expected)


def test_gradients_flow_to_parameters():
    shininess = torch.tensor([5.0], dtype=F64, requires_grad=True)
    color = torch.tensor([[0.2, 0.3, 0.4]], dtype=F64, requires_grad=True)
    m = Materials(specular_color=color, shininess=shininess)
    normals = torch.tensor([[0.0, 1.0, 0.0]], dtype=F64)
    points = torch.zeros(1, 3, dtype=F64)
    lights = PointLights(location=((0.0, 1.0, 0.5),)).to(F64)
    out = m.specular_color * lights.specular(
        normals, points, torch.tensor([0.0, 1.0, -0.4], dtype=F64), m.shininess
    )
    out.sum().backward()
    assert torch.isfinite(shininess.grad).all() and shininess.grad.abs().sum() > 0
    assert torch.isfinite(color.grad).all() and color.grad.abs().sum() > 0


def test_to_and_clone():
    m = Materials(shininess=torch.tensor([8.0, 16.0])).to(F64)
    assert m.shininess.dtype == F64 and m.ambient_color.dtype == F64
    c = m.clone()
    c.shininess.mul_(2.0)
    torch.testing.assert_close(m.shininess, torch.tensor([8.0, 16.0], dtype=F64))


def test_validation_errors():
    with pytest.raises(ValueError, match="shininess"):
        Materials(shininess=-1.0)
    with pytest.raises(ValueError, match="shininess"):
        Materials(shininess=float("inf"))
    with pytest.raises(ValueError, match="shininess"):
        Materials(shininess=torch.ones(2, 2))
    with pytest.raises(ValueError, match="ambient_color"):
        Materials(ambient_color=((1.0, 1.0),))
    with pytest.raises(ValueError, match="batch size"):
        Materials(diffuse_color=torch.ones(2, 3), shininess=torch.ones(3))
    with pytest.raises(TypeError, match="specular_color"):
        Materials(specular_color="shiny")
    with pytest.raises(IndexError):
        Materials(shininess=torch.ones(2))[torch.tensor([2])]
