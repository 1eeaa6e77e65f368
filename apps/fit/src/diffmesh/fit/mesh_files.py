"""Mesh files other tools read: the fitted mesh as OBJ, PLY and GLB, and the GIF's pace.

``fitted.obj`` is what diffmesh and PyTorch3D read back; ``fitted.ply`` (binary, with
``uchar red green blue`` vertex colours when the fit has colours) opens with the colours in
vertex order in trimesh, Open3D, MeshLab and Blender; ``fitted.glb`` (binary glTF 2.0 with
smooth vertex normals and ``COLOR_0``) in any web or DCC viewer. The three hold the same
vertices in the same order.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffmesh.fit.outputs import OutputSet, atomic_path
from diffmesh.meshcore import Meshes
from diffmesh.meshio import save_glb, save_obj, save_ply

__all__ = ["GIF_FRAMES", "frame_interval", "write_mesh_files"]

#: Frames (besides the last) the GIF gets when the frame interval is not given.
GIF_FRAMES = 8


def frame_interval(iters: int, frames: int = GIF_FRAMES) -> int:
    """Iterations between GIF frames so that ``iters`` gives about ``frames`` frames.

    ``ceil(iters / frames)`` (250 for the default 2000 iterations): frames at 0, k, 2k, ...
    below ``iters``, then the final one.

    Args:
        iters: optimisation iterations (>= 1).
        frames: frames wanted.

    Returns:
        A positive interval.
    """
    if iters < 1 or frames < 1:
        raise ValueError(f"iters, frames: expected positive integers, got {iters}, {frames}")
    return -(-iters // frames)


def write_mesh_files(
    out: Path | OutputSet,
    stem: str,
    verts: torch.Tensor,
    faces: torch.Tensor,
    colors: torch.Tensor | None = None,
) -> list[Path]:
    """Write ``<stem>.obj``, ``<stem>.ply`` and ``<stem>.glb`` into ``out``, each atomically.

    Args:
        out: the output folder, or the run's :class:`~diffmesh.fit.outputs.OutputSet` (the
            files then join the set, published with it).
        stem: file name without suffix, e.g. ``"fitted"``.
        verts: ``(V, 3) float`` positions.
        faces: ``(F, 3) long`` triangles.
        colors: ``(V, 3) float`` vertex colours in [0, 1] (clamped), or None. OBJ gets them
            as ``v x y z r g b``, PLY as ``uchar red green blue``, GLB as ``COLOR_0``.

    Returns:
        The three paths, OBJ first.
    """
    verts = verts.detach().cpu().float()
    faces = faces.detach().cpu()
    rgb = None if colors is None else colors.detach().cpu().float().clamp(0, 1)
    normals = Meshes(verts=[verts], faces=[faces]).verts_normals_packed()
    names = [f"{stem}.obj", f"{stem}.ply", f"{stem}.glb"]
    paths = [out.path(n) if isinstance(out, OutputSet) else out / n for n in names]
    with atomic_path(paths[0]) as tmp:
        save_obj(str(tmp), verts, faces, verts_colors=rgb)
    with atomic_path(paths[1]) as tmp:
        save_ply(str(tmp), verts, faces, verts_colors=rgb)
    with atomic_path(paths[2]) as tmp:
        save_glb(str(tmp), verts, faces, verts_normals=normals, verts_colors=rgb)
    return paths
