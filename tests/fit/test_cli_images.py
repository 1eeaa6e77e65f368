"""`fit images`: the real command on the bundled cow and on a `fit render` folder."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from diffmesh.fit import ImagesConfig, fit_images
from diffmesh.fit.cli import cli
from diffmesh.meshio import load_obj
from PIL import Image

SMALL = ["--iters", "6", "--level", "2", "--plot-every", "3", "--device", "cpu", "--quiet"]

METRIC_KEYS = {
    "command", "source", "views", "image_size", "iterations", "interrupted", "mesh_written", "seconds",
    "iterations_per_second", "final_losses", "iou_mean", "iou_worst", "iou_per_view", "psnr", "config",
    "device", "versions",
}


def _vertex_colours(path):
    rows = [line.split()[1:] for line in path.read_text().splitlines() if line.startswith("v ")]
    return torch.tensor([[float(x) for x in row] for row in rows])


def test_images_from_the_bundled_cow_writes_every_output(runner, tmp_path):
    out = tmp_path / "cow"
    result = runner.invoke(cli, ["images", "--views", "4", "--image-size", "32", *SMALL, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "fitted.obj", "fitted_normalized.obj", "losses.png", "metrics.json", "progress.gif", "views.png"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) >= METRIC_KEYS and "chamfer" in metrics
    assert metrics["views"] == 4 and metrics["image_size"] == [32, 32] and metrics["iterations"] == 6
    assert set(metrics["final_losses"]) == {"total", "silhouette", "rgb", "edge", "normal", "laplacian"}
    assert 0.0 <= metrics["iou_worst"] <= metrics["iou_mean"] <= 1.0 and len(metrics["iou_per_view"]) == 4
    assert np.isfinite(metrics["psnr"])

    rows = _vertex_colours(out / "fitted.obj")
    assert rows.shape == (162, 6)  # v x y z r g b, level-2 sphere
    assert torch.isfinite(rows).all() and rows[:, 3:].min() >= 0 and rows[:, 3:].max() <= 1
    verts, faces, _ = load_obj(str(out / "fitted_normalized.obj"), load_textures=False)
    assert faces.verts_idx.shape == (320, 3) and torch.isfinite(verts).all()
    with Image.open(out / "progress.gif") as gif:
        assert gif.n_frames == 3  # iterations 0, 3 and the final 6
    with Image.open(out / "views.png") as im:
        assert im.width > 4 * 64 and im.height > 32


def test_round_trip_through_fit_render(runner, cow_dataset, tmp_path, fast_eval):
    out = tmp_path / "fit"
    result = runner.invoke(cli, ["images", "--images", str(cow_dataset), *SMALL, "--out", str(out)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["views"] == 4 and metrics["image_size"] == [48, 48]
    assert "chamfer" not in metrics  # no target mesh, only images
    assert sorted(p.name for p in out.iterdir()) == [
        "fitted.obj", "fitted_normalized.obj", "losses.png", "metrics.json", "progress.gif", "views.png"]
    # cameras.json records the normalization of `fit render`: fitted.obj is back in the cow's frame.
    norm = json.loads((cow_dataset / "cameras.json").read_text())["normalization"]
    verts, _, _ = load_obj(str(out / "fitted.obj"), load_textures=False)
    verts_n, _, _ = load_obj(str(out / "fitted_normalized.obj"), load_textures=False)
    assert torch.allclose(verts, verts_n * norm["scale"] + torch.tensor(norm["center"]), atol=1e-5)


def test_ctrl_c_during_images(runner, tmp_path, monkeypatch, fast_eval):
    from diffmesh.fit.progress import Progress

    original = Progress.update

    def update(self, iteration, losses=None):
        if iteration == 3:
            raise KeyboardInterrupt
        original(self, iteration, losses)

    monkeypatch.setattr(Progress, "update", update)
    out = tmp_path / "stopped"
    result = runner.invoke(cli, ["images", "--views", "3", "--image-size", "24", "--iters", "50", "--level", "1",
                                 "--plot-every", "2", "--device", "cpu", "--out", str(out)])
    assert result.exit_code == 130, result.output
    assert result.stderr.strip().splitlines()[-1].startswith("Interrupted: stopped at iteration 4/50")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["interrupted"] and metrics["iterations"] == 4 and metrics["mesh_written"] == "best-so-far"
    assert (out / "fitted.obj").is_file() and (out / "views.png").is_file()
    with Image.open(out / "progress.gif") as gif:
        assert gif.n_frames == 2  # iterations 0 and 2


def test_python_api_and_config_checks():
    result = fit_images(ImagesConfig(views=2, image_size=16, iters=2, level=1, device="cpu", quiet=True,
                                     eval_samples=1000, eval_draws=1))
    assert result.metrics["chamfer_eval"]["samples"] == 1000
    assert result.files == [] and result.metrics["iterations"] == 2
    assert result.fitted.verts_packed().shape == (42, 3)
    with pytest.raises(ValueError, match="not both"):
        ImagesConfig(target_mesh="cow", images=".")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="image_size"):
        ImagesConfig(image_size=0)
