"""`fit images`: the real command on the bundled cow and on a `fit render` folder."""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
from pathlib import Path
from types import SimpleNamespace

import diffmesh.fit.images as images
import numpy as np
import pytest
import torch
from diffmesh.fit import ImagesConfig, fit_images
from diffmesh.fit.cli import cli
from diffmesh.fit.render_views import TUTORIAL_LIGHT, render_soft, render_targets, tutorial_cameras
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
        "fitted.glb", "fitted.obj", "fitted.ply", "fitted_normalized.obj", "losses.png", "metrics.json", "progress.gif", "views.png"]
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
        "fitted.glb", "fitted.obj", "fitted.ply", "fitted_normalized.obj", "losses.png", "metrics.json", "progress.gif", "views.png"]
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


def test_ctrl_c_after_the_loop_keeps_the_fitted_mesh(runner, tmp_path, monkeypatch, fast_eval):
    """Ctrl-C while the fitted mesh is rendered from every view (after the last iteration):
    fitted.obj, with its vertex colours, is published with a metrics.json that says the set
    is incomplete; the command exits 130."""

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(images, "_render_all", interrupted)
    out = tmp_path / "stopped"
    result = runner.invoke(cli, ["images", "--views", "3", "--image-size", "24", "--iters", "4", "--level", "1",
                                 "--plot-every", "2", "--device", "cpu", "--quiet", "--out", str(out)])
    assert result.exit_code == 130, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "fitted.glb", "fitted.obj", "fitted.ply", "fitted_normalized.obj", "metrics.json"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["interrupted"] and "incomplete" in metrics and "iou_mean" not in metrics
    assert metrics["files"] == [
        "fitted.obj", "fitted.ply", "fitted.glb", "fitted_normalized.obj", "metrics.json"]
    text = (out / "fitted.obj").read_text()
    vertex = next(line for line in text.splitlines() if line.startswith("v "))
    assert len(vertex.split()) == 7  # x y z r g b


def test_python_api_and_config_checks():
    result = fit_images(ImagesConfig(views=2, image_size=16, iters=2, level=1, device="cpu", quiet=True,
                                     eval_samples=1000, eval_draws=1, eval_dense_samples=2000, eval_dense_draws=1))
    assert result.metrics["chamfer_eval"]["samples"] == 1000
    assert result.metrics["chamfer_dense_eval"] == {"samples": 2000, "draws": 1, "frame": "normalized"}
    assert result.metrics["chamfer_dense"] > 0
    assert result.files == [] and result.metrics["iterations"] == 2
    assert result.fitted.verts_packed().shape == (42, 3)
    with pytest.raises(ValueError, match="not both"):
        ImagesConfig(target_mesh="cow", images=".")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="image_size"):
        ImagesConfig(image_size=0)


class _StopBeforeTheLoop(Exception):
    pass


