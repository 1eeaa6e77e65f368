"""`fit shape` on point clouds and PLY/OFF meshes; portable source paths in the outputs."""

from __future__ import annotations

import json

import pytest
import torch
from diffmesh.fit import ShapeConfig, fit_shape
from diffmesh.fit.cli import cli
from diffmesh.fit.data import bundled_path
from diffmesh.fit.metrics import eval_chamfer
from diffmesh.fit.shape import load_shape_targets
from diffmesh.meshio import load_objs_as_meshes, save_off, save_ply, save_pointcloud
from diffmesh.meshloss import sample_points_from_meshes
from PIL import Image

TINY = ["--iters", "4", "--level", "1", "--samples", "200", "--device", "cpu", "--quiet"]


def _fish_cloud(count: int, seed: int = 12345) -> tuple[torch.Tensor, torch.Tensor]:
    fish = load_objs_as_meshes([str(bundled_path("fish_low_resolution"))], load_textures=False)
    torch.manual_seed(seed)
    points, normals = sample_points_from_meshes(fish, count, return_normals=True)
    return points[0], normals[0]


def test_a_point_cloud_target_writes_every_output(runner, tmp_path, fast_eval):
    points, normals = _fish_cloud(300)  # fewer points than --samples 500: all of them each time
    save_pointcloud(str(tmp_path / "scan.xyz"), points, normals)
    out = tmp_path / "runs" / "scan"
    result = runner.invoke(
        cli, ["shape", str(tmp_path / "scan.xyz"), *TINY, "--samples", "500", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "fitted.glb",
        "fitted.obj",
        "fitted.ply",
        "fitted_normalized.obj",
        "losses.png",
        "metrics.json",
        "progress.gif",
    ]
    metrics = json.loads((out / "metrics.json").read_text())
    (target,) = metrics["targets"]
    assert target["target"] == "../../scan.xyz" and target["target_kind"] == "point cloud"
    assert target["target_points"] == 300 and target["chamfer"] > 0
    assert str(tmp_path) not in (out / "metrics.json").read_text()
    assert metrics["config"]["plot_every"] == 1
    with Image.open(out / "progress.gif") as gif:
        assert gif.n_frames == 5  # iterations 0..3 and the final 4


@pytest.mark.parametrize("suffix", [".ply", ".off"])
def test_mesh_files_and_a_mixed_batch(tmp_path, suffix, fast_eval):
    fish = load_objs_as_meshes([str(bundled_path("fish_low_resolution"))], load_textures=False)
    mesh_path = tmp_path / f"fish{suffix}"
    (save_ply if suffix == ".ply" else save_off)(
        str(mesh_path), fish.verts_packed(), fish.faces_packed()
    )
    cloud_path = tmp_path / "cloud.ply"
    points, normals = _fish_cloud(2000)
    save_ply(str(cloud_path), points, None, normals)  # no faces: a point cloud
    config = ShapeConfig(
        targets=(mesh_path, cloud_path),
        iters=3,
        level=1,
        samples=300,
        device="cpu",
        quiet=True,
        out=tmp_path / "o",
        eval_dense_samples=3000,
        eval_dense_draws=1,
    )
    result = fit_shape(config)
    kinds = [(t["name"], t["target"], t["target_kind"]) for t in result.metrics["targets"]]
    assert kinds == [("fish", f"../fish{suffix}", "mesh"), ("cloud", "../cloud.ply", "point cloud")]
    assert {p.name for p in result.files} >= {
        "fitted_fish.ply",
        "fitted_cloud.glb",
        "fitted_cloud_normalized.obj",
    }
    assert all(t["finite"] and t["chamfer"] > 0 for t in result.metrics["targets"])
    # the chamfer floor: the measure of the (normalized) target mesh against itself; none
    # for a cloud, and so none for the batch
    fish_metrics, cloud_metrics = result.metrics["targets"]
    _, normalized, _, _ = load_shape_targets([mesh_path], torch.device("cpu"))
    floor = float(eval_chamfer(normalized, normalized)[0])  # the same computation, bit for bit
    assert fish_metrics["chamfer_floor"] == floor and 0 < floor < fish_metrics["chamfer"]
    assert cloud_metrics["chamfer_floor"] is None and result.metrics["chamfer_floor"] is None
    dense_floor = float(eval_chamfer(normalized, normalized, samples=3000, draws=1)[0])  # the config's size
    assert fish_metrics["chamfer_dense_floor"] == dense_floor and 0 < dense_floor < fish_metrics["chamfer_dense"]
    assert cloud_metrics["chamfer_dense_floor"] is None and result.metrics["chamfer_dense_floor"] is None
    assert cloud_metrics["chamfer_dense"] > 0


def test_fit_render_and_images_record_no_absolute_path(runner, cow_dataset, tmp_path, fast_eval):
    cameras = json.loads((cow_dataset / "cameras.json").read_text())
    assert cameras["source_mesh"] == "cow.obj"
    out = tmp_path / "fit"
    result = runner.invoke(
        cli,
        [
            "images",
            "--images",
            str(cow_dataset),
            "--iters",
            "2",
            "--level",
            "1",
            "--device",
            "cpu",
            "--quiet",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert not metrics["source"].startswith("/") and metrics["source"].endswith(cow_dataset.name)
    assert (out / "fitted.ply").read_bytes().count(b"property uchar red\n") == 1


@pytest.mark.slow
def test_a_ply_cloud_of_the_fish_reaches_the_chamfer_of_the_obj():
    """The bar: `fit shape` on a 20k-point PLY cloud of the fish (points and normals, no
    faces) ends at the chamfer of the fit on the OBJ itself, within the spread between seeds
    (150 iterations; see the fit README for the measured spread and the 2000-iteration run)."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        cloud = Path(tmp) / "fish_cloud.ply"
        points, normals = _fish_cloud(20000)
        save_ply(str(cloud), points, None, normals)
        chamfers = {}
        for target in ("fish_low_resolution", str(cloud)):
            result = fit_shape(ShapeConfig(targets=(target,), iters=150, device="cpu", quiet=True,
                                           eval_dense_samples=0))
            chamfers[Path(target).stem] = result.metrics["targets"][0]["chamfer"]
    obj, ply = chamfers["fish_low_resolution"], chamfers["fish_cloud"]
    # Measured spread between seeds at 150 iterations: sd 3.3e-4 (OBJ) and 3.9e-4 (cloud) on
    # means of 3.55e-2 (about 1 %); 6 % is about four sd of the difference of two runs.
    assert abs(ply - obj) <= 0.06 * obj, chamfers
