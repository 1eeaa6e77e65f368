"""`fit shape`: the real command on the bundled fish, every output checked, batches, Ctrl-C."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import diffmesh.fit.shape as shape
import pytest
import torch
from diffmesh.fit import ShapeConfig, fit_shape
from diffmesh.fit.cli import cli
from diffmesh.fit.data import bundled_path
from diffmesh.meshio import ico_sphere, load_obj, save_obj
from PIL import Image

SMALL = ["--iters", "30", "--level", "2", "--samples", "500", "--plot-every", "10", "--device", "cpu"]

METRIC_KEYS = {
    "command", "iterations", "iterations_requested", "interrupted", "mesh_written", "seconds",
    "iterations_per_second", "initial_losses", "final_losses", "chamfer", "chamfer_eval", "targets", "config",
    "device", "versions",
}


def _read_metrics(out):
    return json.loads((out / "metrics.json").read_text())


def test_shape_writes_every_output(runner, tmp_path):
    out = tmp_path / "fish"
    result = runner.invoke(cli, ["shape", *SMALL, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "chamfer" in result.stdout and str(out) in result.stdout
    # Not a terminal: no tqdm frames, plain loss lines and what the silent phases do.
    assert "\r" not in result.stderr
    assert "fit shape (fish_low_resolution): iteration 30/30" in result.stderr and "chamfer " in result.stderr
    assert "fit shape: rendering 1 target view" in result.stderr and "evaluating" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "fitted.glb", "fitted.obj", "fitted.ply", "fitted_normalized.obj", "losses.png", "metrics.json", "progress.gif"]

    metrics = _read_metrics(out)
    assert set(metrics) >= METRIC_KEYS
    assert metrics["iterations"] == 30 and not metrics["interrupted"] and metrics["device"] == "cpu"
    assert set(metrics["final_losses"]) == {"total", "chamfer", "edge", "normal", "laplacian"}
    (target,) = metrics["targets"]
    assert target["name"] == "fish_low_resolution"
    assert target["chamfer"] < 0.5 * metrics["initial_losses"]["chamfer"]  # 30 iterations already help
    assert target["finite"] and target["signed_volume"] > 0
    assert metrics["chamfer_eval"] == {"samples": 10000, "draws": 5, "frame": "normalized"}
    assert 0 < metrics["chamfer_floor"] == target["chamfer_floor"] < target["chamfer"]
    # the dense measure, at the tests' cheap size (conftest), with its own floor
    assert metrics["chamfer_dense_eval"] == {"samples": 3000, "draws": 1, "frame": "normalized"}
    assert 0 < metrics["chamfer_dense_floor"] == target["chamfer_dense_floor"] < target["chamfer_dense"]
    assert metrics["chamfer_dense"] == target["chamfer_dense"]

    # The two meshes: level-2 sphere topology, and fitted = normalized * scale + center.
    verts, faces, _ = load_obj(str(out / "fitted.obj"), load_textures=False)
    verts_n, faces_n, _ = load_obj(str(out / "fitted_normalized.obj"), load_textures=False)
    assert verts.shape == (162, 3) and faces.verts_idx.shape == (320, 3)
    assert torch.equal(faces.verts_idx, faces_n.verts_idx)
    center, scale = torch.tensor(target["center"]), target["scale"]
    assert torch.allclose(verts, verts_n * scale + center, atol=1e-5)
    assert verts_n.abs().max() < 1.5 and torch.isfinite(verts).all()

    with Image.open(out / "losses.png") as im:
        assert im.format == "PNG" and im.size == (900, 560)
    with Image.open(out / "progress.gif") as gif:
        assert gif.n_frames == 4  # iterations 0, 10, 20 and the final 30


def test_shape_fits_several_targets_as_one_batch(runner, tmp_path, fast_eval):
    blob = ico_sphere(1)
    verts = blob.verts_packed() * torch.tensor([2.0, 0.7, 1.0]) + torch.tensor([5.0, 0.0, 0.0])
    save_obj(str(tmp_path / "blob.obj"), verts, blob.faces_packed())
    out = tmp_path / "two"
    result = runner.invoke(cli, ["shape", str(bundled_path("fish_low_resolution")), str(tmp_path / "blob.obj"),
                                 *SMALL, "--quiet", "--out", str(out)])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.glob("*.obj"))
    assert names == ["fitted_blob.obj", "fitted_blob_normalized.obj", "fitted_fish_low_resolution.obj",
                     "fitted_fish_low_resolution_normalized.obj"]
    metrics = _read_metrics(out)
    assert [t["name"] for t in metrics["targets"]] == ["fish_low_resolution", "blob"]
    assert metrics["final_losses"]["chamfer"] < 0.5 * metrics["initial_losses"]["chamfer"]
    blob_fit, _, _ = load_obj(str(out / "fitted_blob.obj"), load_textures=False)
    assert 3.0 < float(blob_fit[:, 0].mean()) < 7.0  # back in the blob's own frame
    with Image.open(out / "progress.gif") as gif:
        assert gif.n_frames == 4


def test_default_out_folder_is_named_after_the_target(runner, tmp_path, monkeypatch, fast_eval):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["shape", "--iters", "2", "--level", "1", "--samples", "50", "--quiet",
                                 "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # --quiet: no progress bar
    assert result.stdout.strip() == str(Path("fit-out") / "shape-fish_low_resolution")
    assert (tmp_path / "fit-out" / "shape-fish_low_resolution" / "fitted.obj").is_file()


def test_ctrl_c_writes_best_so_far_and_exits_130(runner, tmp_path, monkeypatch, fast_eval):
    from diffmesh.fit.progress import Progress

    original = Progress.update

    def update(self, iteration, losses=None):
        if iteration == 12:
            raise KeyboardInterrupt
        original(self, iteration, losses)

    monkeypatch.setattr(Progress, "update", update)
    out = tmp_path / "stopped"
    result = runner.invoke(cli, ["shape", *SMALL, "--out", str(out)])
    assert result.exit_code == 130, result.output
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Interrupted: stopped at iteration 13/30")
    metrics = _read_metrics(out)
    assert metrics["interrupted"] and metrics["mesh_written"] == "best-so-far"
    assert metrics["iterations"] == 13 and 0 <= metrics["best_iteration"] < 13
    verts, _, _ = load_obj(str(out / "fitted.obj"), load_textures=False)
    assert torch.isfinite(verts).all()
    with Image.open(out / "progress.gif") as gif:
        assert gif.n_frames == 2  # iterations 0 and 10 were recorded before the stop
    assert (out / "losses.png").is_file()


def test_ctrl_c_after_the_loop_keeps_the_fitted_mesh(runner, tmp_path, monkeypatch, fast_eval):
    """Ctrl-C during the final evaluation (after the last iteration): the meshes are published
    with a metrics.json that says the set is incomplete, the command exits 130, and nothing
    half-written is left."""

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(shape, "eval_chamfer_targets", interrupted)
    out = tmp_path / "stopped"
    result = runner.invoke(cli, ["shape", *SMALL, "--quiet", "--out", str(out)])
    assert result.exit_code == 130, result.output
    assert result.stderr.strip().splitlines()[-1].startswith("Interrupted")
    assert sorted(p.name for p in out.iterdir()) == [
        "fitted.glb", "fitted.obj", "fitted.ply", "fitted_normalized.obj", "metrics.json"]
    metrics = _read_metrics(out)
    assert metrics["interrupted"] and "incomplete" in metrics and "chamfer" not in metrics
    verts, faces, _ = load_obj(str(out / "fitted_normalized.obj"), load_textures=False)
    assert torch.isfinite(verts).all() and faces.verts_idx.shape == (320, 3)
    assert not torch.allclose(verts, ico_sphere(2).verts_packed())  # the fitted mesh, not the sphere


def test_python_api_without_outputs():
    result = fit_shape(ShapeConfig(iters=3, level=1, samples=100, device="cpu", quiet=True, eval_draws=1,
                                   eval_dense_samples=0))
    assert result.files == [] and result.metrics["iterations"] == 3
    assert "chamfer" in result.metrics and "chamfer_dense" not in result.metrics  # 0 skips the dense measure
    assert len(result.history["total"]) == 3
    assert result.fitted.verts_packed().shape == (42, 3)
    with pytest.raises(ValueError, match="iters"):
        ShapeConfig(iters=0)
    with pytest.raises(ValueError, match="w_edge"):
        ShapeConfig(w_edge=-1.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [("v 0 0 0\nv 0 0 0\nv 0 0 0\nf 1 2 3\n", "coincide"), ("v 0 0 0\nv 1 0 0\n", "no faces")],
)
def test_degenerate_targets_are_one_line_errors(runner, tmp_path, text, message):
    path = tmp_path / "degenerate.obj"
    path.write_text(text)
    result = runner.invoke(cli, ["shape", str(path), "--iters", "1", "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert message in result.stderr and "degenerate.obj" in result.stderr


def test_cli_defaults_are_the_tutorials(runner, tmp_path, monkeypatch):
    """`fit shape` with no options builds the tutorial's config (captured, no fit is run)."""
    seen = []

    def fake_fit_shape(config):
        seen.append(config)
        metrics = {"iterations": 0, "seconds": 0.0, "iterations_per_second": None, "chamfer": 0.0}
        return SimpleNamespace(metrics=metrics, files=[], interrupted=False)

    monkeypatch.setattr(shape, "fit_shape", fake_fit_shape)
    monkeypatch.setattr(shape, "ShapeConfig", ShapeConfig)  # the real defaults, not the cheap eval
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["shape"])
    assert result.exit_code == 0, result.output
    (config,) = seen
    expected = {
        "targets": ("fish_low_resolution",), "level": 4, "iters": 2000, "lr": 1.0, "momentum": 0.9,
        "samples": 5000, "w_chamfer": 1.0, "w_edge": 1.0, "w_normal": 0.01, "w_laplacian": 0.1,
        "plot_every": None, "device": "auto", "seed": 0, "quiet": False,
        "out": Path("fit-out") / "shape-fish_low_resolution", "eval_samples": 10000, "eval_draws": 5,
        "eval_dense_samples": 200_000, "eval_dense_draws": 2,
    }
    assert {k: getattr(config, k) for k in expected} == expected
    # The Python API's defaults agree with the command line's, option by option.
    assert config == ShapeConfig(out=config.out)
    params = {p.name: p.default for p in cli.commands["shape"].params}
    for name in expected.keys() - {"targets", "out", "quiet", "eval_samples", "eval_draws",
                                    "eval_dense_samples", "eval_dense_draws"}:
        assert params[name] == getattr(ShapeConfig, name) == expected[name], name
