"""meshio benchmarks: load/save of a generated ~1M-face mesh as OBJ and as binary/ascii PLY.

The files are written once into bench/.cache/ (git-ignored) and reused by later runs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from common import Case
from diffmesh.meshio import load_obj, load_ply, save_obj, save_ply

CACHE = Path(__file__).resolve().parent / ".cache"
GRID = 708  # GRID x GRID vertices -> 2 * (GRID - 1)**2 = 999,698 triangles


def _grid_mesh(n: int = GRID) -> tuple[torch.Tensor, torch.Tensor]:
    """A wavy n x n height field: (n*n, 3) float32 verts, (2 (n-1)^2, 3) int64 faces."""
    i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    x, y = i.reshape(-1) / (n - 1), j.reshape(-1) / (n - 1)
    verts = torch.stack([x, y, 0.05 * torch.sin(20 * x) * torch.cos(13 * y)], dim=1).float()
    q = (i[:-1, :-1] * n + j[:-1, :-1]).reshape(-1)
    faces = torch.cat([torch.stack([q, q + n, q + 1], 1), torch.stack([q + 1, q + n, q + n + 1], 1)])
    return verts, faces


def _num_faces(n: int = GRID) -> int:
    return 2 * (n - 1) ** 2


def _obj_file() -> Path:
    """The benchmark OBJ (6 decimals, as most exporters write), generated on first use."""
    path = CACHE / f"grid_{GRID}.obj"
    if not path.is_file():
        CACHE.mkdir(exist_ok=True)
        verts, faces = _grid_mesh()
        save_obj(path, verts, faces, decimal_places=6)
    return path


def _setup_load() -> Callable[[], object]:
    path = _obj_file()
    return lambda: load_obj(path, load_textures=False)


def _setup_save() -> Callable[[], object]:
    verts, faces = _grid_mesh()
    CACHE.mkdir(exist_ok=True)
    out = CACHE / "save_bench.obj"
    return lambda: save_obj(out, verts, faces)


def _ply_file(ascii: bool) -> Path:
    """The benchmark PLY (binary little endian, or ascii), generated on first use."""
    path = CACHE / f"grid_{GRID}{'_ascii' if ascii else ''}.ply"
    if not path.is_file():
        CACHE.mkdir(exist_ok=True)
        verts, faces = _grid_mesh()
        save_ply(path, verts, faces, ascii=ascii)
    return path


def _setup_load_ply(ascii: bool) -> Callable[[], Callable[[], object]]:
    def setup() -> Callable[[], object]:
        path = _ply_file(ascii)
        return lambda: load_ply(path)

    return setup


def _setup_save_ply() -> Callable[[], object]:
    verts, faces = _grid_mesh()
    CACHE.mkdir(exist_ok=True)
    out = CACHE / "save_bench.ply"
    return lambda: save_ply(out, verts, faces)


def cases() -> list[Case]:
    faces = _num_faces()
    return [
        Case(
            group="meshio",
            name=f"load_obj, {faces / 1e6:.2f}M faces / {GRID * GRID / 1e3:.0f}k verts",
            setup=_setup_load,
            repeats=5,
            warmup=1,
            memory=True,
            items=faces,
            items_unit="faces/s",
            goal="< 3 s",
        ),
        Case(
            group="meshio",
            name=f"save_obj, {faces / 1e6:.2f}M faces / {GRID * GRID / 1e3:.0f}k verts",
            setup=_setup_save,
            repeats=3,
            warmup=1,
            memory=True,
            items=faces,
            items_unit="faces/s",
        ),
        Case(
            group="meshio",
            name=f"load_ply binary, {faces / 1e6:.2f}M faces / {GRID * GRID / 1e3:.0f}k verts",
            setup=_setup_load_ply(ascii=False),
            repeats=5,
            warmup=1,
            memory=True,
            items=faces,
            items_unit="faces/s",
            goal="well under 1 s",
        ),
        Case(
            group="meshio",
            name=f"load_ply ascii, {faces / 1e6:.2f}M faces / {GRID * GRID / 1e3:.0f}k verts",
            setup=_setup_load_ply(ascii=True),
            repeats=3,
            warmup=1,
            memory=True,
            items=faces,
            items_unit="faces/s",
        ),
        Case(
            group="meshio",
            name=f"save_ply binary, {faces / 1e6:.2f}M faces / {GRID * GRID / 1e3:.0f}k verts",
            setup=_setup_save_ply,
            repeats=3,
            warmup=1,
            memory=True,
            items=faces,
            items_unit="faces/s",
        ),
    ]
