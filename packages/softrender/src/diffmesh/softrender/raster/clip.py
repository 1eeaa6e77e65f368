"""Clipping faces at a view depth ``c`` before rasterization (PyTorch3D's ``z_clip_value``).

By vertices behind ``z = c``: none, kept bit for bit; three, culled; two (p1 in front), the
triangle (p4, p5, p1); one (p1 behind), the quadrilateral (p4, p2, p3, p5) split into
(p4, p2, p5) and (p5, p2, p3), keeping the winding (p2, p3 follow p1 cyclically). An edge
point is ``p1 (1 - w) + p2 w``, ``w = (z1 - c) / (z1 - z2)``, in view space (with
``perspective_correct`` NDC x, y are first multiplied by their depth, then divided by c).
Pairs map back to the original face and barycentrics in it; ``zbuf``, ``dists`` stay the
sub-triangle's. Where both halves of a split face touch a pixel, the second replaces the
first only with a strictly smaller unsigned distance (PyTorch3D's rule, applied here
before the K nearest are chosen; see the package README).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch

from ..fragments import RasterPairs, complement, k_nearest_keep
from .function import rasterize_pairs

if TYPE_CHECKING:
    from .rasterizer import RasterOptions

__all__ = ["ClippedFaces", "clip_faces", "rasterize_clipped"]

# Sub-triangle corners as indices into the points (p1, p2, p3, p4, p5) of a clipped face:
# two vertices behind -> (p4, p5, p1); one behind -> (p4, p2, p5) then (p5, p2, p3).
_CORNERS = ((3, 4, 0), (3, 1, 4), (4, 1, 2))
_ROWS_BY_BEHIND = (1, 2, 1, 0)  # clipped faces per original face, by vertices behind the plane


@dataclass(frozen=True)
class ClippedFaces:
    """The clipped face table: ``face_verts`` (F', 3, 3) (differentiable; one original
    face's rows consecutive, in order, so (z, row) orders ties as (z, face id)),
    ``face_to_mesh`` and ``source`` (F',) original face id; ``conversion`` (T, 3, 3), the
    weight of original vertex j in corner k of sub-triangle t; ``row_conversion`` (F',)
    index into it (-1: unclipped); ``second_half`` (F',) the second triangle of a split face."""

    face_verts: torch.Tensor
    face_to_mesh: torch.Tensor
    source: torch.Tensor
    conversion: torch.Tensor
    row_conversion: torch.Tensor
    second_half: torch.Tensor


def _lerp_points(
    p1: torch.Tensor, p2: torch.Tensor, depth: float, perspective_correct: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Points of the segments p1-p2 (T, 3) at view depth ``depth`` and their weights w (T,)."""
    z1, z2 = p1[:, 2], p2[:, 2]
    w = (z1 - depth) / (z1 - z2)
    w1 = w[:, None]
    point = p1 * (1 - w1) + p2 * w1
    if perspective_correct:  # interpolate x z, y z (view-space x, y up to the projection)
        xy = (p1[:, :2] * p1[:, 2:3] * (1 - w1) + p2[:, :2] * p2[:, 2:3] * w1) / depth
        point = torch.cat((xy, point[:, 2:]), dim=1)
    return point, w


def clip_faces(
    face_verts: torch.Tensor, face_to_mesh: torch.Tensor, z_clip_value: float, perspective_correct: bool
) -> ClippedFaces | None:
    """Clip (F, 3, 3) faces (NDC x, y, view z) at ``z_clip_value``; None if no vertex is behind."""
    device = face_verts.device
    behind = face_verts[..., 2].detach() < z_clip_value  # (F, 3)
    if not bool(behind.any()):
        return None
    num_behind = behind.sum(dim=1)
    rows_per_face = torch.tensor(_ROWS_BY_BEHIND, device=device)[num_behind]
    source = torch.repeat_interleave(torch.arange(face_verts.shape[0], device=device), rows_per_face)
    first_row = torch.cumsum(rows_per_face, 0) - rows_per_face
    half = torch.arange(source.shape[0], device=device) - first_row[source]  # 0, or 1 for a second half
    clipped_rows = (num_behind[source] > 0).nonzero().squeeze(1)  # none if faces were only culled
    out = face_verts.index_select(0, source)
    row_conversion = torch.full((source.shape[0],), -1, dtype=torch.long, device=device)
    faces = source[clipped_rows]
    fv = face_verts.index_select(0, faces)
    two_behind = (num_behind[faces] == 2)[:, None]
    lone = behind[faces] ^ two_behind  # the vertex alone on its side of the plane
    i1 = lone.long().argmax(dim=1)
    i2, i3 = (i1 + 1) % 3, (i1 + 2) % 3
    p1, p2, p3 = (fv[torch.arange(fv.shape[0], device=device), i] for i in (i1, i2, i3))
    p4, w2 = _lerp_points(p1, p2, z_clip_value, perspective_correct)
    p5, w3 = _lerp_points(p1, p3, z_clip_value, perspective_correct)
    kind = torch.where(two_behind[:, 0], 0, 1 + half[clipped_rows])
    corners = torch.tensor(_CORNERS, device=device)[kind]  # (T, 3) indices into p1..p5
    points = torch.stack((p1, p2, p3, p4, p5), dim=1)  # (T, 5, 3)
    out = out.index_put((clipped_rows,), points.gather(1, corners[:, :, None].expand(-1, -1, 3)))
    # barycentrics of p1..p5 in the original face
    e1, e2, e3 = (torch.nn.functional.one_hot(i, 3).to(fv.dtype) for i in (i1, i2, i3))
    b4 = e1 * (1 - w2)[:, None] + e2 * w2[:, None]
    b5 = e1 * (1 - w3)[:, None] + e3 * w3[:, None]
    weights = torch.stack((e1, e2, e3, b4, b5), dim=1)  # (T, 5, 3)
    conversion = weights.gather(1, corners[:, :, None].expand(-1, -1, 3))
    row_conversion[clipped_rows] = torch.arange(clipped_rows.shape[0], device=device)
    return ClippedFaces(
        face_verts=out,
        face_to_mesh=face_to_mesh[source],
        source=source,
        conversion=conversion,
        row_conversion=row_conversion,
        second_half=half > 0,
    )


def _shadowed_halves(pix: torch.Tensor, face: torch.Tensor, dists: torch.Tensor, second_half: torch.Tensor) -> torch.Tensor:
    """(D,) long pairs to drop among (P,) pairs of split faces' halves: where both halves of a
    split face touch a pixel, the one not kept (the second half wins only with a strictly
    smaller unsigned distance)."""
    quad = face - second_half[face].long()  # the first half's row identifies the face
    key = pix * second_half.shape[0] + quad
    order = torch.sort(key, stable=True).indices
    a, b = order[:-1], order[1:]
    both = key[a] == key[b]
    a, b = a[both], b[both]
    a_first = face[a] < face[b]
    h0, h1 = torch.where(a_first, a, b), torch.where(a_first, b, a)
    d0, d1 = dists[h0].detach().abs(), dists[h1].detach().abs()
    return torch.where(d1 < d0, h0, h1)


def _rasterize_rows(clipped: ClippedFaces, rows: torch.Tensor, options: RasterOptions) -> list[torch.Tensor]:
    """Rasterize the given rows of the table: [bary, zbuf, dists, pix, row] of the kept pairs."""
    bary, zbuf, dists, pix, face = rasterize_pairs(
        clipped.face_verts.index_select(0, rows), clipped.face_to_mesh.index_select(0, rows), options
    )
    return [bary, zbuf, dists, pix, rows.index_select(0, face)]


def _select(pairs: list[torch.Tensor], idx: torch.Tensor) -> list[torch.Tensor]:
    """The pairs ``idx`` (M,) of each per-pair tensor in ``pairs`` (P, ...) -> (M, ...)."""
    return [t.index_select(0, idx) for t in pairs]


def rasterize_clipped(clipped: ClippedFaces, num_meshes: int, options: RasterOptions) -> RasterPairs:
    """Rasterize a clipped table into pairs of the original faces (barycentrics stored).

    Split halves (few) are rasterized apart without the K-nearest cut, the half shadowed by
    its twin is dropped, then the K nearest by (z, face id) are chosen from the union.
    """
    k = options.faces_per_pixel
    options = replace(options, defer_barycentrics=False)
    all_rows = torch.arange(clipped.source.shape[0], device=clipped.source.device)
    if bool(clipped.second_half.any()):
        halves = clipped.second_half | torch.roll(clipped.second_half, -1)
        rest = _rasterize_rows(clipped, all_rows[~halves], options)
        split_rows = all_rows[halves]
        split = _rasterize_rows(clipped, split_rows, replace(options, faces_per_pixel=split_rows.shape[0]))
        drop = _shadowed_halves(split[3], split[4], split[2], clipped.second_half)
        if drop.shape[0] > 0:
            split = _select(split, complement(drop, split[3].shape[0]))
        pairs = [torch.cat((a, b)) for a, b in zip(rest, split, strict=True)]
        idx = k_nearest_keep(pairs[3], pairs[1].detach(), pairs[4], k)
        if idx is not None:
            pairs = _select(pairs, idx)
    else:
        pairs = _rasterize_rows(clipped, all_rows, options)
    bary, zbuf, dists, pix, row = pairs
    conv = clipped.row_conversion[row]
    sel = (conv >= 0).nonzero().squeeze(1)
    if sel.shape[0] > 0:
        matrix = clipped.conversion.index_select(0, conv[sel])  # (M, 3 corners, 3 vertices)
        converted = (bary.index_select(0, sel)[:, :, None] * matrix).sum(dim=1)
        bary = bary.index_put((sel,), converted)
    face = clipped.source[row]
    runs = int((face[1:] != face[:-1]).sum()) + 1 if face.shape[0] else 0
    if torch.unique(face).shape[0] != runs:  # a face's pairs in several runs: one, by a stable sort
        bary, zbuf, dists, pix, face = _select([bary, zbuf, dists, pix, face], torch.sort(face, stable=True).indices)
    return RasterPairs(pix, face, bary, zbuf, dists, num_meshes, options.image_size, k)
