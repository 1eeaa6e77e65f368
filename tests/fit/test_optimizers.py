"""The optimizer choice (sgd / largesteps): defaults, the parameterization, the commands."""

from __future__ import annotations

import itertools
import json
from types import SimpleNamespace

import pytest
import torch
from diffmesh.fit import ShapeConfig, fit_shape
from diffmesh.fit.cli import cli
from diffmesh.fit.loop import MomentumSGD
from diffmesh.fit.optimizers import DEFAULTS, Parameterization, lr_factor, resolve_defaults
from diffmesh.meshio import ico_sphere

SMALL = [
    "--iters",
    "20",
    "--level",
    "2",
    "--samples",
    "500",
    "--plot-every",
    "10",
    "--device",
    "cpu",
]


def test_resolve_defaults_keeps_what_was_given():
    options = {
        "optimizer": "largesteps",
        "lr": 1.0,
        "lambda_": 10.0,
        "w_edge": 1.0,
        "w_normal": 0.5,
        "w_laplacian": 0.1,
        "samples": 5000,
    }
    resolved = resolve_defaults("shape", options, given={"w_normal"})
    assert resolved == {**options, **DEFAULTS["shape"]["largesteps"], "w_normal": 0.5}
    assert resolve_defaults("images", {"optimizer": "sgd"}, set())["w_laplacian"] == 1.0
    with pytest.raises(ValueError, match="--optimizer"):
        resolve_defaults("shape", {"optimizer": "adam"}, set())


def test_parameterizations_start_at_the_sphere():
    sphere = ico_sphere(2)
    colors = torch.zeros(1, 162, 3, requires_grad=True)
    sgd = Parameterization(sphere, "sgd", lr=1.0, momentum=0.9, lambda_=10.0, extra=[colors])
    assert isinstance(sgd.optimizer, MomentumSGD) and sgd.matrix is None
    assert sgd.params[0] is sgd.offsets() and sgd.params[1] is colors
    large = Parameterization(
        sphere, "largesteps", lr=0.02, momentum=0.9, lambda_=10.0, extra=[colors]
    )
    assert large.matrix is not None and large.params[0].is_leaf and large.params[1] is colors
    torch.testing.assert_close(large.offsets(), torch.zeros(162, 3), rtol=0, atol=1e-5)
    assert large.settings()["optimizer"] == "largesteps"
    with pytest.raises(ValueError, match="optimizer"):
        Parameterization(sphere, "adam", lr=1.0, momentum=0.9, lambda_=10.0)


def test_largesteps_step_is_smooth_and_moves_every_vertex():
    """One step on a gradient at a single vertex moves the whole neighbourhood (M^-1 smooths
    it), unlike SGD, which moves that vertex alone."""
    sphere = ico_sphere(2)
    steps = {}
    for kind in ("sgd", "largesteps"):
        param = Parameterization(sphere, kind, lr=0.01, momentum=0.9, lambda_=10.0)
        param.optimizer.zero_grad()
        param.offsets()[0, 2].backward()
        param.optimizer.step()
        with torch.no_grad():
            steps[kind] = param.offsets().norm(dim=1)
    assert int((steps["sgd"] > 0).sum()) == 1
    assert int((steps["largesteps"] > 1e-3 * float(steps["largesteps"].max())).sum()) > 20
    assert torch.isfinite(steps["largesteps"]).all()


