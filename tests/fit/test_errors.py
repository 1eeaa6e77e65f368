"""Every error of issue 5 is one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from diffmesh.fit.cli import cli


def _one_line_error(result, code: int | None = None) -> str:
    assert result.exit_code != 0, result.output
    if code is not None:
        assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["shape", "--iters", "-1"], "--iters"),
        (["shape", "--iters", "0"], "--iters"),
        (["shape", "--samples", "0"], "--samples"),
        (["shape", "--w-edge", "-1"], "--w-edge"),
        (["shape", "--lr", "0"], "--lr"),
        (["shape", "--momentum", "1"], "--momentum"),
        (["shape", "--level", "9"], "--level"),
        (["shape", "--device", "tpu"], "--device"),
        (["shape", "--plot-every", "0"], "--plot-every"),
        (["images", "--image-size", "0"], "--image-size"),
        (["images", "--views", "0"], "--views"),
        (["images", "--views-per-iter", "-2"], "--views-per-iter"),
        (["images", "--target-mesh", "cow", "--images", "."], "not both"),
        (["images", "--images", ".", "--image-size", "64"], "--image-size"),
        (["images", "--images", ".", "--views", "3"], "--views"),
        (["render", "cow", "--image-size", "0"], "--image-size"),
        (["render"], "MESH"),
        (["shape", "--no-such-option"], "--no-such-option"),
        (["nope"], "nope"),
    ],
)
def test_bad_options_are_usage_errors(runner, args, fragment):
    line = _one_line_error(runner.invoke(cli, args), code=2)
    assert fragment in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("command", [["shape"], ["images"], ["render", "cow"]])
def test_cuda_asked_but_absent(runner, command):
    line = _one_line_error(runner.invoke(cli, [*command, "--device", "cuda"]), code=2)
    assert "CUDA is not available" in line


@pytest.mark.parametrize(
    "args",
    [["shape", "missing.obj"], ["images", "--target-mesh", "missing.obj"], ["render", "missing.obj"],
     ["images", "--images", "no-such-folder"]],
)
def test_missing_files(runner, tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    line = _one_line_error(runner.invoke(cli, args), code=1)
    assert "missing.obj" in line or "no-such-folder" in line


@pytest.mark.parametrize("command", [["shape"], ["render"], ["images", "--target-mesh"]])
def test_malformed_obj_names_file_and_line(runner, tmp_path, command):
    bad = tmp_path / "bad.obj"
    bad.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 oops\n")
    line = _one_line_error(runner.invoke(cli, [*command, str(bad), "--out", str(tmp_path / "o")]), code=1)
    assert "bad.obj" in line and "4" in line


def test_unreadable_obj(runner, tmp_path):
    folder = tmp_path / "dir.obj"
    folder.mkdir()
    line = _one_line_error(runner.invoke(cli, ["render", str(folder)]), code=1)
    assert "folder" in line


def test_out_is_a_file(runner, tmp_path):
    (tmp_path / "f").write_text("x")
    line = _one_line_error(runner.invoke(cli, ["render", "cow", "--views", "1", "--out", str(tmp_path / "f")]))
    assert "--out" in line


def test_images_folder_without_cameras_json(runner, cow_dataset, tmp_path):
    folder = tmp_path / "views"
    shutil.copytree(cow_dataset, folder)
    (folder / "cameras.json").unlink()
    line = _one_line_error(runner.invoke(cli, ["images", "--images", str(folder), "--iters", "1"]), code=1)
    assert "cameras.json" in line


def test_images_folder_with_mismatched_names(runner, cow_dataset, tmp_path):
    folder = tmp_path / "views"
    shutil.copytree(cow_dataset, folder)
    (folder / "view_002.png").rename(folder / "renamed.png")
    line = _one_line_error(runner.invoke(cli, ["images", "--images", str(folder), "--iters", "1"]), code=1)
    assert "view_002.png" in line
    payload = json.loads((folder / "cameras.json").read_text())
    payload["views"][2]["image"] = "renamed.png"
    (folder / "cameras.json").write_text(json.dumps(payload))
    shutil.copy(folder / "renamed.png", folder / "stray.png")
    line = _one_line_error(runner.invoke(cli, ["images", "--images", str(folder), "--iters", "1"]), code=1)
    assert "stray.png" in line


def test_images_without_alpha(runner, cow_dataset, tmp_path):
    from PIL import Image

    folder = tmp_path / "views"
    shutil.copytree(cow_dataset, folder)
    with Image.open(folder / "view_000.png") as im:
        im.convert("RGB").save(folder / "view_000.png")
    line = _one_line_error(runner.invoke(cli, ["images", "--images", str(folder), "--iters", "1"]), code=1)
    assert "alpha" in line


def test_help_and_version(runner):
    from importlib import metadata

    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0 and metadata.version("diffmesh-fit") in result.output
    for command in ([], ["shape"], ["images"], ["render"]):
        result = runner.invoke(cli, [*command, "--help"])
        assert result.exit_code == 0 and "Usage: fit" in result.output
    result = runner.invoke(cli, [])
    assert result.exit_code == 0 and "Commands:" in result.output


def test_keyboard_interrupt_outside_the_fit_exits_130(runner, monkeypatch, tmp_path):
    import diffmesh.fit.render_dataset as render_dataset

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(render_dataset, "render_targets", interrupted)
    result = runner.invoke(cli, ["render", "cow", "--views", "1", "--out", str(tmp_path / "o")])
    assert result.exit_code == 130
    assert result.stderr.strip().splitlines()[-1].startswith("Interrupted: ")
    assert not (tmp_path / "o" / "cameras.json").exists()
