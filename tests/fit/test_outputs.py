"""Atomic writes, output folders, strict JSON, the GIF writer and image layouts."""

from __future__ import annotations

import json
import math
import os
from importlib import metadata

import pytest
import torch
from diffmesh.fit.gif import save_gif
from diffmesh.fit.imaging import caption, grid, hstack, to_image
from diffmesh.fit.outputs import (
    atomic_path,
    environment_info,
    prepare_out_dir,
    write_json,
    write_text,
)
from PIL import Image


def test_atomic_path_replaces_only_on_success(tmp_path):
    dest = tmp_path / "a.txt"
    write_text(dest, "old")
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash while writing")
    assert dest.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["a.txt"]  # no temporary left behind
    with atomic_path(dest) as tmp:
        assert tmp.parent == dest.parent and tmp.suffix == ".txt"
        tmp.write_text("new")
    assert dest.read_text() == "new"
    umask = os.umask(0)
    os.umask(umask)
    assert dest.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600
    dest.chmod(0o640)
    write_text(dest, "again")
    assert dest.stat().st_mode & 0o777 == 0o640  # an existing file keeps its mode


def test_atomic_path_survives_keyboard_interrupt(tmp_path):
    dest = tmp_path / "m.json"
    write_json(dest, {"a": 1})
    with pytest.raises(KeyboardInterrupt), atomic_path(dest) as tmp:
        tmp.write_text("{")
        raise KeyboardInterrupt
    assert json.loads(dest.read_text()) == {"a": 1}
    assert sorted(os.listdir(tmp_path)) == ["m.json"]


def test_write_json_is_strict(tmp_path):
    path = write_json(tmp_path / "m.json", {"nan": math.nan, "inf": math.inf, "t": (1, 2), "x": 0.5})
    assert json.loads(path.read_text()) == {"nan": None, "inf": None, "t": [1, 2], "x": 0.5}


def test_prepare_out_dir(tmp_path):
    out = prepare_out_dir(tmp_path / "a" / "b")
    assert out.is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="--out"):
        prepare_out_dir(tmp_path / "file")
    # A parent that is a file: mkdir fails; the message names --out and the folder, one line.
    with pytest.raises(OSError, match=r"^--out: cannot create the folder .*file/sub.*") as info:
        prepare_out_dir(tmp_path / "file" / "sub")
    assert "\n" not in str(info.value) and "Errno" not in str(info.value)


def test_environment_info_names_versions():
    info = environment_info("cpu")
    assert info["device"] == "cpu"
    assert info["versions"]["torch"] == torch.__version__
    assert info["versions"]["diffmesh-fit"] == metadata.version("diffmesh-fit")


def test_gif_has_every_frame_and_durations(tmp_path):
    frames = [caption(hstack([to_image(torch.full((20, 20, 3), i / 4)), to_image(torch.rand(20, 20, 3))]), f"{i}")
              for i in range(4)]
    path = save_gif(tmp_path / "p.gif", frames, duration_ms=100, last_frame_ms=900)
    with Image.open(path) as gif:
        assert gif.n_frames == 4
        durations = []
        for k in range(gif.n_frames):
            gif.seek(k)
            durations.append(gif.info["duration"])
        assert durations == [100, 100, 100, 900]
        assert gif.info["loop"] == 0
    with pytest.raises(ValueError, match="frames"):
        save_gif(tmp_path / "q.gif", [])


def test_to_image_and_layouts():
    rgb = to_image(torch.tensor([[[0.0, 0.5, 1.0]]]).expand(3, 5, 3))
    assert rgb.mode == "RGB" and rgb.size == (5, 3) and rgb.getpixel((0, 0)) == (0, 128, 255)
    rgba = to_image(torch.full((2, 2, 4), float("nan")))
    assert rgba.mode == "RGBA" and rgba.getpixel((0, 0)) == (0, 0, 0, 0)
    assert to_image(torch.zeros(4, 6)).mode == "L"
    with pytest.raises(ValueError, match="pixels"):
        to_image(torch.zeros(2, 2, 2))
    tiles = [to_image(torch.rand(10, 10, 3)) for _ in range(5)]
    assert grid(tiles, columns=2, gap=1).size == (21, 32)
