"""Shared fixtures of the fit app's tests: a CliRunner and a small rendered dataset."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from click.testing import CliRunner
from diffmesh.fit.cli import cli


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="session")
def cow_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`fit render cow` with 4 views at 48 px (rendered once per session)."""
    out = tmp_path_factory.mktemp("cow-views")
    result = CliRunner().invoke(
        cli, ["render", "cow", "--views", "4", "--image-size", "48", "--device", "cpu", "--quiet", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(autouse=True)
def cheap_dense_eval(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the dense chamfer measure (200k samples, 2 draws) cheap, 3000 samples and 1 draw,
    wherever the config is built through the modules (the CLI's way). Its code runs as in a
    real fit; only the sample count is smaller. Tests that import the config classes
    themselves get the real defaults unless they set them."""
    import diffmesh.fit.images as images
    import diffmesh.fit.shape as shape

    cheap = {"eval_dense_samples": 3000, "eval_dense_draws": 1}
    monkeypatch.setattr(shape, "ShapeConfig", functools.partial(shape.ShapeConfig, **cheap))
    monkeypatch.setattr(images, "ImagesConfig", functools.partial(images.ImagesConfig, **cheap))


@pytest.fixture
def fast_eval(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the commands' final chamfer measure cheap (2000 samples, 1 draw).

    The measure itself (10k samples, 5 draws) is checked by the tests that do not use this
    fixture; elsewhere it would dominate the run time of few-iteration fits.
    """
    import diffmesh.fit.images as images
    import diffmesh.fit.shape as shape

    monkeypatch.setattr(shape, "ShapeConfig", functools.partial(shape.ShapeConfig, eval_samples=2000, eval_draws=1))
    monkeypatch.setattr(images, "ImagesConfig", functools.partial(images.ImagesConfig, eval_samples=2000, eval_draws=1))
