"""Quality bars: the issue's bars on the full default runs, and bars on shortened schedules.

The default runs are the commands with no options (the fish: 2000 iterations, about 35 s on
the 2-core CI machine; the cow: 2000 iterations over 20 views, 3-4 minutes, so it runs only
with ``DIFFMESH_FULL_RUNS=1``; the cow's short schedule below runs everywhere). The short
schedules run the same pipelines on a smaller sphere and fewer iterations, with bars set from
measured runs (fish: chamfer 3.7e-3 and 4.3e-3 measured; cow: mean IoU 0.854 measured) and a
margin, so that a regression shows up in seconds.
"""

from __future__ import annotations

import math
import os

import pytest
import torch
from diffmesh.fit import ImagesConfig, ShapeConfig, fit_images, fit_shape


@pytest.mark.slow
def test_fish_short_schedule_reaches_its_bar():
    result = fit_shape(ShapeConfig(level=2, samples=1000, iters=150, device="cpu", quiet=True,
                                   eval_samples=2000, eval_draws=1, eval_dense_samples=0))
    (target,) = result.metrics["targets"]
    assert target["chamfer"] <= 6e-3  # the starting sphere is at 0.61
    assert target["finite"] and target["signed_volume"] > 0  # not turned inside out
    assert torch.isfinite(result.fitted.verts_packed()).all()
    assert all(math.isfinite(v) for v in result.history["total"])


@pytest.mark.slow
def test_cow_short_schedule_reaches_its_bar():
    result = fit_images(ImagesConfig(views=8, image_size=48, level=2, iters=80, device="cpu", quiet=True,
                                     eval_samples=2000, eval_draws=1, eval_dense_samples=0))
    metrics = result.metrics
    assert metrics["iou_mean"] >= 0.80  # measured 0.854; the sphere starts near 0.5
    assert metrics["iou_worst"] >= 0.70
    assert metrics["finite"] and math.isfinite(metrics["psnr"])


@pytest.mark.slow
def test_fish_default_run_reaches_the_issue_bar():
    """`fit shape` with its defaults: chamfer <= 7e-4 (10k samples, mean of 5 draws, normalized
    frame; measured 5.3e-4, PyTorch3D's pipeline 5.5e-4), finite, not inside out."""
    result = fit_shape(ShapeConfig(device="cpu", quiet=True, eval_dense_samples=0))
    assert result.metrics["iterations"] == 2000
    (target,) = result.metrics["targets"]
    assert target["chamfer"] <= 7e-4  # the starting sphere is at 0.61
    assert target["finite"] and target["signed_volume"] > 0
    assert torch.isfinite(result.fitted.verts_packed()).all()


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("DIFFMESH_FULL_RUNS") != "1",
                    reason="3-4 minutes on 2 cores, past CI's budget: set DIFFMESH_FULL_RUNS=1 to run it")
def test_cow_default_run_reaches_the_issue_bar():
    """`fit images` with its defaults (the cow from 20 views at 128 px): mean silhouette IoU
    over the views >= 0.90 (measured 0.972, worst view 0.959)."""
    result = fit_images(ImagesConfig(device="cpu", quiet=True, eval_dense_samples=0))
    metrics = result.metrics
    assert metrics["iterations"] == 2000 and metrics["views"] == 20
    assert metrics["iou_mean"] >= 0.90
    assert metrics["iou_worst"] >= 0.85
    assert metrics["finite"] and math.isfinite(metrics["psnr"])
