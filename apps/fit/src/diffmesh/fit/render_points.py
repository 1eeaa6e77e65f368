"""Preview renders of point clouds (GIF frames of ``fit shape`` with a cloud target).

Each point is projected with the camera and drawn as one pixel; the nearest point wins a
pixel (a z-buffer by ``scatter_reduce``) and is shaded by depth, nearer brighter. Not
differentiable, not for measuring: a picture of what the fit is matching.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["render_points"]


@torch.no_grad()
def render_points(
    points: Sequence[torch.Tensor],
    colors: Sequence[tuple[float, float, float]],
    cameras,
    *,
    image_size: int,
) -> torch.Tensor:
    """Depth-shaded one-pixel splats of B point clouds on a white background.

    Args:
        points: B tensors ``(P_i, 3) float`` in world coordinates.
        colors: B RGB triples in [0, 1].
        cameras: a batch of B softrender cameras.
        image_size: side of the square images in pixels.

    Returns:
        ``(B, H, W, 3) float`` RGB in [0, 1], H = W = ``image_size``.
    """
    if len(points) != len(colors):
        raise ValueError(
            f"points, colors: expected the same number, got {len(points)} and {len(colors)}"
        )
    device = points[0].device
    images = torch.ones(len(points), image_size * image_size, 3, device=device)
    for b, (pts, color) in enumerate(zip(points, colors, strict=True)):  # one per cloud
        if pts.shape[0] == 0:
            continue
        screen = cameras[b].transform_points_screen(
            pts[None].float(), image_size=(image_size, image_size)
        )[0]
        view_depth = (
            cameras[b].get_world_to_view_transform().transform_points(pts[None].float())[0, :, 2]
        )
        x = screen[:, 0].floor().long()
        y = screen[:, 1].floor().long()
        keep = (x >= 0) & (x < image_size) & (y >= 0) & (y < image_size) & (view_depth > 0)
        if not bool(keep.any()):
            continue
        pixel = (y * image_size + x)[keep]
        depth = view_depth[keep]
        nearest = torch.full((image_size * image_size,), float("inf"), device=device)
        nearest.scatter_reduce_(0, pixel, depth, reduce="amin")
        hit = torch.isfinite(nearest)
        near, far = depth.min(), depth.max()
        shade = 1.0 - 0.6 * (nearest[hit] - near) / (far - near).clamp_min(1e-12)
        rgb = torch.tensor(color, dtype=torch.float32, device=device)
        images[b, hit] = (shade[:, None] * rgb).clamp(0, 1)
    return images.reshape(len(points), image_size, image_size, 3)
