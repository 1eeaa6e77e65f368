"""``rasterize_meshes``: PyTorch3D's mesh rasterizer, computed from sparse pixel-face pairs."""

from __future__ import annotations

from typing import Any

import torch

from ..fragments import Fragments, RasterPairs
from .clip import clip_faces, rasterize_clipped
from .function import pair_barycentrics_of, rasterize_pairs
from .settings import RasterOptions

__all__ = ["rasterize_face_verts", "rasterize_faces", "rasterize_meshes"]


def _version(t: torch.Tensor) -> int | None:
    """The in-place version counter of ``t``; None for inference tensors (they have none)."""
    return None if t.is_inference() else t._version


class _DeferredBarycentrics:
    """The barycentrics of deferred pairs, computed when first read: ``__call__`` gives what
    the rasterizer would have stored, with a graph exactly when it would have had one (the
    grad mode of the rasterization, not of the read).

    A module-level class (not a closure) so that deferred fragments pickle and ``detach``
    drops the graph.
    """

    def __init__(
        self, face_verts: torch.Tensor, pix: torch.Tensor, face: torch.Tensor, image_size: tuple[int, int],
        perspective_correct: bool, clip_barycentric_coords: bool,
    ) -> None:
        self.grad_enabled = torch.is_grad_enabled()
        self.face_verts = face_verts if self.grad_enabled else face_verts.detach()
        self.version = _version(face_verts)
        self.args = (pix, face, image_size, perspective_correct, clip_barycentric_coords)

    def __call__(self) -> torch.Tensor:
        if _version(self.face_verts) != self.version:
            raise RuntimeError(
                "bary_coords: face_verts was modified in place after rasterization (e.g. by an "
                "optimizer step) and before the deferred barycentrics were first read; read them "
                "before changing the vertices, or rasterize again"
            )
        with torch.set_grad_enabled(self.grad_enabled):
            return pair_barycentrics_of(self.face_verts, *self.args)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["version"] = _version(self.face_verts) == self.version  # whether still valid
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        # unpickled tensors start a new version count: take it, or stay stale
        self.version = _version(self.face_verts) if state["version"] else -1

    def detach(self) -> _DeferredBarycentrics:
        """The same barycentrics, without a graph."""
        with torch.no_grad():
            out = _DeferredBarycentrics(self.face_verts.detach(), *self.args)
        out.version = self.version  # a detached tensor shares the version counter
        return out


def rasterize_face_verts(
    face_verts: torch.Tensor,
    face_to_mesh: torch.Tensor,
    num_meshes: int,
    image_size: Any = 256,
    blur_radius: float = 0.0,
    faces_per_pixel: int = 8,
    perspective_correct: bool = False,
    clip_barycentric_coords: bool = False,
    cull_backfaces: bool = False,
    z_clip_value: float | None = None,
    *,
    defer_barycentrics: bool = False,
) -> Fragments:
    """Rasterize packed faces given directly as vertex triples (the core of ``rasterize_meshes``).

    Args:
        face_verts: (F, 3, 3) float packed face vertices: NDC x, NDC y, view-space z.
        face_to_mesh: (F,) long index in [0, num_meshes) of the mesh (image) of each face.
        num_meshes: N, the number of images.
        image_size, blur_radius, faces_per_pixel, perspective_correct,
            clip_barycentric_coords, cull_backfaces, z_clip_value: as in
            :func:`rasterize_meshes`.
        defer_barycentrics: a speed hint for consumers that read only ``dists`` (and
            ``zbuf`` values): the barycentric coordinates and their gradient terms are not
            stored but recomputed, bit for bit, when first read (``bary_coords``,
            ``pairs.bary``) or when ``zbuf`` gets a gradient. Results are the same either way.

    Returns:
        Fragments carrying the sparse pairs (dense fields built on first access).
    """
    options = RasterOptions(
        image_size, blur_radius, faces_per_pixel, perspective_correct, clip_barycentric_coords, cull_backfaces,
        z_clip_value, defer_barycentrics,
    )
    return rasterize_faces(face_verts, face_to_mesh, num_meshes, options)


def rasterize_faces(
    face_verts: torch.Tensor, face_to_mesh: torch.Tensor, num_meshes: int, options: RasterOptions
) -> Fragments:
    """:func:`rasterize_face_verts` with its options as one :class:`RasterOptions`."""
    if not torch.is_tensor(face_verts) or face_verts.dim() != 3 or face_verts.shape[1:] != (3, 3):
        shape = tuple(face_verts.shape) if torch.is_tensor(face_verts) else type(face_verts).__name__
        raise ValueError(f"face_verts: expected an (F, 3, 3) tensor, got {shape}")
    if not face_verts.is_floating_point():
        raise TypeError(f"face_verts: expected a float tensor, got {face_verts.dtype}")
    depth, persp = options.z_clip_value, options.perspective_correct
    clipped = None if depth is None else clip_faces(face_verts, face_to_mesh, depth, persp)
    if clipped is not None:
        return Fragments(pairs=rasterize_clipped(clipped, num_meshes, options))
    bary, zbuf, dists, pix, face = rasterize_pairs(face_verts, face_to_mesh, options)
    size, k = options.image_size, options.faces_per_pixel
    bary_fn = None
    if bary is None:
        bary_fn = _DeferredBarycentrics(face_verts, pix, face, size, persp, options.clip_barycentric_coords)
    return Fragments(pairs=RasterPairs(pix, face, bary, zbuf, dists, num_meshes, size, k, bary_fn=bary_fn))