def test_shape_with_largesteps_records_its_settings(runner, tmp_path, fast_eval):
    out = tmp_path / "ls"
    result = runner.invoke(
        cli, ["shape", *SMALL, "--optimizer", "largesteps", "--w-normal", "0.5", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    config = metrics["config"]
    assert (
        config["optimizer"] == "largesteps"
        and config["lr"] == DEFAULTS["shape"]["largesteps"]["lr"]
    )
    assert config["lambda_"] == 10.0 and config["w_edge"] == 0.0 and config["w_normal"] == 0.5
    assert config["w_laplacian"] == 0.03 and config["lr_schedule"] == "constant"
    assert (
        metrics["optimizer"]["optimizer"] == "largesteps"
        and metrics["optimizer"]["step"] == "AdamUniform"
    )
    assert 0.0 <= metrics["flipped_faces"] <= 1.0 and "flipped_faces" in metrics["targets"][0]
    assert metrics["chamfer"] < 0.9 * metrics["initial_losses"]["chamfer"]  # steps of at most lr
    assert metrics["targets"][0]["finite"]


def test_shape_interrupted_largesteps_writes_the_best_vertices():
    """The loop keeps the best u; the written mesh is M^-1 u, not u itself."""
    stop_at = 5

    def callback(iteration, losses):
        if iteration == stop_at:
            raise KeyboardInterrupt

    result = fit_shape(
        ShapeConfig(
            iters=20,
            level=1,
            samples=200,
            device="cpu",
            quiet=True,
            eval_draws=1,
            eval_samples=500,
            eval_dense_samples=0,
            optimizer="largesteps",
            lr=0.02,
            w_edge=0.0,
            w_normal=0.0,
            w_laplacian=0.0,
            callback=callback,
        )
    )
    assert result.interrupted
    assert float(result.fitted_normalized.verts_packed().norm(dim=1).max()) < 1.5


def test_config_rejects_a_bad_optimizer_or_lambda():
    with pytest.raises(ValueError, match="optimizer"):
        ShapeConfig(optimizer="adam")
    with pytest.raises(ValueError, match="lambda_"):
        ShapeConfig(lambda_=-1.0)


def test_images_with_largesteps_records_its_settings():
    from diffmesh.fit import ImagesConfig, fit_images

    result = fit_images(
        ImagesConfig(
            views=2,
            image_size=16,
            iters=3,
            level=1,
            device="cpu",
            quiet=True,
            eval_samples=500,
            eval_draws=1,
            eval_dense_samples=0,
            optimizer="largesteps",
            lr=0.01,
            w_edge=0.0,
            w_normal=0.0,
            w_laplacian=0.0,
        )
    )
    metrics = result.metrics
    assert (
        metrics["config"]["optimizer"] == "largesteps"
        and metrics["optimizer"]["solver"] == "cholesky"
    )
    assert metrics["optimizer"]["extra_params"] == "SGD lr 1.0 momentum 0.9"
    assert 0.0 <= metrics["flipped_faces"] <= 1.0 and metrics["finite"]


def test_lr_factor_constant_and_cosine():
    iters, start, final = 100, 0.5, 0.05
    assert all(
        lr_factor("constant", i, iters, start=start, final=final) == 1.0 for i in range(iters)
    )
    factors = [lr_factor("cosine", i, iters, start=start, final=final) for i in range(iters)]
    assert factors[: int(start * iters) + 1] == [1.0] * (int(start * iters) + 1)
    assert all(b <= a for a, b in itertools.pairwise(factors))  # never rises
    assert factors[-1] == pytest.approx(final, rel=1e-12)
    # halfway through the decay the half cosine is at the mean of its ends
    assert lr_factor("cosine", 50, 101, start=0.0, final=final) == pytest.approx((1 + final) / 2)
    # one iteration: nothing to decay
    assert lr_factor("cosine", 0, 1, start=0.0, final=final) == 1.0
    with pytest.raises(ValueError, match="schedule"):
        lr_factor("linear", 0, iters, start=start, final=final)
    with pytest.raises(ValueError, match="start"):
        lr_factor("cosine", 0, iters, start=1.0, final=final)
    with pytest.raises(ValueError, match="final"):
        lr_factor("cosine", 0, iters, start=start, final=0.0)


@pytest.mark.parametrize("kind", ["sgd", "largesteps"])
def test_set_lr_factor_scales_the_geometry_step(kind):
    """The first step of SGD and of AdamUniform is proportional to the learning rate."""
    sphere = ico_sphere(1)
    steps = []
    for factor in (1.0, 0.25):
        param = Parameterization(sphere, kind, lr=0.01, momentum=0.9, lambda_=10.0)
        param.set_lr_factor(factor)
        param.optimizer.zero_grad()
        (param.offsets()[:, 2] * torch.linspace(0.0, 1.0, 42)).sum().backward()
        param.optimizer.step()
        with torch.no_grad():
            steps.append(param.offsets().clone())
    assert float(steps[0].abs().max()) > 0
    # float32 solves of M v = u: a few ulps of the step, times M's condition (about 1 + 12 lambda)
    atol = 16 * torch.finfo(torch.float32).eps * 121 * float(steps[0].abs().max())
    torch.testing.assert_close(steps[1], 0.25 * steps[0], rtol=0, atol=atol)


def test_shape_cosine_schedule_changes_only_the_decay():
    """Up to lr_decay_start x iters the cosine fit is the constant one; after, it differs."""
    histories = {}
    for schedule in ("constant", "cosine"):
        result = fit_shape(
            ShapeConfig(
                iters=20,
                level=1,
                samples=200,
                device="cpu",
                quiet=True,
                eval_draws=1,
                eval_samples=500,
                eval_dense_samples=0,
                optimizer="largesteps",
                lr=0.05,
                w_edge=0.0,
                w_normal=0.0,
                w_laplacian=0.0,
                lr_schedule=schedule,
                lr_decay_start=0.5,
                lr_final=0.1,
            )
        )
        histories[schedule] = result.history["chamfer"]
    # steps 0..10 of 20 are at the full rate in both (the losses of iteration i come before
    # its step): the losses of iterations 0..11 are the same, the last ones are not
    assert histories["constant"][:12] == histories["cosine"][:12]
    assert histories["constant"][12:] != histories["cosine"][12:]


def test_shape_records_the_schedule(runner, tmp_path, fast_eval):
    out = tmp_path / "cosine"
    result = runner.invoke(
        cli,
        [
            "shape",
            *SMALL,
            "--optimizer",
            "largesteps",
            "--lr-schedule",
            "cosine",
            "--lr-decay-start",
            "0.25",
            "--lr-final",
            "0.1",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    config = json.loads((out / "metrics.json").read_text())["config"]
    assert config["lr_schedule"] == "cosine"
    assert config["lr_decay_start"] == 0.25 and config["lr_final"] == 0.1
    result = runner.invoke(
        cli, ["shape", *SMALL, "--lr-final", "0", "--out", str(tmp_path / "bad")]
    )
    assert result.exit_code == 2 and "--lr-final" in result.output


def test_config_rejects_a_bad_schedule():
    with pytest.raises(ValueError, match="lr_schedule"):
        ShapeConfig(lr_schedule="step")
    with pytest.raises(ValueError, match="lr_decay_start"):
        ShapeConfig(lr_decay_start=1.0)
    with pytest.raises(ValueError, match="lr_final"):
        ShapeConfig(lr_final=1.5)


@pytest.mark.parametrize(
    ("extra", "kept"),
    [([], {}), (["--w-silhouette", "2", "--lr", "0.5"], {"w_silhouette": 2.0, "lr": 0.5})],
)
def test_images_largesteps_takes_its_defaults_unless_given(
    runner, tmp_path, monkeypatch, extra, kept
):
    """`fit images --optimizer largesteps` builds its config from ``DEFAULTS["images"]["largesteps"]``
    (captured; nothing is fitted); an option given on the command line wins."""
    import diffmesh.fit.images as images

    seen = []

    def fake_fit_images(config):
        seen.append(config)
        metrics = {
            "iterations": 0,
            "seconds": 0.0,
            "iterations_per_second": None,
            "iou_mean": 0.0,
            "iou_worst": 0.0,
            "psnr": 0.0,
        }
        return SimpleNamespace(metrics=metrics, files=[], interrupted=False)

    monkeypatch.setattr(images, "fit_images", fake_fit_images)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["images", "--optimizer", "largesteps", *extra])
    assert result.exit_code == 0, result.output
    (config,) = seen
    expected = {**DEFAULTS["images"]["largesteps"], **kept}
    assert {k: getattr(config, k) for k in expected} == expected
    assert config.optimizer == "largesteps" and config.w_rgb == 1.0 and config.iters == 2000


@pytest.mark.parametrize("command", ["shape", "images"])
def test_help_names_the_largesteps_defaults(runner, command):
    """`--help` lists each optimizer-dependent default of largesteps as the option to give."""
    result = runner.invoke(cli, [command, "--help"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # undo the help's line wrapping
    for key, flag in (("lr", "--lr"), ("lambda_", "--lambda"), ("w_normal", "--w-normal"),
                      ("w_laplacian", "--w-laplacian")):
        assert f"{flag} {DEFAULTS[command]['largesteps'][key]:g}" in text, (key, text)
    assert "fit images: --lr 0.03, --lambda 3," in text
