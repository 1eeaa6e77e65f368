"""Targets of ``fit shape``: meshes (OBJ, PLY, OFF) and point clouds (PLY, XYZ, PTS).

A target is normalized as the OBJ targets always were: centred at the mean of its
vertices (or points) and scaled to max |coordinate| = 1. Each iteration the target
samples are drawn afresh: from the surface of a mesh (area-weighted), or from the points
of a cloud (a random subset without replacement, or every point when the cloud holds no
more than the samples asked for).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from diffmesh.fit.data import BUNDLED, resolve_mesh_path
from diffmesh.meshcore import Meshes
from diffmesh.meshio import load_obj, load_off, load_ply_data, load_pointcloud
from diffmesh.meshloss import chamfer_distance, sample_points_from_meshes

__all__ = [
    "MESH_SUFFIXES",
    "POINTCLOUD_SUFFIXES",
    "ShapeTargets",
    "eval_chamfer_targets",
    "load_targets",
    "portable_source",
]

#: File suffixes read as meshes (a PLY without faces is a point cloud).
MESH_SUFFIXES = (".obj", ".ply", ".off")
#: File suffixes read as point clouds only.
POINTCLOUD_SUFFIXES = (".xyz", ".pts", ".txt")


@dataclass(frozen=True)
class ShapeTargets:
    """N normalized targets, each a mesh or a point cloud.

    Attributes:
        names: N names (file stems, made unique).
        paths: N files read.
        verts: N tensors ``(V_i, 3) float``: mesh vertices or cloud points, normalized.
        faces: N tensors ``(F_i, 3) long`` for meshes, None for point clouds.
        centers: ``(N, 3) float``; ``original = normalized * scale + center``.
        scales: ``(N,) float``.
    """

    names: list[str]
    paths: list[Path]
    verts: list[torch.Tensor]
    faces: list[torch.Tensor | None]
    centers: torch.Tensor
    scales: torch.Tensor

    def __len__(self) -> int:
        return len(self.verts)

    @property
    def is_cloud(self) -> list[bool]:
        """Per target: True for a point cloud."""
        return [f is None for f in self.faces]

    @property
    def kinds(self) -> list[str]:
        """Per target: ``"mesh"`` or ``"point cloud"``."""
        return ["point cloud" if c else "mesh" for c in self.is_cloud]

    def meshes(self) -> Meshes | None:
        """The mesh targets (in target order) as one Meshes, or None if there is none."""
        idx = [i for i, c in enumerate(self.is_cloud) if not c]
        if not idx:
            return None
        return Meshes(verts=[self.verts[i] for i in idx], faces=[self.faces[i] for i in idx])

    def sample(
        self, num_samples: int, meshes: Meshes | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Draw target points with torch's global generator.

        Args:
            num_samples: points per target (S).
            meshes: :meth:`meshes`, passed in to reuse its cached topology.

        Returns:
            ``(points (N, S, 3) float, lengths (N,) long or None)``: a cloud with P < S
            points fills its first P rows (the rest are zeros) and gets length P; lengths
            is None when every target has S points (all meshes: the same draw as
            ``sample_points_from_meshes`` of the meshes).
        """
        clouds = self.is_cloud
        if meshes is None and not all(clouds):
            meshes = self.meshes()
        if not any(clouds):
            return sample_points_from_meshes(meshes, num_samples), None
        ref = self.verts[0]
        out = torch.zeros(len(self), num_samples, 3, dtype=ref.dtype, device=ref.device)
        lengths = torch.full((len(self),), num_samples, dtype=torch.long, device=ref.device)
        if meshes is not None:
            mesh_idx = torch.tensor([i for i, c in enumerate(clouds) if not c], device=ref.device)
            out[mesh_idx] = sample_points_from_meshes(meshes, num_samples)
        for i, cloud in enumerate(clouds):  # one iteration per target, not per point
            if not cloud:
                continue
            points = self.verts[i]
            if points.shape[0] <= num_samples:
                out[i, : points.shape[0]] = points
                lengths[i] = points.shape[0]
            else:
                pick = torch.randperm(points.shape[0], device=points.device)[:num_samples]
                out[i] = points[pick]
        return out, lengths


def _unique_names(paths: Sequence[Path]) -> list[str]:
    names: list[str] = []
    for path in paths:
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem) or "target"
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


