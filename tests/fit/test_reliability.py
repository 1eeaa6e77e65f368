"""Issue 12, part 5: output sets published whole, an early Ctrl-C keeps earlier results, a
diverging fit stops with one line and its best-so-far outputs, bad options exit 2."""

from __future__ import annotations

import json

import diffmesh.fit.shape as shape
import pytest
import torch
from diffmesh.fit.cli import cli
from diffmesh.fit.outputs import OutputSet
from diffmesh.meshio import load_obj

SMALL = [
    "--iters",
    "12",
    "--level",
    "1",
    "--samples",
    "300",
    "--plot-every",
    "6",
    "--device",
    "cpu",
    "--quiet",
]


def _metrics(out):
    return json.loads((out / "metrics.json").read_text())


def test_a_failing_run_leaves_the_previous_set_untouched(runner, tmp_path, monkeypatch, fast_eval):
    """A failure while writing (here: the disk fills up at the GIF) must not leave the new
    meshes beside the previous run's metrics.json and plots."""
    out = tmp_path / "o"
    assert runner.invoke(cli, ["shape", *SMALL, "--out", str(out)]).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    run_id = _metrics(out)["run_id"]

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shape, "save_gif", disk_full)
    result = runner.invoke(cli, ["shape", *SMALL, "--seed", "5", "--out", str(out)])
    assert result.exit_code == 1 and "No space left" in result.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the old set, byte for byte
    assert _metrics(out)["run_id"] == run_id


def test_a_new_set_replaces_every_file_of_the_old_one(runner, tmp_path, fast_eval):
    """Two targets, then one: the old per-target meshes go; metrics.json lists the new set
    and carries a new run id; files that are not fit's stay."""
    out = tmp_path / "o"
    (tmp_path / "o").mkdir()
    (out / "notes.txt").write_text("mine")
    result = runner.invoke(cli, ["shape", "fish_low_resolution", "cow", *SMALL, "--out", str(out)])
    assert result.exit_code == 0, result.output
    first = _metrics(out)
    assert "fitted_cow.obj" in first["files"] and first["files"][-1] == "metrics.json"
    result = runner.invoke(cli, ["shape", *SMALL, "--out", str(out)])
    assert result.exit_code == 0, result.output
    second = _metrics(out)
    assert second["run_id"] != first["run_id"]
    assert sorted(p.name for p in out.iterdir()) == sorted([*second["files"], "notes.txt"])
    assert not (out / "fitted_cow.obj").exists()


