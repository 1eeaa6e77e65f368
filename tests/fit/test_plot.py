"""The loss plot: a PNG with the expected size, colours where the curves are, robust to bad values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from diffmesh.fit.plot import PALETTE, plot_losses, save_loss_plot
from PIL import Image


def _colour_pixels(image: Image.Image, colour: tuple[int, int, int]) -> int:
    array = np.asarray(image.convert("RGB")).astype(int)
    return int((np.abs(array - np.array(colour)).sum(-1) < 30).sum())


def test_every_series_is_drawn_in_its_colour(tmp_path):
    it = np.arange(300)
    curves = {"total": 0.5 * np.exp(-it / 50) + 1e-3, "chamfer": 0.4 * np.exp(-it / 40) + 5e-4,
              "edge": np.full(300, 2e-2)}
    path = save_loss_plot(tmp_path / "losses.png", curves, title="test")
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (900, 560)
        for k in range(3):
            assert _colour_pixels(image, PALETTE[k]) > 200  # a line, not just the legend swatch


def test_log_scale_puts_decades_evenly():
    # A straight line on a log axis: y = 10^(-x/100) must map to a straight pixel line.
    it = np.arange(401)
    image = plot_losses({"a": 10.0 ** (-it / 100.0)})
    array = np.asarray(image).astype(int)
    mask = np.abs(array - np.array(PALETTE[0])).sum(-1) < 30
    mask[:, 600:] = False  # ignore the legend swatch (top right)
    ys, xs = np.nonzero(mask)
    slope, intercept = np.polyfit(xs, ys, 1)
    residual = np.abs(ys - (slope * xs + intercept))
    assert slope > 0  # y pixel grows downwards as the loss decreases
    assert np.median(residual) < 2.0


def test_bad_values_break_the_line_without_failing():
    values = [1.0, math.nan, 0.5, -1.0, 0.0, math.inf, 0.1, 0.05]
    image = plot_losses({"x": values, "all-bad": [math.nan, 0.0]})
    assert image.size == (900, 560)


def test_rejects_empty_input():
    with pytest.raises(ValueError, match="curves"):
        plot_losses({})
    with pytest.raises(ValueError, match="size"):
        plot_losses({"a": [1.0]}, size=(10, 10))
