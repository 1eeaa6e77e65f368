"""RasterizationSettings: PyTorch3D's defaults, and bad values rejected naming the field."""

from __future__ import annotations

import dataclasses

import pytest
from diffmesh.softrender import RasterizationSettings


def test_defaults():
    settings = RasterizationSettings()
    assert settings.image_size == 256
    assert settings.blur_radius == 0.0
    assert settings.faces_per_pixel == 1
    assert settings.bin_size is None
    assert settings.max_faces_per_bin is None
    assert settings.perspective_correct is None
    assert settings.clip_barycentric_coords is None
    assert settings.cull_backfaces is False
    assert settings.z_clip_value is None


def test_valid_values_kept_and_frozen():
    settings = RasterizationSettings(
        image_size=[8, 12], blur_radius=2, faces_per_pixel=3, bin_size=0, max_faces_per_bin=10,
        perspective_correct=False, clip_barycentric_coords=True, cull_backfaces=True, z_clip_value=1,
    )
    assert settings.image_size == (8, 12)  # a list becomes an (H, W) tuple
    assert settings.blur_radius == 2 and settings.faces_per_pixel == 3
    assert settings.bin_size == 0 and settings.max_faces_per_bin == 10
    assert settings.perspective_correct is False and settings.clip_barycentric_coords is True
    assert settings.cull_backfaces is True
    assert settings.z_clip_value == 1.0 and isinstance(settings.z_clip_value, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.blur_radius = 0.5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"image_size": 0}, ValueError, "image_size"),
        ({"image_size": (8, -1)}, ValueError, "image_size"),
        ({"image_size": (8, 8, 8)}, TypeError, "image_size"),
        ({"image_size": 8.0}, TypeError, "image_size"),
        ({"image_size": True}, TypeError, "image_size"),
        ({"blur_radius": -1e-3}, ValueError, "blur_radius"),
        ({"blur_radius": 2.5}, ValueError, "blur_radius"),
        ({"blur_radius": float("nan")}, ValueError, "blur_radius"),
        ({"blur_radius": "0.1"}, TypeError, "blur_radius"),
        ({"blur_radius": True}, TypeError, "blur_radius"),
        ({"faces_per_pixel": 0}, ValueError, "faces_per_pixel"),
        ({"faces_per_pixel": 2.0}, ValueError, "faces_per_pixel"),
        ({"faces_per_pixel": True}, ValueError, "faces_per_pixel"),
        ({"bin_size": -1}, ValueError, "bin_size"),
        ({"max_faces_per_bin": 1.5}, ValueError, "max_faces_per_bin"),
        ({"perspective_correct": 1}, TypeError, "perspective_correct"),
        ({"clip_barycentric_coords": "yes"}, TypeError, "clip_barycentric_coords"),
        ({"cull_backfaces": None}, TypeError, "cull_backfaces"),
        ({"cull_backfaces": 0}, TypeError, "cull_backfaces"),
        ({"z_clip_value": 0.0}, ValueError, "z_clip_value"),
        ({"z_clip_value": -1.0}, ValueError, "z_clip_value"),
        ({"z_clip_value": float("inf")}, ValueError, "z_clip_value"),
        ({"z_clip_value": "1"}, TypeError, "z_clip_value"),
    ],
)
def test_bad_values_raise_naming_the_field(kwargs, error, name):
    with pytest.raises(error, match=name):
        RasterizationSettings(**kwargs)