def test_output_set_publishes_all_or_nothing(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    with OutputSet(out, run_id="r1") as outs:
        outs.path("a.txt").write_text("1")
        outs.path("b.txt").write_text("1")
        files = outs.commit({"command": "shape"})
    assert [p.name for p in files] == ["a.txt", "b.txt", "metrics.json"]
    with pytest.raises(RuntimeError), OutputSet(out, run_id="r2") as outs:
        outs.path("a.txt").write_text("2")
        raise RuntimeError("failed before the commit")
    assert sorted(p.name for p in out.iterdir()) == [
        "a.txt",
        "b.txt",
        "metrics.json",
    ]  # no staging left
    assert (out / "a.txt").read_text() == "1" and _metrics(out)["run_id"] == "r1"
    with OutputSet(out, run_id="r3") as outs:
        outs.path("c.txt").write_text("3")
        outs.commit({"command": "shape"})
    assert sorted(p.name for p in out.iterdir()) == ["c.txt", "metrics.json"]
    assert _metrics(out) == {"command": "shape", "run_id": "r3", "files": ["c.txt", "metrics.json"]}
    with pytest.raises(ValueError, match="name"):
        OutputSet(out).path("../x")


def test_staging_of_a_killed_run_is_removed(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    dead = out / ".fit-run-20260101T000000Z-999999999-abcdef"  # no such process
    dead.mkdir()
    (dead / "fitted.obj").write_text("half")
    with OutputSet(out) as outs:
        outs.commit({})
    assert not dead.exists()


def test_ctrl_c_before_the_first_iteration_keeps_earlier_results(
    runner, tmp_path, monkeypatch, fast_eval
):
    out = tmp_path / "o"
    assert runner.invoke(cli, ["shape", *SMALL, "--out", str(out)]).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    original = shape.chamfer_distance

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(shape, "chamfer_distance", interrupted)  # inside the first iteration
    result = runner.invoke(cli, ["shape", *SMALL, "--out", str(out)])
    monkeypatch.setattr(shape, "chamfer_distance", original)
    assert result.exit_code == 130
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "nothing written" in lines[0] and "kept" in lines[0]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # not the unfitted sphere


def test_a_diverging_fit_stops_with_one_line_and_keeps_the_best(runner, tmp_path, fast_eval):
    out = tmp_path / "o"
    result = runner.invoke(cli, ["shape", *SMALL, "--lr", "1e6", "--out", str(out)])
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert (
        len(lines) == 1
        and "diverged" in lines[0]
        and "--lr" in lines[0]
        and "learning rate" in lines[0]
    )
    metrics = _metrics(out)
    assert metrics["diverged"] and metrics["mesh_written"] == "best-so-far"
    assert metrics["iterations"] < 12 and metrics["best_iteration"] >= 0
    verts, _, _ = load_obj(str(out / "fitted_normalized.obj"), load_textures=False)
    assert torch.isfinite(verts).all() and verts.abs().max() < 10
    assert all(isinstance(v, float) for v in metrics["final_losses"].values())


def test_a_diverging_images_fit_is_caught_too(runner, tmp_path, fast_eval):
    out = tmp_path / "o"
    result = runner.invoke(
        cli,
        [
            "images",
            "--views",
            "2",
            "--image-size",
            "16",
            "--iters",
            "8",
            "--level",
            "1",
            "--lr",
            "1e9",
            "--device",
            "cpu",
            "--quiet",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 1, result.output
    assert "diverged" in result.stderr and "--lr" in result.stderr
    assert _metrics(out)["diverged"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["shape", "--lr", "nan"], "--lr"),
        (["shape", "--lr", "inf"], "--lr"),
        (["shape", "--momentum", "nan"], "--momentum"),
        (["shape", "--w-chamfer", "nan"], "--w-chamfer"),
        (["shape", "--w-edge", "inf"], "--w-edge"),
        (["images", "--w-rgb", "nan"], "--w-rgb"),
        (["render", "cow", "--dist", "inf"], "--dist"),
        (["render", "cow", "--dist", "nan"], "--dist"),
        (["shape", "--out", ""], "--out"),
        (["render", "cow", "--out", " "], "--out"),
        (["render", "cow", "--image-size", "100000"], "--image-size"),
        (["images", "--image-size", "100000"], "--image-size"),
        (["shape", "--samples", "1e12"], "--samples"),
        (["shape", "--samples", "1000000000000"], "--samples"),
        (["shape", "--seed", str(2**70)], "--seed"),
        (["images", "--seed", str(-(2**70))], "--seed"),
        (["render", "cow", "--views", "100000000"], "--views"),
        (["shape", "--iters", "100000000000"], "--iters"),
        (["shape", "--threads", "0"], "--threads"),
        (["shape", "--threads", "many"], "--threads"),
    ],
)
def test_bad_values_exit_2_naming_the_option(runner, tmp_path, monkeypatch, args, fragment):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0]
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_zero_area_targets_are_refused(runner, tmp_path):
    flat = tmp_path / "flat.obj"
    flat.write_text("v 0 0 0\nv 1 0 0\nv 2 0 0\nv 3 0 0\nf 1 2 3\nf 2 3 4\n")  # collinear: no area
    commands = [
        ["shape", str(flat), "--iters", "1"],
        ["images", "--target-mesh", str(flat), "--iters", "1"],
        ["render", str(flat)],
    ]
    for command in commands:
        result = runner.invoke(cli, [*command, "--device", "cpu", "--out", str(tmp_path / "r")])
        assert result.exit_code == 1, result.output
        assert "zero area" in result.stderr and "flat.obj" in result.stderr


def test_threads_option(runner, tmp_path, fast_eval):
    before = torch.get_num_threads()
    out = tmp_path / "o"
    result = runner.invoke(cli, ["shape", *SMALL, "--threads", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert _metrics(out)["torch_threads"] == 1 and _metrics(out)["thread_changes"] is None
    assert torch.get_num_threads() == before  # restored after the command
    result = runner.invoke(cli, ["shape", *SMALL, "--threads", "auto", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert isinstance(_metrics(out)["thread_changes"], list)  # the policy ran
    assert torch.get_num_threads() == before
