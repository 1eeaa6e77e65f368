"""Loss curves drawn with pillow: log-scale y axis, labelled axes, ticks and a legend.

No matplotlib: the app depends only on pillow for images. The plot is small and fixed in
style; it is meant to be looked at, not configured.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from diffmesh.fit.outputs import atomic_path
from PIL import Image, ImageDraw, ImageFont

__all__ = ["PALETTE", "plot_losses", "save_loss_plot"]

#: Line colours, one per series in order (colour-blind friendly "tab10" hues).
PALETTE: tuple[tuple[int, int, int], ...] = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
)

_INK = (40, 40, 40)
_GRID = (225, 225, 225)
_MINOR_GRID = (242, 242, 242)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ValueError, OSError):  # pillow built without FreeType
        return ImageFont.load_default()


def _nice_step(span: float, target_ticks: int) -> float:
    """Step from {1, 2, 5} x 10^k giving about ``target_ticks`` ticks over ``span``."""
    raw = max(span, 1e-12) / max(target_ticks, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    for mult in (1.0, 2.0, 5.0, 10.0):
        if raw <= mult * power:
            return mult * power
    return 10.0 * power


def _format_decade(exponent: int) -> str:
    if -2 <= exponent <= 3:
        return f"{10.0**exponent:g}"
    return f"1e{exponent}"


def _text_size(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left, bottom - top


def plot_losses(
    curves: Mapping[str, Sequence[float]],
    *,
    title: str = "",
    xlabel: str = "iteration",
    ylabel: str = "loss (log scale)",
    size: tuple[int, int] = (900, 560),
) -> Image.Image:
    """Draw loss curves against the iteration on a log-scale y axis.

    Values that are NaN, infinite or not positive cannot be shown on a log axis; they
    break the line instead of being drawn.

    Args:
        curves: series name -> values, one per iteration (iteration i is index i).
        title: text above the plot.
        xlabel: x axis label.
        ylabel: y axis label (drawn vertically).
        size: (width, height) of the image in pixels.

    Returns:
        An RGB image.

    Raises:
        ValueError: ``curves`` is empty or ``size`` is too small.
    """
    if not curves:
        raise ValueError("curves: expected at least one series, got none")
    width, height = size
    if width < 300 or height < 200:
        raise ValueError(f"size: expected at least (300, 200) pixels, got {size}")
    series = {name: np.asarray(values, dtype=np.float64).reshape(-1) for name, values in curves.items()}
    n_points = max(max(len(v) for v in series.values()), 1)

    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font, small = _font(15), _font(12)

    # Plot area (pixels): margins leave room for tick labels, axis labels and the title.
    left, right, top, bottom = 84, width - 24, 44 if title else 24, height - 62
    draw.rectangle((left, top, right, bottom), outline=_INK, width=1)

    # y range in decades, from the positive finite values.
    positive = np.concatenate([v[np.isfinite(v) & (v > 0)] for v in series.values()])
    if positive.size == 0:
        lo_dec, hi_dec = -1, 0
    else:
        lo_dec = math.floor(math.log10(positive.min()))
        hi_dec = math.ceil(math.log10(positive.max()))
        if hi_dec == lo_dec:
            hi_dec += 1
    log_lo, log_hi = float(lo_dec), float(hi_dec)
    x_hi = float(max(n_points - 1, 1))

    def to_px(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        px = left + (x / x_hi) * (right - left)
        py = bottom - (np.log10(y) - log_lo) / (log_hi - log_lo) * (bottom - top)
        return px, py

    # y grid and ticks: a labelled tick per decade (every other one when there are many),
    # minor ticks at 2..9 x 10^k.
    n_dec = hi_dec - lo_dec
    label_every = 1 if n_dec <= 8 else math.ceil(n_dec / 8)
    for exponent in range(lo_dec, hi_dec + 1):
        _, y = to_px(np.zeros(1), np.array([10.0**exponent]))
        yy = float(y[0])
        if lo_dec < exponent < hi_dec:
            draw.line((left + 1, yy, right - 1, yy), fill=_GRID)
        draw.line((left - 6, yy, left, yy), fill=_INK, width=1)
        if (exponent - lo_dec) % label_every == 0:
            text = _format_decade(exponent)
            tw, th = _text_size(draw, text, small)
            draw.text((left - 9 - tw, yy - th / 2 - 2), text, fill=_INK, font=small)
        if exponent < hi_dec and n_dec <= 8:
            minors = np.arange(2, 10, dtype=np.float64) * 10.0**exponent
            _, ys = to_px(np.zeros(8), minors)
            for ym in ys.tolist():
                draw.line((left + 1, ym, right - 1, ym), fill=_MINOR_GRID)
                draw.line((left - 3, ym, left, ym), fill=_INK)

    # x ticks at nice round iteration numbers.
    step = _nice_step(x_hi, 8)
    for k in range(int(x_hi // step) + 1):
        x = k * step
        xx = left + x / x_hi * (right - left)
        if 0 < x < x_hi:
            draw.line((xx, top + 1, xx, bottom - 1), fill=_GRID)
        draw.line((xx, bottom, xx, bottom + 6), fill=_INK)
        text = f"{x:g}"
        tw, _ = _text_size(draw, text, small)
        draw.text((xx - tw / 2, bottom + 9), text, fill=_INK, font=small)
    draw.rectangle((left, top, right, bottom), outline=_INK, width=1)

    # Curves, broken where a value cannot be drawn; thinned to about one point per pixel.
    stride = max(n_points // max(right - left, 1), 1)
    for index, values in enumerate(series.values()):
        colour = PALETTE[index % len(PALETTE)]
        xs = np.arange(values.size, dtype=np.float64)[::stride]
        ys = values[::stride]
        ok = np.isfinite(ys) & (ys > 0)
        px, py = to_px(xs, np.where(ok, ys, 1.0))
        # Split into runs of drawable points.
        breaks = np.flatnonzero(np.diff(ok.astype(np.int8)) != 0) + 1
        for run in np.split(np.arange(ys.size), breaks):
            if run.size == 0 or not ok[run[0]]:
                continue
            points = list(zip(px[run].tolist(), py[run].tolist(), strict=True))
            if len(points) == 1:
                x0, y0 = points[0]
                draw.ellipse((x0 - 1.5, y0 - 1.5, x0 + 1.5, y0 + 1.5), fill=colour)
            else:
                draw.line(points, fill=colour, width=2, joint="curve")

    # Legend, top right inside the plot, on a white box.
    names = list(series)
    row_h = 20
    legend_w = max(_text_size(draw, n, small)[0] for n in names) + 46
    legend_h = row_h * len(names) + 10
    lx1, ly0 = right - 10, top + 10
    lx0, ly1 = lx1 - legend_w, ly0 + legend_h
    draw.rectangle((lx0, ly0, lx1, ly1), fill="white", outline=(170, 170, 170))
    for index, name in enumerate(names):
        colour = PALETTE[index % len(PALETTE)]
        y = ly0 + 5 + index * row_h + row_h / 2
        draw.line((lx0 + 8, y, lx0 + 30, y), fill=colour, width=3)
        _, th = _text_size(draw, name, small)
        draw.text((lx0 + 36, y - th / 2 - 2), name, fill=_INK, font=small)

    # Axis labels and title.
    tw, _ = _text_size(draw, xlabel, font)
    draw.text(((left + right) / 2 - tw / 2, height - 30), xlabel, fill=_INK, font=font)
    tw, th = _text_size(draw, ylabel, font)
    label = Image.new("RGB", (tw + 4, th + 8), "white")
    ImageDraw.Draw(label).text((2, 0), ylabel, fill=_INK, font=font)
    label = label.rotate(90, expand=True)
    image.paste(label, (14, int((top + bottom) / 2 - label.height / 2)))
    if title:
        tw, _ = _text_size(draw, title, font)
        draw.text(((left + right) / 2 - tw / 2, 12), title, fill=_INK, font=font)
    return image


def save_loss_plot(path: str | Path, curves: Mapping[str, Sequence[float]], **kwargs: object) -> Path:
    """Draw :func:`plot_losses` and write it as a PNG atomically.

    Args:
        path: destination ``.png`` file.
        curves: series name -> per-iteration values.
        **kwargs: passed to :func:`plot_losses` (``title``, ``xlabel``, ``ylabel``, ``size``).

    Returns:
        ``path`` as a Path.
    """
    image = plot_losses(curves, **kwargs)  # type: ignore[arg-type]
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG", optimize=True)
    return Path(path)
