"""Quality measures written to metrics.json: chamfer at fixed samples, volume, fold-overs,
IoU, PSNR."""

from __future__ import annotations

import math

import torch
from diffmesh.meshcore import Meshes
from diffmesh.meshloss import chamfer_distance, knn_points, sample_points_from_meshes

__all__ = ["FLIPPED_EVAL", "eval_chamfer", "flipped_fraction", "masked_psnr", "signed_volumes",
           "silhouette_iou"]

#: How :func:`flipped_fraction` measures (recorded in metrics.json beside its value).
FLIPPED_EVAL = {"target_samples": 50000, "rule": "normal . nearest target normal < 0, fraction of faces"}


@torch.no_grad()
def eval_chamfer(
    a: Meshes, b: Meshes, *, samples: int = 10000, draws: int = 5, generator_seed: int = 1234
) -> torch.Tensor:
    """Chamfer distance between two batches of meshes, mesh by mesh, averaged over draws.

    The measure of the quality bar: ``samples`` points per mesh, squared L2, mean over
    points in both directions (PyTorch3D's ``chamfer_distance`` with point mean), and the
    mean of ``draws`` independent draws to steady the estimate. The global RNG state is
    saved and restored, so evaluating does not change the fit's random stream.

    Args:
        a: N meshes.
        b: N meshes (the targets).
        samples: points sampled per mesh and draw.
        draws: number of draws averaged.
        generator_seed: seed of the draws (the measure is reproducible).

    Returns:
        ``(N,)`` float tensor (CPU) of chamfer distances.
    """
    if len(a) != len(b):
        raise ValueError(f"a, b: expected batches of the same size, got {len(a)} and {len(b)}")
    devices = [a.device] if a.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(generator_seed)
        total = torch.zeros(len(a), dtype=torch.float64, device=a.device)
        for _ in range(draws):  # a handful of draws, not a loop over points
            pa = sample_points_from_meshes(a, samples)
            pb = sample_points_from_meshes(b, samples)
            loss, _ = chamfer_distance(pa, pb, batch_reduction=None)
            total += loss.double()
    return (total / draws).cpu()


@torch.no_grad()
def signed_volumes(meshes: Meshes) -> torch.Tensor:
    """Signed volume of each mesh, positive for a closed mesh with outward-facing faces.

    ``V = sum_f v0 . (v1 x v2) / 6`` over the faces; a mesh turned inside out has V < 0.

    Args:
        meshes: N meshes.

    Returns:
        ``(N,)`` float tensor (CPU), in cubed units of the vertices.
    """
    verts = meshes.verts_packed().double()
    faces = meshes.faces_packed()
    v0, v1, v2 = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    per_face = (v0 * torch.linalg.cross(v1, v2, dim=-1)).sum(-1) / 6.0
    out = torch.zeros(len(meshes), dtype=torch.float64, device=verts.device)
    out.index_add_(0, meshes.faces_packed_to_mesh_idx(), per_face)
    return out.cpu()


@torch.no_grad()
def flipped_fraction(fitted: Meshes, target: Meshes, *, samples: int = 50000,
                     generator_seed: int = 4321) -> torch.Tensor:
    """Fraction of each fitted mesh's faces whose normal points against the target's.

    For every face of a fitted mesh with non-zero area, the nearest of ``samples`` points
    drawn on the target surface (area-uniform, with their face normals) to the face's
    centroid gives the target's normal there; the face counts as flipped (a fold-over, or
    a mesh turned inside out) when the two unit normals have a negative dot product. Faces
    of zero area have no normal and count as not flipped. The global RNG state is saved
    and restored, as in :func:`eval_chamfer`.

    Args:
        fitted: N meshes.
        target: N meshes, outward-facing (the normals the fitted faces should follow).
        samples: points drawn per target mesh.
        generator_seed: seed of the draw (the measure is reproducible).

    Returns:
        ``(N,)`` float64 tensor (CPU) in [0, 1]; 0 for a mesh without faces.
    """
    if len(fitted) != len(target):
        raise ValueError(f"fitted, target: expected batches of the same size, got {len(fitted)} and {len(target)}")
    devices = [target.device] if target.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(generator_seed)
        points, normals = sample_points_from_meshes(target, samples, return_normals=True)
    out = torch.zeros(len(fitted), dtype=torch.float64)
    for i, (verts, faces) in enumerate(zip(fitted.verts_list(), fitted.faces_list(), strict=True)):
        if faces.shape[0] == 0:  # a handful of meshes per batch: not a loop over faces
            continue
        corners = verts[faces]
        face_normals = torch.linalg.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0], dim=-1)
        nearest = knn_points(corners.mean(1)[None], points[i : i + 1], K=1).idx[0, :, 0]
        flipped = (face_normals * normals[i, nearest]).sum(-1) < 0
        out[i] = flipped.double().mean()
    return out


@torch.no_grad()
def silhouette_iou(pred: torch.Tensor, target: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Intersection over union of thresholded silhouettes, image by image.

    Args:
        pred: ``(V, H, W)`` float alpha in [0, 1].
        target: ``(V, H, W)`` float alpha in [0, 1].
        threshold: alpha above which a pixel is inside.

    Returns:
        ``(V,)`` float tensor (CPU); 1.0 where both silhouettes are empty.
    """
    if pred.shape != target.shape or pred.dim() != 3:
        raise ValueError(
            f"pred, target: expected two (V, H, W) tensors, got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    a, b = pred > threshold, target > threshold
    inter = (a & b).flatten(1).sum(1).double()
    union = (a | b).flatten(1).sum(1).double()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union)).cpu()


@torch.no_grad()
def masked_psnr(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> float:
    """PSNR (dB, peak 1.0) of RGB images over the masked pixels.

    Args:
        pred: ``(V, H, W, 3)`` float RGB in [0, 1].
        target: ``(V, H, W, 3)`` float RGB in [0, 1].
        mask: ``(V, H, W)`` bool, the pixels that count (the object).

    Returns:
        ``10 log10(1 / MSE)``; ``inf`` for a perfect match, ``nan`` for an empty mask.
    """
    if pred.shape != target.shape or pred.shape[:-1] != mask.shape:
        raise ValueError(
            f"pred, target, mask: expected (V, H, W, 3), (V, H, W, 3), (V, H, W), got "
            f"{tuple(pred.shape)}, {tuple(target.shape)}, {tuple(mask.shape)}"
        )
    count = int(mask.sum())
    if count == 0:
        return math.nan
    err = ((pred.double() - target.double()) ** 2).sum(-1)[mask].sum() / (3 * count)
    mse = float(err)
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)