def rasterize_meshes(
    meshes: Any,
    image_size: int | tuple[int, int] = 256,
    blur_radius: float = 0.0,
    faces_per_pixel: int = 8,
    bin_size: int | None = None,
    max_faces_per_bin: int | None = None,
    perspective_correct: bool = False,
    clip_barycentric_coords: bool = False,
    cull_backfaces: bool = False,
    z_clip_value: float | None = None,
) -> Fragments:
    """Rasterize a batch of meshes whose vertices are already in NDC (x, y) with view-space z.

    Each mesh is rasterized into its own (H, W) image. Pixel (0, 0) is the top-left pixel,
    whose centre is at NDC (+1, +1) on a square image (+X points left, +Y up); pixel centres
    are at ``1 - (2 i + 1) / S``. On a non-square image the shorter side spans [-1, 1] and the
    longer one ``[-S_long / S_short, S_long / S_short]``.

    A face touches a pixel when the pixel centre is inside it or within ``blur_radius``
    (squared NDC distance) of it; the K nearest touching faces by (view depth, face id) are
    kept. Faces with a vertex at view depth below 1e-8 and faces with |signed area| <= 1e-8
    are skipped; with ``z_clip_value`` faces are first clipped to the part in front of that
    depth (PyTorch3D's rule, see below). Only pixel-face pairs near a face are ever evaluated (no dense
    pixels x faces product), and gradients reach the vertices through ``zbuf``,
    ``bary_coords`` and ``dists`` by a hand-written backward.

    Args:
        meshes: Meshes of batch size N, verts in NDC x, y and view-space z.
        image_size: S for an (S, S) image, or (H, W).
        blur_radius: squared NDC distance in [0, 2] within which a face outside a pixel
            centre still touches it (0: hard edges).
        faces_per_pixel: K, the number of nearest faces kept per pixel.
        bin_size: accepted for PyTorch3D compatibility; the pair rasterizer does not bin,
            so it is a hint with no effect.
        max_faces_per_bin: accepted for PyTorch3D compatibility; no effect (see bin_size).
        perspective_correct: perspective-correct the barycentric coordinates using the
            view-space depths.
        clip_barycentric_coords: clip barycentrics to [0, 1] and renormalise them before
            computing ``zbuf`` (useful with blur, where pixels outside a face are kept).
        cull_backfaces: skip faces whose projected winding is clockwise.
        z_clip_value: None, or a view depth c > 0: faces entirely in front of ``z = c`` are
            rasterized as they are (bit for bit), faces entirely behind it are culled, and
            faces crossing it are clipped in view space (x, y un-projected when
            ``perspective_correct``) to the triangle or the two triangles of the
            quadrilateral in front of it. Their fragments report the original face id and
            barycentrics in the original face; ``zbuf`` and ``dists`` are those of the
            sub-triangle at the pixel (the clipping edge counts as an edge). Where both
            halves of a split quadrilateral touch a pixel (blur), the one with the smaller
            unsigned distance is kept, the first on a tie (PyTorch3D's rule).

    Returns:
        Fragments(pix_to_face, zbuf, bary_coords, dists), each (N, H, W, K) (bary_coords
        (N, H, W, K, 3)): ``pix_to_face[n, y, x, k] = f`` is the packed id of the k-th
        nearest face, ``zbuf`` its view depth ``sum_i bary_i z_i``, ``bary_coords`` the
        pixel centre's barycentrics, ``dists`` the signed squared NDC distance to its
        nearest edge (negative inside); -1 in every field where fewer than K faces touch.
    """
    for name in ("verts_packed", "faces_packed", "faces_packed_to_mesh_idx"):
        if not hasattr(meshes, name):
            raise TypeError(f"meshes: expected a Meshes object, got {type(meshes).__name__}")
    for name, value in (("bin_size", bin_size), ("max_faces_per_bin", max_faces_per_bin)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValueError(f"{name}: expected None or a non-negative int, got {value!r}")
    verts = meshes.verts_packed()
    faces = meshes.faces_packed()
    return rasterize_face_verts(
        verts[faces],
        meshes.faces_packed_to_mesh_idx(),
        len(meshes),
        image_size=image_size,
        blur_radius=blur_radius,
        faces_per_pixel=faces_per_pixel,
        perspective_correct=perspective_correct,
        clip_barycentric_coords=clip_barycentric_coords,
        cull_backfaces=cull_backfaces,
        z_clip_value=z_clip_value,
    )
