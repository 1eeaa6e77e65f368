"""Animated GIF writer (pillow): one shared palette, per-frame durations, atomic write."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from diffmesh.fit.outputs import atomic_path
from PIL import Image

__all__ = ["save_gif"]


def save_gif(
    path: str | Path,
    frames: Sequence[Image.Image],
    *,
    duration_ms: int = 400,
    last_frame_ms: int = 1500,
    loop: int = 0,
) -> Path:
    """Write ``frames`` as an animated GIF.

    All frames are quantized to one adaptive 256-colour palette computed from a mosaic of
    every frame, so colours do not flicker between frames. Frames of different sizes are
    pasted top-left on a white canvas of the largest size.

    Args:
        path: destination ``.gif`` file (written atomically).
        frames: the frames, in order; at least one.
        duration_ms: display time of every frame but the last, in milliseconds.
        last_frame_ms: display time of the last frame (the result), in milliseconds.
        loop: number of loops, 0 for forever.

    Returns:
        ``path`` as a Path.

    Raises:
        ValueError: no frames, or a non-positive duration.
    """
    if not frames:
        raise ValueError("frames: expected at least one frame, got none")
    if duration_ms <= 0 or last_frame_ms <= 0:
        raise ValueError(
            f"duration_ms, last_frame_ms: expected positive milliseconds, got {duration_ms}, {last_frame_ms}"
        )
    width = max(f.width for f in frames)
    height = max(f.height for f in frames)
    canvases = []
    for frame in frames:
        canvas = Image.new("RGB", (width, height), "white")
        canvas.paste(frame.convert("RGB"), (0, 0))
        canvases.append(canvas)
    # One palette for the whole animation, from a (downscaled) mosaic of all frames.
    thumb_w, thumb_h = max(width // 4, 1), max(height // 4, 1)
    mosaic = Image.new("RGB", (thumb_w, thumb_h * len(canvases)), "white")
    for i, canvas in enumerate(canvases):
        mosaic.paste(canvas.resize((thumb_w, thumb_h), Image.Resampling.BILINEAR), (0, i * thumb_h))
    palette = mosaic.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    quantized = [c.quantize(palette=palette, dither=Image.Dither.NONE) for c in canvases]
    durations = [duration_ms] * (len(quantized) - 1) + [last_frame_ms]
    with atomic_path(path) as tmp:
        quantized[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=quantized[1:],
            duration=durations,
            loop=loop,
            disposal=1,
            optimize=False,
        )
    return Path(path)