def test_cli_defaults_are_the_tutorials(runner, tmp_path, monkeypatch):
    """`fit images` with no options builds the tutorial's config, and the pipeline turns it into
    the tutorial's targets, renderer and loss (captured; nothing is fitted, no image rendered)."""
    seen = []

    def fake_fit_images(config):
        seen.append(config)
        metrics = {"iterations": 0, "seconds": 0.0, "iterations_per_second": None, "iou_mean": 0.0,
                   "iou_worst": 0.0, "psnr": 0.0}
        return SimpleNamespace(metrics=metrics, files=[], interrupted=False)

    monkeypatch.setattr(images, "fit_images", fake_fit_images)
    monkeypatch.setattr(images, "ImagesConfig", ImagesConfig)  # the real defaults, not the cheap eval
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["images"])
    assert result.exit_code == 0, result.output
    (config,) = seen
    expected = {
        "target_mesh": None, "images": None, "views": 20, "image_size": 128, "views_per_iter": 2, "level": 4,
        "iters": 2000, "lr": 1.0, "momentum": 0.9, "w_silhouette": 1.0, "w_rgb": 1.0, "w_edge": 1.0,
        "w_normal": 0.01, "w_laplacian": 1.0, "sigma": 1e-4, "faces_per_pixel": 50, "plot_every": None,
        "device": "auto", "seed": 0, "quiet": False, "out": Path("fit-out") / "images-cow",
        "eval_samples": 10000, "eval_draws": 5, "eval_dense_samples": 200_000, "eval_dense_draws": 2,
    }
    assert {k: getattr(config, k) for k in expected} == expected
    assert config == ImagesConfig(out=config.out)  # the Python API's defaults agree
    params = {p.name: p.default for p in cli.commands["images"].params}
    for name in ("views_per_iter", "level", "iters", "lr", "momentum", "w_silhouette", "w_rgb", "w_edge",
                 "w_normal", "w_laplacian", "plot_every", "device", "seed"):
        assert params[name] == getattr(ImagesConfig, name) == expected[name], name
    assert params["views"] is None and params["image_size"] is None  # 20 and 128 filled in by the command

    # The pipeline on that config: targets, soft rasterizer, light, per-iteration renders and
    # the weighted loss, with every render stubbed out.
    calls: dict[str, list] = {"targets": [], "cameras": [], "settings": [], "lights": [], "soft": [], "optimize": []}

    def fake_render_targets(mesh, cameras, image_size, **kwargs):
        calls["targets"].append((len(cameras), image_size, kwargs))
        n = len(cameras)
        return torch.ones(n, image_size, image_size, 3), torch.zeros(n, image_size, image_size)

    def record(key, func):
        def wrapper(*args, **kwargs):
            out = func(*args, **kwargs)
            calls[key].append((args, kwargs, out))
            return out
        return wrapper

    def fake_render_soft(meshes, cameras, lights, settings, **kwargs):
        calls["soft"].append((len(meshes), settings, kwargs))
        return torch.full((len(meshes), 128, 128, 4), 0.25, requires_grad=True)

    def fake_optimize(params, step, **kwargs):
        terms = step(0)
        calls["optimize"].append((kwargs, terms))
        raise _StopBeforeTheLoop

    monkeypatch.setattr(images, "render_targets", fake_render_targets)
    monkeypatch.setattr(images, "tutorial_cameras", record("cameras", images.tutorial_cameras))
    monkeypatch.setattr(images, "soft_settings", record("settings", images.soft_settings))
    monkeypatch.setattr(images, "PointLights", record("lights", images.PointLights))
    monkeypatch.setattr(images, "render_soft", fake_render_soft)
    monkeypatch.setattr(images, "optimize", fake_optimize)
    with pytest.raises(_StopBeforeTheLoop):
        fit_images(dataclasses.replace(config, out=None, device="cpu", quiet=True))

    assert calls["targets"] == [(20, 128, {"sigma": 1e-4, "faces_per_pixel": 50})]
    defaults = {k: p.default for k, p in inspect.signature(render_targets).parameters.items()}
    assert defaults["light_location"] == TUTORIAL_LIGHT == (0.0, 0.0, -3.0)
    assert inspect.signature(render_soft).parameters["sigma"].default == 1e-4
    # 20 cameras at distance 2.7 (the tutorial's default distance).
    ((args, kwargs, cams),) = calls["cameras"]
    assert args == (20,) and kwargs == {}
    assert inspect.signature(tutorial_cameras).parameters["dist"].default == 2.7
    centres = -(cams.R @ cams.T[:, :, None])[..., 0]  # camera centre C = -R T (row vectors)
    torch.testing.assert_close(centres.norm(dim=1), torch.full((20,), 2.7))
    ((_, _, settings),) = calls["settings"]
    assert settings.image_size == 128 and settings.faces_per_pixel == 50 and settings.perspective_correct is False
    assert settings.blur_radius == pytest.approx(math.log(1 / 1e-4 - 1) * 1e-4, rel=1e-12)  # 9.21e-4
    ((_, _, lights),) = calls["lights"]
    torch.testing.assert_close(lights.location, torch.tensor([[0.0, 0.0, -3.0]]))
    # One step: 2 views rendered with those settings and sigma; the loss weights as set.
    ((n_views, step_settings, soft_kwargs),) = calls["soft"]
    assert n_views == 2 and step_settings is settings and soft_kwargs == {"sigma": 1e-4}
    ((opt_kwargs, terms),) = calls["optimize"]
    assert opt_kwargs["iters"] == 2000 and opt_kwargs["lr"] == 1.0 and opt_kwargs["momentum"] == 0.9
    assert opt_kwargs["snapshot_every"] == 250
    weighted = (terms["silhouette"] + terms["rgb"] + terms["edge"] + 0.01 * terms["normal"]
                + terms["laplacian"])
    # five float32 products summed in another order: a few roundings of the total
    torch.testing.assert_close(terms["total"], weighted, rtol=8 * torch.finfo(torch.float32).eps, atol=0)
    assert terms["normal"].item() > 1e-4 and terms["laplacian"].item() > 1e-4  # so their weights show
    assert terms["silhouette"].item() == pytest.approx(0.0625) and terms["rgb"].item() == pytest.approx(0.5625)
