"""Regression render of the bundled cow (TexturesUV) against an image a person has looked at."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from diffmesh.meshio import load_objs_as_meshes
from diffmesh.softrender import (
    BlendParams,
    FoVPerspectiveCameras,
    MeshRasterizer,
    MeshRenderer,
    PointLights,
    RasterizationSettings,
    SoftPhongShader,
    look_at_view_transform,
)
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
COW = ROOT / "apps" / "fit" / "src" / "diffmesh" / "fit" / "data" / "cow" / "cow.obj"
REFERENCE = Path(__file__).resolve().parent / "data" / "cow_regression.png"


def render_cow_strip() -> np.ndarray:
    """Two views of the cow (front and three-quarter), 128 px each, side by side: (128, 256, 3) uint8."""
    mesh = load_objs_as_meshes([COW]).extend(2)
    R, T = look_at_view_transform(2.7, torch.tensor([0.0, 20.0]), torch.tensor([180.0, 135.0]))
    cameras = FoVPerspectiveCameras(R=R, T=T)
    settings = RasterizationSettings(image_size=128, blur_radius=1e-5, faces_per_pixel=4)
    shader = SoftPhongShader(cameras=cameras, lights=PointLights(location=[[0.0, 1.0, -3.0]]),
                             blend_params=BlendParams(sigma=1e-5, gamma=1e-4))
    with torch.no_grad():
        images = MeshRenderer(MeshRasterizer(cameras, settings), shader)(mesh)[..., :3]
    strip = torch.cat(tuple(images), dim=1).clamp(0.0, 1.0)
    return (strip.numpy() * 255.0).round().astype(np.uint8)


def test_cow_matches_regression_image(tmp_path):
    strip = render_cow_strip()
    out = tmp_path / "cow.png"
    Image.fromarray(strip).save(out)
    rendered = np.asarray(Image.open(out).convert("RGB"), dtype=np.float64)
    reference = np.asarray(Image.open(REFERENCE).convert("RGB"), dtype=np.float64)
    assert rendered.shape == reference.shape
    assert np.abs(rendered - reference).mean() < 1.0  # under 1/255 on average
