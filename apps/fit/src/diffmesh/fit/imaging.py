"""Tensor <-> pillow image conversion and simple layouts (side by side, grids, captions)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from diffmesh.fit.outputs import atomic_path
from PIL import Image, ImageDraw, ImageFont

__all__ = ["caption", "grid", "hstack", "save_png", "to_image", "vstack"]


def to_image(pixels: torch.Tensor) -> Image.Image:
    """Convert a float image in [0, 1] to a pillow image.

    Args:
        pixels: ``(H, W)`` grey, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA float tensor; values
            are clamped to [0, 1]; NaN shows as black.

    Returns:
        An ``L``, ``RGB`` or ``RGBA`` image.

    Raises:
        ValueError: wrong shape.
    """
    if pixels.dim() not in (2, 3) or (pixels.dim() == 3 and pixels.shape[-1] not in (3, 4)):
        raise ValueError(f"pixels: expected (H, W), (H, W, 3) or (H, W, 4), got {tuple(pixels.shape)}")
    array = torch.nan_to_num(pixels.detach().float().cpu(), nan=0.0).clamp(0.0, 1.0)
    array = (array * 255.0 + 0.5).to(torch.uint8).numpy()
    if pixels.dim() == 2:
        return Image.fromarray(array, mode="L")
    return Image.fromarray(np.ascontiguousarray(array), mode="RGB" if array.shape[-1] == 3 else "RGBA")


def hstack(images: Sequence[Image.Image], *, gap: int = 4, background: str = "white") -> Image.Image:
    """Place images left to right, top-aligned, ``gap`` pixels apart, on an RGB canvas."""
    if not images:
        raise ValueError("images: expected at least one image, got none")
    width = sum(im.width for im in images) + gap * (len(images) - 1)
    height = max(im.height for im in images)
    canvas = Image.new("RGB", (width, height), background)
    x = 0
    for im in images:
        canvas.paste(im.convert("RGB"), (x, 0))
        x += im.width + gap
    return canvas


def vstack(images: Sequence[Image.Image], *, gap: int = 4, background: str = "white") -> Image.Image:
    """Place images top to bottom, left-aligned, ``gap`` pixels apart, on an RGB canvas."""
    if not images:
        raise ValueError("images: expected at least one image, got none")
    width = max(im.width for im in images)
    height = sum(im.height for im in images) + gap * (len(images) - 1)
    canvas = Image.new("RGB", (width, height), background)
    y = 0
    for im in images:
        canvas.paste(im.convert("RGB"), (0, y))
        y += im.height + gap
    return canvas


def grid(
    images: Sequence[Image.Image], *, columns: int, gap: int = 4, background: str = "white"
) -> Image.Image:
    """Lay images out row by row, ``columns`` per row (the last row may be shorter)."""
    if columns < 1:
        raise ValueError(f"columns: expected a positive integer, got {columns}")
    rows = [hstack(images[i : i + columns], gap=gap, background=background)
            for i in range(0, len(images), columns)]
    return vstack(rows, gap=gap, background=background)


def caption(image: Image.Image, text: str, *, size: int = 12) -> Image.Image:
    """Return a copy of ``image`` with a strip of text below it."""
    try:
        font: ImageFont.ImageFont | ImageFont.FreeTypeFont = ImageFont.load_default(size=size)
    except (TypeError, ValueError, OSError):  # pillow without FreeType
        font = ImageFont.load_default()
    strip = size + 8
    out = Image.new("RGB", (image.width, image.height + strip), "white")
    out.paste(image.convert("RGB"), (0, 0))
    draw = ImageDraw.Draw(out)
    left, _, right, _ = draw.textbbox((0, 0), text, font=font)
    draw.text(((image.width - (right - left)) / 2, image.height + 2), text, fill=(40, 40, 40), font=font)
    return out


def save_png(path: str | Path, image: Image.Image) -> Path:
    """Write ``image`` as a PNG atomically; returns ``path`` as a Path."""
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG", optimize=True)
    return Path(path)
