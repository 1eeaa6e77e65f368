"""`fit render`: PNGs + cameras.json in the format `fit images --images` reads."""

from __future__ import annotations

import json

import numpy as np
import torch
from diffmesh.fit.cameras_io import read_cameras_json
from diffmesh.fit.cli import cli
from diffmesh.fit.render_views import load_image_dataset
from PIL import Image


def test_render_writes_a_readable_dataset(cow_dataset):
    names = sorted(p.name for p in cow_dataset.glob("*.png"))
    assert names == [f"view_{i:03d}.png" for i in range(4)]
    cams, listed, extras = read_cameras_json(cow_dataset / "cameras.json")
    assert listed == names and len(cams) == 4
    assert extras["image_size"] == [48, 48] and extras["light_location"] == [0.0, 0.0, -3.0]
    payload = json.loads((cow_dataset / "cameras.json").read_text())
    assert {"dist", "elev", "azim", "R", "T", "fov"} <= set(payload["views"][1])
    for name in names:
        with Image.open(cow_dataset / name) as im:
            assert im.mode == "RGBA" and im.size == (48, 48)
            alpha = np.asarray(im)[..., 3]
            assert 0.05 < (alpha > 127).mean() < 0.9  # the cow covers part of the view
    data = load_image_dataset(cow_dataset)
    assert data.rgb.shape == (4, 48, 48, 3) and data.silhouette.shape == (4, 48, 48)
    # Background is white, the object is not.
    assert torch.all(data.rgb[data.silhouette == 0] == 1.0)
    assert data.rgb[data.silhouette > 0.9].mean() < 0.95


def test_render_fish_without_texture_and_without_normalizing(runner, tmp_path):
    out = tmp_path / "fish"
    result = runner.invoke(cli, ["render", "fish_low_resolution", "--views", "2", "--image-size", "24",
                                 "--dist", "3", "--no-normalize", "--quiet", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(out)  # --quiet prints only where the outputs went
    payload = json.loads((out / "cameras.json").read_text())
    assert "normalization" not in payload and payload["views"][0]["dist"] == 3.0
    assert len(list(out.glob("view_*.png"))) == 2
