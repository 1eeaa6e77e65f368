"""`fit render`: PNGs + cameras.json in the format `fit images --images` reads."""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
from pathlib import Path

import diffmesh.fit.render_dataset as render_dataset
import numpy as np
import torch
from diffmesh.fit.cameras_io import read_cameras_json
from diffmesh.fit.cli import cli
from diffmesh.fit.data import bundled_path
from diffmesh.fit.render_dataset import RenderConfig
from diffmesh.fit.render_views import (
    TUTORIAL_LIGHT,
    load_image_dataset,
    render_targets,
    tutorial_cameras,
)
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


def test_render_over_an_earlier_dataset_replaces_it(runner, tmp_path):
    """Fewer views into a folder that holds an earlier `fit render`: its stale views go (so that
    `fit images --images` accepts the folder), files it did not write stay."""
    out = tmp_path / "data"
    args = ["render", "fish_low_resolution", "--image-size", "16", "--device", "cpu", "--quiet", "--out", str(out)]
    assert runner.invoke(cli, [*args, "--views", "5"]).exit_code == 0
    (out / "notes.txt").write_text("mine")
    result = runner.invoke(cli, [*args, "--views", "2"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["cameras.json", "notes.txt", "view_000.png", "view_001.png"]
    _, names, _ = read_cameras_json(out / "cameras.json")
    assert names == ["view_000.png", "view_001.png"]
    fit = runner.invoke(cli, ["images", "--images", str(out), "--iters", "1", "--level", "0", "--device", "cpu",
                              "--quiet", "--out", str(tmp_path / "fit")])
    assert fit.exit_code == 0, fit.output


def test_cli_defaults_are_the_tutorials(runner, tmp_path, monkeypatch):
    """`fit render MESH` builds the tutorial's config, renders with its settings (no pixels drawn)."""
    seen = []
    real_render_dataset = render_dataset.render_dataset
    monkeypatch.setattr(render_dataset, "render_dataset",
                        lambda config: seen.append(config) or render_dataset.RenderResult(names=[]))
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["render", "cow", "--quiet"])
    assert result.exit_code == 0, result.output
    (config,) = seen
    expected = {"mesh": bundled_path("cow"), "out": Path("fit-out") / "render-cow", "views": 20, "image_size": 128,
                "dist": 2.7, "normalize": True, "device": "auto", "quiet": True}
    assert {k: getattr(config, k) for k in expected} == expected
    assert config == RenderConfig(mesh=config.mesh, out=config.out, quiet=True)
    params = {p.name: p.default for p in cli.commands["render"].params}
    assert params["views"] == 20 and params["image_size"] == 128 and params["dist"] == 2.7
    assert params["device"] == "auto"

    # What render_dataset does with that config: the tutorial's cameras, light and soft
    # silhouette (sigma 1e-4, 50 faces per pixel), rendering stubbed out.
    calls = []

    def fake_render_targets(mesh, cameras, image_size, **kwargs):
        calls.append((cameras, image_size, kwargs))
        n = len(cameras)
        return torch.zeros(n, image_size, image_size, 3), torch.zeros(n, image_size, image_size)

    monkeypatch.setattr(render_dataset, "render_targets", fake_render_targets)
    out = tmp_path / "views"
    real_render_dataset(dataclasses.replace(config, out=out, device="cpu"))
    assert sum(len(c[0]) for c in calls) == 20 and all(c[1] == 128 for c in calls)
    assert all(c[2] == {"light_location": TUTORIAL_LIGHT} for c in calls) and TUTORIAL_LIGHT == (0.0, 0.0, -3.0)
    defaults = {k: p.default for k, p in inspect.signature(render_targets).parameters.items()}
    assert defaults["sigma"] == 1e-4 and defaults["faces_per_pixel"] == 50 and defaults["light_location"] == TUTORIAL_LIGHT
    assert inspect.signature(tutorial_cameras).parameters["dist"].default == 2.7
    R = torch.cat([c[0].R for c in calls])
    T = torch.cat([c[0].T for c in calls])
    centres = -(R @ T[:, :, None])[..., 0]  # camera centre C = -R T (row vectors: X R + T = 0)
    torch.testing.assert_close(centres.norm(dim=1), torch.full((20,), 2.7))
    payload = json.loads((out / "cameras.json").read_text())
    assert payload["light_location"] == [0.0, 0.0, -3.0] and payload["image_size"] == [128, 128]
    assert [v["dist"] for v in payload["views"]] == [2.7] * 20
    elev = [v["elev"] for v in payload["views"]]
    azim = [v["azim"] for v in payload["views"]]
    assert elev[0] == 0.0 and math.isclose(elev[-1], 360.0) and azim[0] == -180.0 and math.isclose(azim[-1], 180.0)
