"""meshio benchmarks: load/save of a generated ~1M-face mesh as OBJ and as binary/ascii PLY.

The files are written once into bench/.cache/ (git-ignored) and reused by later runs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
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
    faces = torch.cat(
        [torch.stack([q, q + n, q + 1], 1), torch.stack([q + 1, q + n, q + n + 1], 1)]
    )
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


def _mixed_ply_file() -> Path:
    """A binary PLY of the grid with every other quad kept whole, the rest split in two
    triangles (random-looking 3/4 list lengths, as exporters of n-gon meshes write):
    the row starts depend on every length before them."""
    path = CACHE / f"grid_{GRID}_mixed.ply"
    if path.is_file():
        return path
    CACHE.mkdir(exist_ok=True)
    verts, _ = _grid_mesh()
    n = GRID
    i, j = np.meshgrid(np.arange(n - 1), np.arange(n - 1), indexing="ij")
    q = (i * n + j).reshape(-1)
    whole = (i + j).reshape(-1) % 2 == 0
    quads = np.stack([q, q + n, q + n + 1, q + 1], 1)[whole]
    tris = q[~whole]
    tris = np.concatenate([np.stack([tris, tris + n, tris + 1], 1),
                           np.stack([tris + 1, tris + n, tris + n + 1], 1)])  # fmt: skip
    unshuffled = np.concatenate([np.full(len(quads), 4), np.full(len(tris), 3)])
    corners = np.concatenate([quads.reshape(-1), tris.reshape(-1)])
    order = np.random.default_rng(0).permutation(len(unshuffled))  # shuffle the rows
    sizes = unshuffled[order]
    src_starts = np.cumsum(unshuffled) - unshuffled
    starts = np.cumsum(sizes) - sizes
    gather = np.repeat(src_starts[order] - starts, sizes) + np.arange(sizes.sum())
    body = np.zeros(len(sizes) + 4 * int(sizes.sum()), np.uint8)
    row_at = starts * 4 + np.arange(len(sizes))  # byte of each row's uchar length
    body[row_at] = sizes
    index_bytes = np.ones(body.size, bool)
    index_bytes[row_at] = False
    body[index_bytes] = corners[gather].astype("<i4").view(np.uint8)
    header = (
        f"ply\nformat binary_little_endian 1.0\nelement vertex {len(verts)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        f"element face {len(sizes)}\nproperty list uchar int vertex_indices\nend_header\n"
    )
    path.write_bytes(header.encode() + verts.numpy().astype("<f4").tobytes() + body.tobytes())
    return path


def _setup_load_mixed_ply() -> Callable[[], object]:
    path = _mixed_ply_file()
    return lambda: load_ply(path)


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
            name=f"load_ply binary, mixed triangles/quads, {0.75 * faces / 1e6:.2f}M polygons",
            setup=_setup_load_mixed_ply,
            repeats=3,
            warmup=1,
            memory=True,
            items=faces,
            items_unit="triangles/s",
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