def _read(path: Path, device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Vertices and faces (None for a point cloud) of one target file."""
    suffix = path.suffix.lower()
    if suffix == ".obj":
        verts, faces, _ = load_obj(str(path), load_textures=False, device=device)
        if faces.verts_idx.shape[0] == 0:
            raise ValueError(
                f"TARGET {str(path)!r}: the OBJ has no faces (save a point cloud as .ply or .xyz)"
            )
        return verts, faces.verts_idx
    if suffix == ".ply":
        ply = load_ply_data(str(path), device=device)
        faces = ply.faces if ply.faces is not None and ply.faces.shape[0] > 0 else None
        return ply.verts, faces
    if suffix == ".off":
        verts, faces = load_off(str(path), device=device)
        return verts, (faces if faces.shape[0] > 0 else None)
    if suffix in POINTCLOUD_SUFFIXES:
        return load_pointcloud(str(path), device=device).points, None
    raise ValueError(
        f"TARGET {str(path)!r}: unknown file type {path.suffix!r} (meshes: "
        f"{', '.join(MESH_SUFFIXES)}; point clouds: .ply, {', '.join(POINTCLOUD_SUFFIXES)})"
    )


def load_targets(targets: Sequence[str | Path], device: torch.device) -> ShapeTargets:
    """Load targets and normalize each (centre at the vertex mean, max |coord| = 1).

    Args:
        targets: file paths (``.obj``, ``.ply``, ``.off``, ``.xyz``, ``.pts``, ``.txt``) or
            bundled names.
        device: where the tensors go.

    Returns:
        The normalized targets.

    Raises:
        FileNotFoundError: a missing file.
        ValueError: an unknown suffix, a malformed file, an OBJ without faces, no points,
            points that all coincide, or a mesh whose faces all have zero area.
    """
    paths = [resolve_mesh_path(t, argument="TARGET") for t in targets]
    verts_list: list[torch.Tensor] = []
    faces_list: list[torch.Tensor | None] = []
    centers, scales = [], []
    for path in paths:  # one iteration per file
        verts, faces = _read(path, device)
        verts = verts.float()
        if verts.shape[0] == 0:
            raise ValueError(f"TARGET {str(path)!r}: the file holds no vertices or points")
        center = verts.mean(0)
        scale = (verts - center).abs().max()
        if not bool(scale > 0) or not bool(torch.isfinite(scale)):
            raise ValueError(f"TARGET {str(path)!r}: all vertices coincide; nothing to fit")
        if faces is not None and not bool(Meshes(verts=[verts], faces=[faces.long()]).faces_areas_packed().sum() > 0):
            raise ValueError(f"TARGET {str(path)!r}: every face has zero area; no surface to fit")
        verts_list.append((verts - center) / scale)
        faces_list.append(None if faces is None else faces.long())
        centers.append(center)
        scales.append(scale)
    return ShapeTargets(_unique_names(paths), paths, verts_list, faces_list,
                        torch.stack(centers), torch.stack(scales))  # fmt: skip


@torch.no_grad()
def eval_chamfer_targets(
    fitted: Meshes,
    targets: ShapeTargets,
    *,
    samples: int = 10000,
    draws: int = 5,
    generator_seed: int = 1234,
) -> torch.Tensor:
    """Chamfer distance of each fitted mesh to its target (mesh or cloud), averaged over draws.

    As :func:`diffmesh.fit.metrics.eval_chamfer` (and equal to it when every target is a
    mesh): ``samples`` points of each fitted mesh against ``samples`` points drawn from the
    target (:meth:`ShapeTargets.sample`: a cloud's points themselves), squared L2, point
    mean both ways, mean of ``draws`` draws; the global RNG state is restored.

    Args:
        fitted: N meshes.
        targets: N targets.
        samples: points per mesh (and drawn per target) and draw.
        draws: draws averaged.
        generator_seed: seed of the draws.

    Returns:
        ``(N,)`` float64 tensor (CPU).
    """
    if len(fitted) != len(targets):
        raise ValueError(
            f"fitted, targets: expected the same number, got {len(fitted)} and {len(targets)}"
        )
    meshes = targets.meshes()
    devices = [fitted.device] if fitted.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(generator_seed)
        total = torch.zeros(len(fitted), dtype=torch.float64, device=fitted.device)
        for _ in range(draws):  # a handful of draws
            pa = sample_points_from_meshes(fitted, samples)
            pb, lengths = targets.sample(samples, meshes)
            loss, _ = chamfer_distance(pa, pb, y_lengths=lengths, batch_reduction=None)
            total += loss.double()
    return (total / draws).cpu()


def portable_source(path: Path, out: Path | None) -> str:
    """How metrics.json and cameras.json name a source file: never an absolute path.

    A bundled mesh is named by its file name; another file by its path relative to the
    output folder (POSIX separators), or by its file name when there is no output folder
    or no relative path (another drive).

    Args:
        path: the source file or folder.
        out: the output folder, or None.

    Returns:
        The name to record.
    """
    from diffmesh.fit.data import bundled_path

    resolved = path.resolve()
    if any(resolved == bundled_path(name).resolve() for name in BUNDLED) or out is None:
        return path.name
    try:
        return Path(os.path.relpath(resolved, out.resolve())).as_posix()
    except ValueError:  # Windows: another drive
        return path.name
